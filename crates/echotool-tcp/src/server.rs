//! The TCP echo server: accepting sockets, everything else is the shared stream listener.

use std::io;
use std::net::SocketAddr;

use echotool_core::listener::{Accept, Plain, serve_streams};
use echotool_core::{Result, ServeContext, Server, ServerOptions, async_trait};
use tokio::net::{TcpListener, TcpStream};

/// Accepts TCP connections for [`serve_streams`]; TLS uses it too and adds the handshake.
#[derive(Debug)]
pub struct TcpAcceptor {
    listener: TcpListener,
    nodelay: bool,
}

impl TcpAcceptor {
    /// Accepts from `listener`, setting TCP_NODELAY on each connection when `nodelay`.
    pub fn new(listener: TcpListener, nodelay: bool) -> Self {
        TcpAcceptor { listener, nodelay }
    }

    /// Accepts one TCP connection with the socket options applied.
    pub async fn accept_tcp(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.listener.accept().await?;
        // Not fatal: the connection works without it, only slower for small messages.
        let _ = stream.set_nodelay(self.nodelay);
        Ok((stream, peer))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[async_trait]
impl Accept for TcpAcceptor {
    type Conn = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_tcp().await
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
    fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()> {
        serve_streams(self.acceptor, Plain, self.opts.limits, ctx).await;
        Ok(())
    }
}
