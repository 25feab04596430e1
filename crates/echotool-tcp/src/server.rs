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
    /// TCP_NODELAY to set on each accepted connection; `None` when it already has it.
    nodelay: Option<bool>,
}

impl TcpAcceptor {
    /// Accepts from `listener`, with TCP_NODELAY on each connection when `nodelay`.
    ///
    /// Linux copies the listening socket's TCP_NODELAY into every socket it accepts, so when
    /// the listener already has the setting asked for (echotool's own listeners do), the
    /// per-connection system call is skipped: one less per accepted connection, which shows in
    /// a server's cost per handshake.
    pub fn new(listener: TcpListener, nodelay: bool) -> Self {
        let inherited = cfg!(target_os = "linux")
            && socket2::SockRef::from(&listener).tcp_nodelay().ok() == Some(nodelay);
        TcpAcceptor {
            listener: Some(listener),
            nodelay: (!inherited).then_some(nodelay),
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
        if let Some(nodelay) = self.nodelay {
            // Not fatal: the connection works without it, only slower for small messages.
            let _ = stream.set_nodelay(nodelay);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts one connection through a `TcpAcceptor` on `listener` and reads its TCP_NODELAY.
    async fn accepted_nodelay(listener: std::net::TcpListener, nodelay: bool) -> bool {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = TcpAcceptor::new(TcpListener::from_std(listener).unwrap(), nodelay);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = acceptor.accept().await.unwrap().unwrap();
        stream.nodelay().unwrap()
    }

    #[tokio::test]
    async fn every_accepted_connection_gets_the_nodelay_asked_for() {
        for (on_listener, asked) in [(true, true), (false, true), (false, false), (true, false)] {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket2::SockRef::from(&listener)
                .set_tcp_nodelay(on_listener)
                .unwrap();
            assert_eq!(
                accepted_nodelay(listener, asked).await,
                asked,
                "listener {on_listener}, asked {asked}"
            );
        }
    }
}
