//! The QUIC echo server: connections, echo streams and echoed datagrams.

use std::net::SocketAddr;
use std::sync::Arc;

use echotool_core::admission::{Activity, Admission, Slot};
use echotool_core::echo::{ConnStats, echo_stream};
use echotool_core::listener::{handshake, handshake_failed, handshake_timed_out};
use echotool_core::resolve::resolve;
use echotool_core::signal::Signal;
use echotool_core::{
    Error, Family, HandshakeError, HostPort, Limits, Result, ServeContext, Server, ServerOptions,
    async_trait,
};
use echotool_secure::config::ServerSetup;
use echotool_secure::explain::with_validity;
use quinn::crypto::rustls::QuicServerConfig;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::QuicError;
use crate::error::handshake_failure;
use crate::stream::QuicStream;

/// A bound QUIC echo server.
pub struct QuicServer {
    endpoint: quinn::Endpoint,
    local: SocketAddr,
    limits: Limits,
    notes: Vec<String>,
    pin: Option<String>,
    /// When the certificate is valid, in words.
    validity: Option<Arc<str>>,
}

impl QuicServer {
    /// Binds a UDP socket (with the socket options of `opts`) and a quinn endpoint on it.
    pub async fn bind(
        url: &str,
        addr: &HostPort,
        opts: &ServerOptions,
        setup: ServerSetup,
    ) -> Result<Self> {
        let bind_err = |source| Error::Bind {
            url: url.to_string(),
            source,
        };
        let wanted = resolve(addr, Family::Any).await?[0];
        let socket = Socket::new(
            Domain::for_address(wanted),
            Type::DGRAM,
            Some(Protocol::UDP),
        )
        .map_err(bind_err)?;
        if wanted.is_ipv6() {
            socket.set_only_v6(false).map_err(bind_err)?;
        }
        if let Some(size) = opts.socket.recv_buffer {
            socket.set_recv_buffer_size(size).map_err(bind_err)?;
        }
        if let Some(size) = opts.socket.send_buffer {
            socket.set_send_buffer_size(size).map_err(bind_err)?;
        }
        socket.bind(&wanted.into()).map_err(bind_err)?;
        let crypto = QuicServerConfig::try_from(setup.config.clone())
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(server_transport(&opts.limits)));
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(config),
            socket.into(),
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_err)?;
        let local = endpoint.local_addr().map_err(bind_err)?;
        Ok(QuicServer {
            notes: setup.notes("quic", &HostPort::from(local)),
            pin: setup.certificate_pin.clone(),
            validity: setup.validity.as_deref().map(Arc::from),
            endpoint,
            local,
            limits: opts.limits.clone(),
        })
    }
}

/// Server transport settings: the idle timeout of the limits, many streams, datagrams on.
fn server_transport(limits: &Limits) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(
        limits
            .idle_timeout
            .and_then(|d| quinn::IdleTimeout::try_from(d).ok()),
    );
    transport.max_concurrent_bidi_streams(1024u32.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.datagram_receive_buffer_size(Some(1 << 20));
    transport
}

#[async_trait]
impl Server for QuicServer {
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn certificate_pin(&self) -> Option<String> {
        self.pin.clone()
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        let QuicServer {
            endpoint,
            limits,
            validity,
            ..
        } = *self;
        // QUIC has its own idle timeout (max_idle_timeout), enforced by quinn per connection.
        let without_sweep = Limits {
            idle_timeout: None,
            ..limits.clone()
        };
        let mut admission = Admission::new(&without_sweep, &ctx.url);
        let stop = Signal::following(&ctx.shutdown);
        loop {
            let Some(reserved) = admission.reserve(&ctx.shutdown).await else {
                break;
            };
            let incoming = tokio::select! {
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => incoming,
                    None => break,
                },
                () = ctx.shutdown.cancelled() => break,
            };
            let Some(slot) = admission.admit(reserved, &ctx.stats) else {
                debug!(listener = %ctx.url, peer = %incoming.remote_address(),
                    "refused: connection limit reached");
                incoming.refuse();
                continue;
            };
            let handler = Handler {
                ctx: ctx.clone(),
                stop: stop.clone(),
                limits: limits.clone(),
                validity: validity.clone(),
                _slot: slot,
            };
            let peer = incoming.remote_address();
            admission.spawn(peer, |_activity| handler.run(incoming));
        }
        // No new connections from here on; the ones open finish their echoes.
        endpoint.set_server_config(None);
        admission.drain(&ctx.url).await;
        endpoint.close(0u32.into(), b"server shutting down");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), endpoint.wait_idle()).await;
        Ok(())
    }
}

/// One QUIC connection: handshake, then every stream and datagram it brings.
struct Handler {
    ctx: ServeContext,
    /// Fires at shutdown: cheap to wait on beside the connection.
    stop: Signal,
    limits: Limits,
    /// When the server's certificate is valid, for clients that say it is not.
    validity: Option<Arc<str>>,
    /// Held for the life of the connection; dropping it lets the next one in.
    _slot: Slot,
}

