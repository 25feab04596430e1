//! In-process tests of a transport, the way mini-redis tests its server: bind it on loopback,
//! serve it on the test's runtime, and talk to it through the library, so that a failure points
//! at the transport's crate rather than at the binary. Behind the `testing` feature, which only
//! the transports' dev-dependencies turn on.

use std::sync::Arc;

use crate::client::{Feed, SessionOptions, SessionReport, run_session};
use crate::{
    ClientOptions, HostPort, ListenSpec, Result, Running, ServerOptions, StatsSnapshot, Transport,
    bind_all, start,
};

/// A transport serving on a loopback port of this runtime.
pub struct Loopback {
    transport: Arc<dyn Transport>,
    running: Running,
    /// Where it listens.
    pub addr: HostPort,
    /// Client options that trust it (see [`crate::Server::introduce`]).
    pub client: ClientOptions,
}

impl Loopback {
    /// Binds `transport` on its loopback address, port 0, with `options`, and serves it.
    pub async fn serve(transport: impl Transport, options: ServerOptions) -> Result<Loopback> {
        let addr = HostPort::new(transport.family().loopback(), 0);
        Loopback::serve_at(transport, addr, options).await
    }

    /// Binds `transport` at `addr` (a socket path, for a transport addressed by one) with
    /// `options`, and serves it.
    pub async fn serve_at(
        transport: impl Transport,
        addr: HostPort,
        options: ServerOptions,
    ) -> Result<Loopback> {
        let transport: Arc<dyn Transport> = Arc::new(transport);
        let spec = ListenSpec {
            transport: transport.clone(),
            addr,
            options,
            origin: None,
        };
        let mut bound = bind_all(&[spec]).await?;
        let mut client = ClientOptions::default();
        bound[0].introduce(&mut client);
        let addr = bound[0].local_addr.clone();
        let running = start(std::mem::take(&mut bound));
        Ok(Loopback {
            transport,
            running,
            addr,
            client,
        })
    }

    /// Dials the server with `client`, through the same transport as every other dial of this
    /// `Loopback` (so sessions resume).
    pub async fn dial(&self, client: &ClientOptions) -> Result<crate::Connection> {
        self.transport.dial(&self.addr, client).await
    }

    /// Dials the server with `client` and sends `payload` `count` times, each echo checked
    /// byte for byte; returns what came back and the session's report.
    pub async fn echo_with(
        &self,
        client: &ClientOptions,
        payload: &[u8],
        count: u64,
    ) -> Result<(Vec<u8>, SessionReport)> {
        let connection = self.dial(client).await?;
        let url = format!("{}://{}", self.transport.name(), self.addr);
        let feed = Feed::Repeat {
            payload: payload.to_vec(),
            count,
        };
        let mut output = Vec::new();
        let report = run_session(
            connection.channel,
            tokio::io::empty(),
            &mut output,
            &SessionOptions::new(url, feed),
        )
        .await?;
        Ok((output, report))
    }

    /// [`Loopback::echo_with`] with the client options that trust this server.
    pub async fn echo(&self, payload: &[u8], count: u64) -> Result<Vec<u8>> {
        Ok(self.echo_with(&self.client, payload, count).await?.0)
    }

    /// Stops serving (drains) and returns the listener's counters.
    pub async fn stop(self) -> StatsSnapshot {
        let mut summaries = self.running.stop().await;
        summaries.remove(0).stats
    }
}
