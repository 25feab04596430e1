//! The TLS echo server: the TCP acceptor plus a handshake; everything else is core's accept
//! loop.

use std::net::SocketAddr;

use echotool_core::{Established, Handshake, serve_connections};
use echotool_core::{
    HandshakeError, HostPort, Limits, Peer, Result, ServeContext, Server, ServerOptions,
    TlsClientOptions, async_trait,
};
use echotool_tcp::TcpAcceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::stream::TlsByteStream;
use echotool_secure::Side;
use echotool_secure::config::{TLS_OVER_TCP, ephemeral_names, server_config};
use echotool_secure::explain::judge_io;

/// Completes the TLS handshake of an accepted TCP connection, in the connection's own task.
struct TlsHandshake {
    tls: TlsAcceptor,
    /// When this server's certificate is valid, to say beside a client's complaint that it
    /// is not.
    validity: Option<String>,
}

#[async_trait]
impl Handshake<TcpStream> for TlsHandshake {
    async fn handshake(
        &self,
        conn: TcpStream,
        peer: Peer,
    ) -> std::result::Result<Established, HandshakeError> {
        let stream = self.tls.accept(conn).await.map_err(|e| {
            let failure = judge_io(
                &e,
                Side::Server,
                &peer.to_string(),
                &TlsClientOptions::default(),
            );
            echotool_secure::explain::with_validity(failure, self.validity.as_deref())
        })?;
        Ok(Established::stream(Box::new(TlsByteStream::new(
            stream,
            Side::Server,
            peer.to_string(),
            TlsClientOptions::default(),
        ))))
    }
}

/// A bound TLS echo server.
pub struct TlsServer {
    tcp: TcpAcceptor,
    handshake: TlsHandshake,
    local: SocketAddr,
    limits: Limits,
    notes: Vec<String>,
    pin: Option<String>,
}

impl TlsServer {
    /// Wraps a listening socket with the TLS configuration from `opts`; `asked` is the address
    /// as given, whose host goes into an ephemeral certificate's names.
    pub fn new(listener: TcpListener, asked: &HostPort, opts: &ServerOptions) -> Result<Self> {
        let local = listener
            .local_addr()
            .map_err(|e| echotool_core::Error::io("reading the bound address", e))?;
        let extra_sans = ephemeral_names(asked);
        let setup = server_config(&opts.tls, TLS_OVER_TCP, &extra_sans)?;
        let notes = setup.notes("tls", &HostPort::from(local));
        Ok(TlsServer {
            tcp: TcpAcceptor::new(listener, opts.socket.nodelay),
            handshake: TlsHandshake {
                tls: TlsAcceptor::from(setup.config),
                validity: setup.validity,
            },
            local,
            limits: opts.limits.clone(),
            notes,
            pin: setup.certificate_pin,
        })
    }
}

#[async_trait]
impl Server for TlsServer {
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
        serve_connections(self.tcp, self.handshake, self.limits, ctx).await;
        Ok(())
    }
}