/// Whether the handshake of a connection served before it completed (0.5-RTT) succeeded,
/// once known; `None` for a connection whose handshake had completed before it was served.
type Verdict = Option<tokio::task::JoinHandle<bool>>;

impl Handler {
    /// The handshake: counted and logged by cause when it fails or times out.
    async fn handshake(&self, incoming: quinn::Incoming) -> Option<(quinn::Connection, Verdict)> {
        let peer = incoming.remote_address();
        let connecting = match incoming.accept() {
            Ok(connecting) => connecting,
            Err(err) => {
                handshake_failed(&self.ctx, peer, &self.failure(&err));
                return None;
            }
        };
        // 0.5-RTT: streams a resuming client opened with early data are served before the
        // handshake completes; the handshake itself still has to finish in time.
        match connecting.into_0rtt() {
            Ok((conn, accepted)) => {
                let (watched, ctx, judge) = (conn.clone(), self.ctx.clone(), self.judge());
                let limit = self.limits.handshake_timeout;
                let verdict = tokio::spawn(async move {
                    match tokio::time::timeout(limit, accepted).await {
                        Ok(true) => true,
                        Ok(false) => {
                            // Closed by this server (shutting down) is nobody's failure.
                            match watched.close_reason() {
                                Some(quinn::ConnectionError::LocallyClosed) | None => {}
                                Some(err) => handshake_failed(&ctx, peer, &judge(&err)),
                            }
                            false
                        }
                        Err(_) => {
                            handshake_timed_out(&ctx, peer, limit);
                            watched.close(0u32.into(), b"handshake timeout");
                            false
                        }
                    }
                });
                Some((conn, Some(verdict)))
            }
            Err(connecting) => {
                let judge = self.judge();
                let done = async move { connecting.await.map_err(|e| judge(&e)) };
                let conn = handshake(done, self.limits.handshake_timeout, &self.ctx, peer).await?;
                Some((conn, None))
            }
        }
    }

    /// Explains a failed handshake, with the certificate's validity when the client says it
    /// has expired.
    fn failure(&self, err: &quinn::ConnectionError) -> HandshakeError {
        self.judge()(err)
    }

    fn judge(&self) -> impl Fn(&quinn::ConnectionError) -> HandshakeError + Send + 'static {
        let validity = self.validity.clone();
        move |err| with_validity(handshake_failure(err), validity.as_deref())
    }

    async fn run(self, incoming: quinn::Incoming) {
        let stats = &self.ctx.stats;
        let _open = stats.open_connection();
        let (url, peer) = (&self.ctx.url, incoming.remote_address());
        debug!(listener = %url, %peer, "accepted");
        let Some((conn, verdict)) = self.handshake(incoming).await else {
            return;
        };
        let streams = TaskTracker::new();
        let mut stopped = self.stop.fired();
        let end = loop {
            tokio::select! {
                stream = conn.accept_bi() => match stream {
                    Ok((send, recv)) => {
                        let (stats, url, stop) = (stats.clone(), url.clone(), self.stop.clone());
                        streams.spawn(async move {
                            let mut stream = QuicStream::server(send, recv);
                            let mut conn_stats = ConnStats::default();
                            match echo_stream(&mut stream, &stats, &mut conn_stats, &Activity::unwatched(), &stop).await {
                                Ok(end) => debug!(listener = %url, %peer, ?end, bytes = conn_stats.bytes, "stream closed"),
                                Err(err) => {
                                    stats.record_error();
                                    debug!(listener = %url, %peer, error = %err, "stream error");
                                }
                            }
                        });
                    }
                    Err(err) => break err,
                },
                datagram = conn.read_datagram() => match datagram {
                    Ok(datagram) => {
                        let n = datagram.len();
                        stats.record_received(n);
                        match conn.send_datagram(datagram) {
                            Ok(()) => stats.record_sent(n),
                            Err(err) => {
                                stats.record_error();
                                debug!(listener = %url, %peer, error = %err, bytes = n, "datagram not echoed");
                            }
                        }
                    }
                    Err(err) => break err,
                },
                () = &mut stopped => {
                    streams.close();
                    streams.wait().await;
                    conn.close(0u32.into(), b"server shutting down");
                    break quinn::ConnectionError::LocallyClosed;
                }
            }
        };
        streams.close();
        streams.wait().await;
        // A connection lost before its handshake completed was counted as a failed handshake.
        let handshake_done = match verdict {
            Some(verdict) => verdict.await.unwrap_or(false),
            None => true,
        };
        use quinn::ConnectionError as C;
        match end {
            C::ApplicationClosed(_) | C::LocallyClosed | C::TimedOut => {
                debug!(listener = %url, %peer, reason = %end, "closed");
            }
            _ if !handshake_done => {}
            err => {
                stats.record_error();
                debug!(listener = %url, %peer, error = %err, "connection error");
            }
        }
    }
}
