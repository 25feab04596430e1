//! The WebSocket echo server: the TCP acceptor, and a handshake (TLS for wss, then the HTTP
//! request head) that routes each connection to the upgrade, the page or a refusal; every
//! message is then echoed with its own type. Everything else (limits, idle and handshake
//! timeouts, drain, counters) is core's accept loop, which sees an upgraded connection as a
//! connection of messages, the way it sees QUIC's datagrams.

use std::net::SocketAddr;

use echotool_core::{
    Arrival, Connected, Established, Handshake, HandshakeError, HostPort, Limits, Multiplexed,
    Peer, Result, ServeContext, Server, ServerOptions, TlsClientOptions, async_trait,
    serve_connections,
};
use echotool_core::{BoxStream, ClientOptions};
use echotool_secure::Side;
use echotool_secure::config::{TLS_OVER_TCP, ephemeral_names, server_config};
use echotool_secure::explain::judge_io;
use echotool_tcp::TcpAcceptor;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_websockets::{CloseCode, Limits as WsLimits, Message, ServerBuilder, WebSocketStream};
use tracing::debug;

use crate::head::{self, HeadError, Request};

/// Causes failed handshakes are counted under, beside the TLS ones of the secure crate.
pub mod cause {
    /// A plain HTTP request of another path or method: refused with a 4xx.
    pub const REFUSED: &str = "refused HTTP request";
    /// Not HTTP/1.1 at all: answered with 400.
    pub const NOT_HTTP: &str = "not HTTP";
    /// The client left before its request head was complete.
    pub const CLOSED: &str = "closed before the upgrade";
}

/// Upgrades, serves the page or refuses, in the connection's own task under the handshake
/// timeout.
struct WsHandshake {
    /// The URL path the echo (and the page) is at.
    path: String,
    /// wss: the TLS acceptor, and when its certificate is valid (for a client's complaint).
    tls: Option<(TlsAcceptor, Option<String>)>,
    /// The largest message taken.
    max_message: usize,
}

#[async_trait]
impl Handshake<TcpStream> for WsHandshake {
    async fn handshake(
        &self,
        conn: TcpStream,
        peer: Peer,
    ) -> std::result::Result<Established, HandshakeError> {
        let mut stream: BoxStream = match &self.tls {
            None => Box::new(conn),
            Some((tls, validity)) => {
                let stream = tls.accept(conn).await.map_err(|e| {
                    let failure = judge_io(
                        &e,
                        Side::Server,
                        &peer.to_string(),
                        &TlsClientOptions::default(),
                    );
                    echotool_secure::explain::with_validity(failure, validity.as_deref())
                })?;
                Box::new(stream)
            }
        };
        let req = match head::read_head(&mut stream).await {
            Ok((head, rest)) => Request::parse(&head).map(|req| (req, rest)),
            Err(err) => Err(err),
        };
        let (req, rest) = match req {
            Ok(parsed) => parsed,
            Err(err @ (HeadError::Io(_) | HeadError::Closed { .. })) => {
                return Err(HandshakeError::new(cause::CLOSED, err.to_string()));
            }
            Err(err) => {
                respond(&mut stream, &head::bad_request(&err)).await;
                return Err(HandshakeError::new(cause::NOT_HTTP, err.to_string()));
            }
        };
        if let Some(plain) = head::answer(&req, &self.path) {
            respond(&mut stream, &plain).await;
            let what = format!("{} {} answered {}", req.method, req.path, plain.status);
            if plain.refused() {
                return Err(HandshakeError::new(cause::REFUSED, what));
            }
            debug!(%peer, "{what}: the page");
            return Ok(Established {
                connected: Connected::Multiplexed(Box::new(Answered)),
                finishing: None,
            });
        }
        // A WebSocket client waits for the 101 before it sends a frame.
        if !rest.is_empty() {
            let err =
                HeadError::Malformed("bytes came after the upgrade request, before its 101".into());
            respond(&mut stream, &head::bad_request(&err)).await;
            return Err(HandshakeError::new(cause::NOT_HTTP, err.to_string()));
        }
        let key = req.upgrade_key.as_deref().unwrap_or_default();
        let upgraded = async {
            stream.write_all(&head::switching_protocols(key)).await?;
            stream.flush().await
        };
        upgraded
            .await
            .map_err(|e| HandshakeError::new(cause::CLOSED, e.to_string()))?;
        debug!(%peer, path = %req.path, "upgraded to WebSocket");
        let limits = WsLimits::default().max_payload_len(Some(self.max_message));
        let ws = ServerBuilder::new().limits(limits).serve(stream);
        Ok(Established {
            connected: Connected::Multiplexed(Box::new(WsEcho { ws })),
            finishing: None,
        })
    }
}

/// Writes a plain response and closes; a client that left meanwhile loses nothing.
async fn respond(stream: &mut BoxStream, plain: &head::Plain) {
    let _ = stream.write_all(&plain.to_bytes()).await;
    let _ = stream.shutdown().await;
}

