//! TCP over IPv4 and IPv6 for echotool.
//!
//! Three transports share this code: `tcp` (whichever family the address has; `[::]` is dual
//! stack), `tcp4` (IPv4 only) and `tcp6` (IPv6 only, with IPV6_V6ONLY set so it never takes
//! IPv4 traffic). Sockets are made with socket2 so that SO_REUSEADDR, TCP_NODELAY, the backlog
//! and buffer sizes are set before `bind` and `listen`, where they take effect.
//!
//! [`socket::bind_listener`], [`socket::dial`] and [`TcpAcceptor`] are public so that TLS (and
//! anything else layered on TCP) reuses them instead of copying them.

#![warn(missing_docs)]

mod server;
pub mod socket;

pub use server::{TcpAcceptor, TcpServer};

use echotool_core::{
    Binding, ClientOptions, Connection, Family, HostPort, Result, Server, ServerOptions, Setting,
    Transport, async_trait,
};

/// The TCP transport for one address family.
#[derive(Clone, Copy, Debug)]
pub struct TcpTransport {
    family: Family,
}

impl TcpTransport {
    /// `tcp`: IPv4 or IPv6, whichever the address is.
    pub fn any() -> Self {
        TcpTransport {
            family: Family::Any,
        }
    }

    /// `tcp4`: IPv4 only.
    pub fn v4() -> Self {
        TcpTransport { family: Family::V4 }
    }

    /// `tcp6`: IPv6 only.
    pub fn v6() -> Self {
        TcpTransport { family: Family::V6 }
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn name(&self) -> &'static str {
        match self.family {
            Family::Any => "tcp",
            Family::V4 => "tcp4",
            Family::V6 => "tcp6",
        }
    }

    fn summary(&self) -> &'static str {
        match self.family {
            Family::Any => "TCP over IPv4 or IPv6, by address",
            Family::V4 => "TCP over IPv4 only",
            Family::V6 => "TCP over IPv6 only",
        }
    }

    fn family(&self) -> Family {
        self.family
    }

    fn binds(&self) -> Binding {
        Binding::Tcp
    }

    fn reads(&self) -> Vec<Setting> {
        [
            Setting::CONNECTIONS,
            Setting::BUFFERS,
            Setting::TCP_LISTENER,
        ]
        .concat()
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("{}://{addr}", self.name());
        let listener = socket::bind_listener(&url, addr, self.family, &opts.socket).await?;
        Ok(Box::new(TcpServer::new(listener, opts.clone())))
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("{}://{addr}", self.name());
        let stream = socket::dial(&url, addr, self.family, opts).await?;
        let peer = stream
            .peer_addr()
            .map_err(|e| echotool_core::Error::io(format!("connecting to {url}"), e))?;
        Ok(Connection {
            channel: echotool_core::Channel::Stream(Box::new(stream)),
            peer: peer.into(),
            details: vec![format!("connected to {peer}")],
            resumed: false,
            streams: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use echotool_core::testing::Loopback;
    use echotool_core::{ClientOptions, Error, HostPort, ServerOptions, Transport};

    use super::TcpTransport;

    #[tokio::test]
    async fn echoes_over_ipv4_and_ipv6_and_counts_what_it_echoed() {
        for transport in [TcpTransport::v4(), TcpTransport::v6()] {
            let server = Loopback::serve(transport, ServerOptions::default())
                .await
                .expect("binds on loopback");
            assert_eq!(
                server.echo(b"hello\n", 3).await.unwrap(),
                b"hello\n".repeat(3)
            );
            let stats = server.stop().await;
            assert_eq!(
                (stats.connections, stats.messages, stats.bytes_in),
                (1, 3, 18)
            );
            assert_eq!((stats.bytes_out, stats.errors), (18, 0));
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_v4_address_is_no_tcp6() {
        let server = Loopback::serve(TcpTransport::any(), ServerOptions::default())
            .await
            .unwrap();
        let closed = server.addr.clone();
        server.stop().await;
        let Err(err) = TcpTransport::any()
            .dial(&closed, &ClientOptions::default())
            .await
        else {
            panic!("nothing listens any more")
        };
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        let v4 = HostPort::new("127.0.0.1", closed.port);
        let Err(err) = TcpTransport::v6()
            .dial(&v4, &ClientOptions::default())
            .await
        else {
            panic!("tcp6 takes no IPv4 address")
        };
        assert!(err.to_string().contains("has no IPv6 address"), "{err}");
    }
}
