//! TLS over TCP for echotool.
//!
//! The `tls` transport layers tokio-rustls on the TCP crate's listener, dialer and acceptor
//! (nothing of TCP is copied here): the TCP connection is accepted or dialed exactly as for
//! `tcp`, then the handshake runs in the connection's own task under the handshake timeout.
//! Certificates, verification, the rustls configurations and the words for every failure
//! come from `echotool-secure`, which QUIC shares.

#![warn(missing_docs)]

mod server;
mod stream;

pub use server::TlsServer;

use echotool_core::{
    Binding, Channel, ClientOptions, Connection, Family, HostPort, Result, Server, ServerOptions,
    Setting, SetupVariant, Transport, async_trait,
};
use tokio_rustls::TlsConnector;

use echotool_secure::config::{self, check_server};
use echotool_secure::{ClientConfigs, Side};

use crate::stream::TlsByteStream;

/// The `tls` transport: TLS 1.2 and 1.3 over TCP, IPv4 or IPv6.
#[derive(Default)]
pub struct TlsTransport {
    /// Kept across dials so sessions can be resumed.
    clients: ClientConfigs,
}

#[async_trait]
impl Transport for TlsTransport {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn summary(&self) -> &'static str {
        "TLS 1.2/1.3 over TCP (rustls); a throwaway certificate unless --cert/--key"
    }

    fn setup_variants(&self) -> &'static [SetupVariant] {
        &[
            SetupVariant {
                name: "full",
                resume: false,
                shared_endpoint: false,
            },
            SetupVariant {
                name: "resumed",
                resume: true,
                shared_endpoint: false,
            },
        ]
    }

    fn secure(&self) -> bool {
        true
    }

    fn binds(&self) -> Binding {
        Binding::Tcp
    }

    fn reads(&self) -> Vec<Setting> {
        [
            Setting::CONNECTIONS,
            Setting::BUFFERS,
            Setting::TCP_LISTENER,
            Setting::SECURE,
        ]
        .concat()
    }

    fn check(&self, opts: &ServerOptions) -> Result<()> {
        check_server(&opts.tls, config::TLS_OVER_TCP)
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("tls://{addr}");
        let listener =
            echotool_tcp::socket::bind_listener(&url, addr, Family::Any, &opts.socket).await?;
        Ok(Box::new(TlsServer::new(listener, addr, opts)?))
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("tls://{addr}");
        let setup = self
            .clients
            .get(&opts.tls, config::TLS_OVER_TCP, opts.resume)?;
        let (name, server_name) = echotool_secure::client::server_name(&opts.tls, &addr.host)?;
        let handshake = async {
            let tcp = echotool_tcp::socket::dial(&url, addr, Family::Any, opts).await?;
            let peer = tcp
                .peer_addr()
                .map_err(|e| echotool_core::Error::io(format!("connecting to {url}"), e))?;
            let tls = TlsConnector::from(setup.config)
                .connect(server_name, tcp)
                .await
                .map_err(|e| {
                    echotool_secure::explain::handshake_error(&e, Side::Client, &name, &opts.tls)
                })?;
            Ok::<_, echotool_core::Error>((tls, peer))
        };
        let (tls, peer) = tokio::time::timeout(opts.connect_timeout, handshake)
            .await
            .map_err(|_| echotool_core::Error::Timeout {
                what: format!("no TLS session with {url}"),
                after: opts.connect_timeout,
                hint: "is it a TLS server? A plaintext server may be waiting for a line; try \
                       --proto tcp, or raise --timeout on a slow network"
                    .into(),
            })??;
        let details = stream::describe_client(&tls, peer);
        let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok(Connection {
            channel: Channel::Stream(Box::new(TlsByteStream::new(
                tls,
                Side::Client,
                name,
                opts.tls.clone(),
            ))),
            peer: peer.into(),
            details,
            resumed,
            streams: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use echotool_core::testing::Loopback;
    use echotool_core::{ClientOptions, ServerOptions, Transport};

    use super::TlsTransport;

    #[tokio::test]
    async fn a_pinned_client_echoes_and_resumes_its_session() {
        let server = Loopback::serve(TlsTransport::default(), ServerOptions::default())
            .await
            .expect("binds with an ephemeral certificate");
        assert!(
            server.client.tls.pin.is_some(),
            "the server introduced its pin"
        );
        let first = server.dial(&server.client).await.unwrap();
        assert!(!first.resumed, "a first connection makes a full handshake");
        drop(first);
        let (echo, _) = server
            .echo_with(&server.client, b"secret\n", 2)
            .await
            .unwrap();
        assert_eq!(echo, b"secret\n".repeat(2));
        // The same transport kept the session: the next connection resumes it.
        let again = server.dial(&server.client).await.unwrap();
        assert!(again.resumed, "the session ticket was used");
        drop(again);
        let stats = server.stop().await;
        assert_eq!((stats.messages, stats.errors), (2, 0));
    }

    #[tokio::test]
    async fn an_unpinned_client_refuses_the_throwaway_certificate_in_words() {
        let server = Loopback::serve(TlsTransport::default(), ServerOptions::default())
            .await
            .unwrap();
        let Err(err) = TlsTransport::default()
            .dial(&server.addr, &ClientOptions::default())
            .await
        else {
            panic!("a self-signed certificate is not trusted by default")
        };
        assert!(
            err.to_string()
                .contains("not issued by a CA this client trusts"),
            "{err}"
        );
        let stats = server.stop().await;
        assert_eq!(stats.failed_handshakes_total(), 1, "{stats}");
    }
}
