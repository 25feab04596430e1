//! UDP for echotool: every datagram goes back to its sender unchanged, one in, one out.
//!
//! The server runs several sockets on one port with SO_REUSEPORT (one per CPU by default), so
//! the kernel spreads senders across them. Datagrams from the well-known ports of echo-like
//! services are dropped instead of answered ([`guard`]), so two echo services can never be
//! made to bounce packets at each other, and an optional per-source rate limit keeps one
//! sender from monopolising the server.
//!
//! The client side is a connected UDP socket, so an ICMP port-unreachable from the far end
//! surfaces as "connection refused" instead of silence.

#![warn(missing_docs)]

pub mod guard;
mod server;

pub use server::UdpServer;

use std::net::SocketAddr;

use echotool_core::resolve_dial;
use echotool_core::{
    Binding, Channel, ClientOptions, Connection, DatagramSocket, Error, Family, HostPort, Kind,
    Result, Server, ServerOptions, Setting, Transport, async_trait,
};
use tokio::net::UdpSocket;

/// The largest UDP payload over IPv4: 65535 minus the 20-byte IP and 8-byte UDP headers.
pub const MAX_PAYLOAD_V4: usize = 65_507;
/// The largest UDP payload over IPv6 (without jumbograms): 65535 minus the 8-byte UDP header.
pub const MAX_PAYLOAD_V6: usize = 65_527;

/// The largest payload for a destination address.
pub fn max_payload(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() {
        MAX_PAYLOAD_V4
    } else {
        MAX_PAYLOAD_V6
    }
}

/// The `udp` transport.
#[derive(Clone, Copy, Debug, Default)]
pub struct UdpTransport;

#[async_trait]
impl Transport for UdpTransport {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn summary(&self) -> &'static str {
        "UDP datagrams over IPv4 or IPv6, one echo per datagram"
    }

    fn kind(&self) -> Kind {
        Kind::Datagram
    }

    fn binds(&self) -> Binding {
        Binding::Udp
    }

    fn reads(&self) -> Vec<Setting> {
        [Setting::BUFFERS, Setting::DATAGRAMS].concat()
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("udp://{addr}");
        Ok(Box::new(UdpServer::bind(&url, addr, opts).await?))
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("udp://{addr}");
        let peer = resolve_dial(addr, Family::Any, opts.resolved.as_ref()).await?[0];
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let connect = async {
            let socket = UdpSocket::bind(local).await?;
            let sock = socket2::SockRef::from(&socket);
            if let Some(size) = opts.socket.recv_buffer {
                sock.set_recv_buffer_size(size)?;
            }
            if let Some(size) = opts.socket.send_buffer {
                sock.set_send_buffer_size(size)?;
            }
            socket.connect(peer).await?;
            Ok(socket)
        };
        let socket = connect
            .await
            .map_err(|source| Error::Connect { url, source })?;
        Ok(Connection {
            channel: Channel::Datagram(Box::new(UdpClient {
                socket,
                max: max_payload(&peer),
            })),
            peer: peer.into(),
            details: vec![format!("sending datagrams to {peer}")],
            resumed: false,
            streams: None,
        })
    }
}

/// A connected UDP socket seen as a [`DatagramSocket`].
struct UdpClient {
    socket: UdpSocket,
    max: usize,
}

#[async_trait]
impl DatagramSocket for UdpClient {
    async fn send(&self, payload: &[u8]) -> std::io::Result<()> {
        self.socket.send(payload).await.map(drop)
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.recv(buf).await
    }

    fn max_payload(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use echotool_core::testing::Loopback;
    use echotool_core::{DatagramServerOptions, ServerOptions};

    use super::UdpTransport;

    #[tokio::test]
    async fn every_datagram_comes_back_once_and_is_counted() {
        let options = ServerOptions {
            datagram: DatagramServerOptions {
                workers: Some(2),
                ..DatagramServerOptions::default()
            },
            ..ServerOptions::default()
        };
        let server = Loopback::serve(UdpTransport, options).await.unwrap();
        let (echo, report) = server.echo_with(&server.client, b"ping", 5).await.unwrap();
        assert_eq!(
            (echo, report.lost, report.duplicated),
            (b"ping".repeat(5), 0, 0)
        );
        let stats = server.stop().await;
        assert_eq!(
            (stats.received, stats.messages, stats.bytes_out),
            (5, 5, 20)
        );
    }
}
