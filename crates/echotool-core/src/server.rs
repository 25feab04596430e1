//! Running servers: bind every listener first, then serve them all until shutdown, then report.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::{EchoStats, HostPort, Kind, Result, Server, ServerOptions, StatsSnapshot, Transport};

/// What a running server gets from the process: its name for logs, its counters and the signal
/// to stop.
#[derive(Clone)]
pub struct ServeContext {
    /// The listener as a URL (`tcp://127.0.0.1:5555`), used in every log line.
    pub url: String,
    /// This listener's counters.
    pub stats: Arc<EchoStats>,
    /// Cancelled when the process shuts down: stop accepting, finish in-flight echoes.
    pub shutdown: CancellationToken,
}

/// One listener to start: which transport, where, and how.
#[derive(Clone)]
pub struct ListenSpec {
    /// The transport, from the [`crate::Registry`].
    pub transport: Arc<dyn Transport>,
    /// Where to bind.
    pub addr: HostPort,
    /// Its settings.
    pub options: ServerOptions,
}

/// A listener whose socket is bound and listening, not yet serving.
pub struct BoundListener {
    /// `proto://addr` with the real port.
    pub url: String,
    /// Lines to print after `listening on ...`.
    pub notes: Vec<String>,
    /// The address actually bound.
    pub local_addr: std::net::SocketAddr,
    /// The server certificate's fingerprint, for transports with certificates.
    pub certificate_pin: Option<String>,
    kind: Kind,
    server: Box<dyn Server>,
}

/// Binds every listener, in order. If one fails, those already bound are closed and the error
/// names the one that failed: nothing is left half-running.
pub async fn bind_all(specs: &[ListenSpec]) -> Result<Vec<BoundListener>> {
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let server = spec.transport.bind(&spec.addr, &spec.options).await?;
        let local_addr = server.local_addr();
        let url = format!("{}://{}", spec.transport.name(), HostPort::from(local_addr));
        bound.push(BoundListener {
            url,
            notes: server.notes(),
            local_addr,
            certificate_pin: server.certificate_pin(),
            kind: spec.transport.kind(),
            server,
        });
    }
    Ok(bound)
}

/// Listeners that are serving.
pub struct Running {
    shutdown: CancellationToken,
    listeners: Vec<(String, Arc<EchoStats>, JoinHandle<Result<()>>)>,
}

/// The final word of one listener.
#[derive(Clone, Debug)]
pub struct ListenerSummary {
    /// The listener's URL.
    pub url: String,
    /// Its counters at the end.
    pub stats: StatsSnapshot,
    /// Why it stopped early, if it did.
    pub failure: Option<String>,
}

/// Starts serving every bound listener on the current runtime.
pub fn start(bound: Vec<BoundListener>) -> Running {
    let shutdown = CancellationToken::new();
    let listeners = bound
        .into_iter()
        .map(|b| {
            let stats = Arc::new(EchoStats::new(b.kind));
            let ctx = ServeContext {
                url: b.url.clone(),
                stats: stats.clone(),
                shutdown: shutdown.clone(),
            };
            (b.url, stats, tokio::spawn(b.server.serve(ctx)))
        })
        .collect();
    Running {
        shutdown,
        listeners,
    }
}

impl Running {
    /// The listeners' URLs and live counters.
    pub fn stats(&self) -> impl Iterator<Item = (&str, &EchoStats)> {
        self.listeners
            .iter()
            .map(|(url, stats, _)| (url.as_str(), &**stats))
    }

    /// Stops accepting, lets in-flight echoes finish (each listener's drain timeout), and
    /// returns every listener's counters.
    pub async fn stop(self) -> Vec<ListenerSummary> {
        self.shutdown.cancel();
        let mut summaries = Vec::with_capacity(self.listeners.len());
        for (url, stats, handle) in self.listeners {
            let failure = match handle.await {
                Ok(Ok(())) => None,
                Ok(Err(err)) => Some(err.to_string()),
                Err(join) => Some(format!("the listener task failed: {join}")),
            };
            if let Some(why) = &failure {
                error!(listener = %url, error = %why, "listener stopped");
            }
            let stats = stats.snapshot();
            debug!(listener = %url, connections = stats.connections, messages = stats.messages,
                bytes_in = stats.bytes_in, bytes_out = stats.bytes_out, errors = stats.errors,
                "stopped");
            summaries.push(ListenerSummary {
                url,
                stats,
                failure,
            });
        }
        summaries
    }
}
