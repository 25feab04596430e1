//! The QUIC echo server: connections, echo streams and echoed datagrams.

use std::net::SocketAddr;
use std::sync::Arc;

use std::io;
use std::time::Duration;

use echotool_core::resolve;
use echotool_core::{
    AcceptSource, Arrival, Connected, Established, Handshake, Multiplexed, serve_connections,
};
use echotool_core::{
    Error, Family, HandshakeError, HostPort, Limits, Peer, Result, ServeContext, Server,
    ServerOptions, async_trait,
};
use echotool_secure::config::ServerSetup;
use echotool_secure::explain::with_validity;
use quinn::crypto::rustls::QuicServerConfig;
use socket2::{Domain, Protocol, Socket, Type};

use crate::QuicError;
use crate::error::handshake_failure;
use crate::path;
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
    /// The server configuration for clients on a loopback path (see [`crate::path`]).
    loopback: Arc<quinn::ServerConfig>,
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
        let mut loopback = config.clone();
        loopback.transport_config(path::for_peer(
            server_transport(&opts.limits),
            std::net::Ipv4Addr::LOCALHOST.into(),
            path::Side::Server,
        ));
        let endpoint = crate::socket::endpoint(Some(config), socket.into()).map_err(bind_err)?;
        let local = endpoint.local_addr().map_err(bind_err)?;
        Ok(QuicServer {
            notes: setup.notes("quic", &HostPort::from(local)),
            pin: setup.certificate_pin.clone(),
            validity: setup.validity.as_deref().map(Arc::from),
            endpoint,
            local,
            limits: opts.limits.clone(),
            loopback: Arc::new(loopback),
        })
    }
}

/// Bidirectional streams a client may have open at once on one connection. quinn sets aside
/// room for every stream a peer may open, for the life of the connection: at 1 024 that was
/// 86 KB of every idle connection's 118 KB (benches/results/idle-memory.md). 100 is quinn's
/// default and the least HTTP/3 asks of a server (RFC 9114, section 6.1), so clients expect
/// it; a client that wants more waits for credit, granted as its streams close, and nothing
/// is refused. Only a client that keeps more than 100 open at once waits for good.
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// Server transport settings: the idle timeout of the limits, [`MAX_CONCURRENT_STREAMS`]
/// bidirectional streams and no unidirectional ones (each allowed stream costs memory even
/// unused), datagrams on (their buffer is a limit, allocated only as datagrams arrive).
fn server_transport(limits: &Limits) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(
        limits
            .idle_timeout
            .and_then(|d| quinn::IdleTimeout::try_from(d).ok()),
    );
    transport.max_concurrent_bidi_streams(MAX_CONCURRENT_STREAMS.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.datagram_receive_buffer_size(Some(1 << 20));
    transport
}

#[async_trait]
impl Server for QuicServer {
    fn local_addr(&self) -> HostPort {
        HostPort::from(self.local)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// A client of this server pins its certificate (the benchmark's embedded servers make
    /// throwaway ones).
    fn introduce(&self, client: &mut echotool_core::ClientOptions) {
        client.tls.trust_pin(self.pin.as_deref());
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        let QuicServer {
            endpoint,
            limits,
            validity,
            loopback,
            ..
        } = *self;
        let handshake = QuicHandshake { validity, loopback };
        serve_connections(QuicSource { endpoint }, handshake, limits, ctx).await;
        Ok(())
    }
}

/// The endpoint as core's accept loop sees it: connections arrive as `Incoming`, a refused
/// one is told so, and shutdown closes the endpoint after the drain.
struct QuicSource {
    endpoint: quinn::Endpoint,
}

#[async_trait]
impl AcceptSource for QuicSource {
    type Incoming = quinn::Incoming;

    async fn accept(&mut self) -> io::Result<Option<(quinn::Incoming, Peer)>> {
        Ok(self.endpoint.accept().await.map(|incoming| {
            let peer = Peer::Ip(incoming.remote_address());
            (incoming, peer)
        }))
    }

    fn refuse(&self, incoming: quinn::Incoming) {
        incoming.refuse();
    }

    /// QUIC has its own idle timeout (max_idle_timeout), enforced by quinn per connection.
    fn closes_idle_connections(&self) -> bool {
        true
    }

    fn stop_accepting(&mut self) {
        self.endpoint.set_server_config(None);
    }

    async fn finish(self) {
        self.endpoint.close(0u32.into(), b"server shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// The QUIC handshake of a connection, explained by cause when it fails.
struct QuicHandshake {
    /// When the server's certificate is valid, for clients that say it is not.
    validity: Option<Arc<str>>,
    /// The configuration for clients on a loopback path.
    loopback: Arc<quinn::ServerConfig>,
}

impl QuicHandshake {
    /// Explains a failed handshake, with the certificate's validity when the client says it
    /// has expired.
    fn judge(&self) -> impl Fn(&quinn::ConnectionError) -> HandshakeError + Send + 'static {
        let validity = self.validity.clone();
        move |err| with_validity(handshake_failure(err), validity.as_deref())
    }
}

#[async_trait]
impl Handshake<quinn::Incoming> for QuicHandshake {
    async fn handshake(
        &self,
        incoming: quinn::Incoming,
        _peer: Peer,
    ) -> std::result::Result<Established, HandshakeError> {
        let judge = self.judge();
        let accepted = match path::is_loopback(incoming.remote_address().ip()) {
            true => incoming.accept_with(self.loopback.clone()),
            false => incoming.accept(),
        };
        let connecting = accepted.map_err(|e| judge(&e))?;
        // 0.5-RTT: streams a resuming client opened with early data are served before the
        // handshake completes; core still holds the rest of the handshake to its timeout.
        match connecting.into_0rtt() {
            Ok((conn, accepted)) => {
                let watched = conn.clone();
                let finishing = async move {
                    if accepted.await {
                        return Ok(());
                    }
                    match watched.close_reason() {
                        // Closed by this server (shutting down) is nobody's failure.
                        Some(quinn::ConnectionError::LocallyClosed) | None => Ok(()),
                        Some(err) => Err(judge(&err)),
                    }
                };
                Ok(Established {
                    connected: Connected::Multiplexed(Box::new(QuicConnection { conn })),
                    finishing: Some(Box::pin(finishing)),
                })
            }
            Err(connecting) => {
                let conn = connecting.await.map_err(|e| judge(&e))?;
                Ok(Established {
                    connected: Connected::Multiplexed(Box::new(QuicConnection { conn })),
                    finishing: None,
                })
            }
        }
    }
}

/// A QUIC connection's streams and datagrams, for core's accept loop.
struct QuicConnection {
    conn: quinn::Connection,
}

#[async_trait]
impl Multiplexed for QuicConnection {
    async fn next(&mut self) -> Arrival {
        let ended = tokio::select! {
            stream = self.conn.accept_bi() => match stream {
                Ok((send, recv)) => return Arrival::Stream(Box::new(QuicStream::server(send, recv))),
                Err(err) => err,
            },
            datagram = self.conn.read_datagram() => match datagram {
                Ok(datagram) => {
                    let bytes = datagram.len();
                    let echoed = self.conn.send_datagram(datagram).map_err(io::Error::other);
                    return Arrival::Datagram { bytes, echoed };
                }
                Err(err) => err,
            },
        };
        use quinn::ConnectionError as C;
        let error = match ended {
            C::ApplicationClosed(_) | C::LocallyClosed | C::TimedOut => None,
            err => Some(err.to_string()),
        };
        Arrival::Closed { error }
    }

    fn close(&mut self, reason: &str) {
        self.conn.close(0u32.into(), reason.as_bytes());
    }
}
