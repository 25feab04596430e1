//! The TCP echo server: accepting sockets; everything else is core's accept loop.

use std::io;
use std::net::SocketAddr;

use echotool_core::{AcceptSource, Peer, Plain, serve_connections};
use echotool_core::{HostPort, Result, ServeContext, Server, ServerOptions, async_trait};
use tokio::net::{TcpListener, TcpStream};

/// Accepts TCP connections for core's [`serve_connections`]; TLS uses it too and adds the
/// handshake.
#[derive(Debug)]
pub struct TcpAcceptor {
    /// `None` once shutdown began: dropping the socket refuses newcomers at once.
    listener: Option<TcpListener>,
    nodelay: bool,
}

impl TcpAcceptor {
    /// Accepts from `listener`, setting TCP_NODELAY on each connection when `nodelay`.
    pub fn new(listener: TcpListener, nodelay: bool) -> Self {
        TcpAcceptor {
            listener: Some(listener),
            nodelay,
        }
    }
}

#[async_trait]
impl AcceptSource for TcpAcceptor {
    type Incoming = TcpStream;

    async fn accept(&mut self) -> io::Result<Option<(TcpStream, Peer)>> {
        let Some(listener) = &self.listener else {
            return Ok(None);
        };
        let (stream, peer) = listener.accept().await?;
        // Not fatal: the connection works without it, only slower for small messages.
        let _ = stream.set_nodelay(self.nodelay);
        Ok(Some((stream, Peer::Ip(peer))))
    }

    fn stop_accepting(&mut self) {
        self.listener = None;
    }
}

/// A bound TCP echo server.
#[derive(Debug)]
pub struct TcpServer {
    acceptor: TcpAcceptor,
    local: SocketAddr,
    opts: ServerOptions,
}

impl TcpServer {
    /// Wraps a listening socket.
    pub fn new(listener: TcpListener, opts: ServerOptions) -> Self {
        let local = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        TcpServer {
            acceptor: TcpAcceptor::new(listener, opts.socket.nodelay),
            local,
            opts,
        }
    }
}

#[async_trait]
impl Server for TcpServer {
    fn local_addr(&self) -> HostPort {
        HostPort::from(self.local)
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        serve_connections(self.acceptor, Plain, self.opts.limits, ctx).await;
        Ok(())
    }
}