/// A connection that got its page (or nothing more to do): it ends at once, in order.
struct Answered;

#[async_trait]
impl Multiplexed for Answered {
    async fn next(&mut self) -> Arrival {
        Arrival::Closed { error: None }
    }

    fn close(&mut self, _reason: &str) {}
}

/// An upgraded connection: each message echoed with its own opcode. Pings are answered and a
/// close is echoed with its code by tokio-websockets itself, on the next read.
struct WsEcho {
    ws: WebSocketStream<BoxStream>,
}

#[async_trait]
impl Multiplexed for WsEcho {
    async fn next(&mut self) -> Arrival {
        loop {
            let message = match self.ws.next().await {
                None => return Arrival::Closed { error: None },
                Some(Ok(message)) => message,
                Some(Err(err)) => return self.failed(err).await,
            };
            if !(message.is_text() || message.is_binary()) {
                continue;
            }
            let bytes = message.as_payload().len();
            let echoed = self.ws.send(message).await.map_err(std::io::Error::other);
            return Arrival::Datagram { bytes, echoed };
        }
    }

    /// Tells the client the server is going away (1001), if the frame fits in the socket's
    /// buffer at once: shutdown does not wait for a client that does not read.
    fn close(&mut self, reason: &str) {
        let bye = Message::close(Some(CloseCode::GOING_AWAY), reason);
        let _ = self.ws.send(bye).now_or_never();
    }
}

impl WsEcho {
    /// Ends the connection after an error: an oversized message gets close 1009 with a
    /// reason, a protocol error the close frame the crate queued (1002, 1007); a client
    /// that vanished without a close frame ends it in order.
    async fn failed(&mut self, err: tokio_websockets::Error) -> Arrival {
        use tokio_websockets::Error;
        let error = match err {
            Error::PayloadTooLong { len, max_len } => {
                // The words the crate itself uses for a single oversized frame, so that both
                // cases read the same to the client.
                let reason = format!("max length: {max_len}");
                let close = Message::close(Some(CloseCode::MESSAGE_TOO_BIG), &reason);
                // A single oversized frame has queued its own 1009, and then `send` refuses and
                // only `flush` writes it; an oversized fragmented message has queued nothing.
                if self.ws.send(close).await.is_err() {
                    let _ = self.ws.flush().await;
                }
                format!(
                    "a message of {len} bytes or more, above --ws-max-message {max_len}: closed \
                     with 1009"
                )
            }
            Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Arrival::Closed { error: None };
            }
            other => {
                let _ = self.ws.flush().await;
                other.to_string()
            }
        };
        Arrival::Closed { error: Some(error) }
    }
}

/// A bound WebSocket echo server, ws or wss.
pub struct WsServer {
    tcp: TcpAcceptor,
    handshake: WsHandshake,
    local: SocketAddr,
    limits: Limits,
    notes: Vec<String>,
    /// wss: the certificate's fingerprint, for [`Server::introduce`].
    pin: Option<String>,
}

impl WsServer {
    /// Wraps a listening socket; with `secure`, TLS from `opts.tls` comes first (`asked` is
    /// the address as given, whose host goes into an ephemeral certificate's names).
    pub fn new(
        listener: TcpListener,
        asked: &HostPort,
        opts: &ServerOptions,
        secure: bool,
    ) -> Result<Self> {
        let local = listener
            .local_addr()
            .map_err(|e| echotool_core::Error::io("reading the bound address", e))?;
        let mut bound = HostPort::from(local);
        bound.path = asked.path.clone();
        let (tls, notes, pin) = match secure {
            false => (None, Vec::new(), None),
            true => {
                let setup = server_config(&opts.tls, TLS_OVER_TCP, &ephemeral_names(asked))?;
                let notes = setup.notes("wss", &bound);
                let acceptor = TlsAcceptor::from(setup.config);
                (
                    Some((acceptor, setup.validity)),
                    notes,
                    setup.certificate_pin,
                )
            }
        };
        Ok(WsServer {
            tcp: TcpAcceptor::new(listener, opts.socket.nodelay),
            handshake: WsHandshake {
                path: asked.path.clone().unwrap_or_else(|| "/".into()),
                tls,
                max_message: opts.websocket.max_message(),
            },
            local,
            limits: opts.limits.clone(),
            notes,
            pin,
        })
    }
}

#[async_trait]
impl Server for WsServer {
    fn local_addr(&self) -> HostPort {
        let mut addr = HostPort::from(self.local);
        addr.path = Some(self.handshake.path.clone()).filter(|p| p != "/");
        addr
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// A client of a wss server with a throwaway certificate pins it (the benchmark's
    /// embedded servers).
    fn introduce(&self, client: &mut ClientOptions) {
        client.tls.trust_pin(self.pin.as_deref());
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        serve_connections(self.tcp, self.handshake, self.limits, ctx).await;
        Ok(())
    }
}
