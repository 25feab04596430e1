//! WebSocket for echotool: `ws://host:port/path` over TCP and `wss://` over TLS, and a page
//! that makes a browser the client.
//!
//! A listener serves one URL path (`/` unless the endpoint names one). Per connection it reads
//! the HTTP request head itself ([`head`], bounded to 8 KiB and timed by the handshake
//! timeout) and decides: an upgrade of its path gets the 101 and an echo of every message with
//! its own type (text stays text, binary stays binary); a plain `GET` of its path gets the
//! tutorial's page (`src/page.html`: type a line, see it come back with its round-trip time);
//! another path gets 404, another method 405, a head that is not HTTP/1.1 400, each with one
//! line that says what to do. Pings are answered, a close is echoed with its code, fragments
//! are reassembled, and a message above `--ws-max-message` is refused with close 1009.
//!
//! The TCP sockets are the TCP crate's (as TLS's are) and the TLS of `wss` is the secure
//! crate's: the same certificates, pins and words for every failure as `tls`. Core's accept
//! loop serves it: an upgraded connection is to it a connection of messages, each echoed by
//! this crate and counted there, as QUIC's datagrams are. The client side hands core a
//! [`echotool_core::DatagramSocket`] of messages (see [`client`] for how a message's type is
//! chosen and checked).
//!
//! # Dependencies, and why
//!
//! - **tokio-websockets** (0.13) does the framing. It was chosen by measurement against
//!   tokio-tungstenite and fastwebsockets (`benches/results/ws-crates.md`): all three are within
//!   15% of one another in CPU per echo and per setup, but tokio-websockets is the only one that
//!   gets the protocol right without help (close 1002 for an unmasked client frame, 1007 for
//!   bad UTF-8, a limit on a reassembled message and not only on a frame), it keeps 8 KiB per
//!   idle connection where tokio-tungstenite keeps 137, it works over any `AsyncRead +
//!   AsyncWrite` (the TCP and the tokio-rustls stream alike), and it brings the fewest crates.
//!   Its SHA-1 and randomness come from aws-lc-rs and getrandom, which echotool builds anyway.
//! - **httparse** reads the request and response heads: tokio-websockets answers anything
//!   that is not an upgrade with a bare 400 the application never sees, so the page and the
//!   4xx that explain need the head read here (it is tokio-websockets' own HTTP parser, so no
//!   new crate).
//! - **futures-util** for the `Stream` and `Sink` of a WebSocket (`next`, `send`, `split`).
//! - **getrandom** for the client's `Sec-WebSocket-Key`, the source tokio-websockets masks
//!   frames from (aws-lc-rs's generator took half a second to seed itself on first use).

#![warn(missing_docs)]

mod client;
mod error;
pub mod head;
mod server;

pub use error::WsError;
pub use server::{WsServer, cause};

use echotool_core::{
    Addressing, Binding, BoxStream, Channel, ClientOptions, Connection, Family, HostPort, Result,
    Server, ServerOptions, Setting, SetupVariant, TlsClientOptions, Transport, WebSocketOptions,
    async_trait,
};
use echotool_secure::config::{self, check_server};
use echotool_secure::{ClientConfigs, Side, describe_certificate};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::client::WsSocket;

/// The `ws` and `wss` transports.
pub struct WsTransport {
    /// wss: TLS before the upgrade.
    secure: bool,
    /// wss: client configurations kept across dials, so sessions can be resumed.
    clients: ClientConfigs,
}

impl WsTransport {
    /// `ws`: WebSocket over TCP.
    pub fn plain() -> Self {
        WsTransport {
            secure: false,
            clients: ClientConfigs::default(),
        }
    }

    /// `wss`: WebSocket over TLS.
    pub fn secure() -> Self {
        WsTransport {
            secure: true,
            clients: ClientConfigs::default(),
        }
    }

    /// The URL scheme.
    fn scheme(&self) -> &'static str {
        if self.secure { "wss" } else { "ws" }
    }
}

#[async_trait]
impl Transport for WsTransport {
    fn name(&self) -> &'static str {
        self.scheme()
    }

    fn summary(&self) -> &'static str {
        match self.secure {
            false => "WebSocket over TCP; a plain GET of its path is a page to echo from a browser",
            true => "WebSocket over TLS (the certificates, pins and checks of tls), and its page",
        }
    }

    fn addressing(&self) -> Addressing {
        Addressing::Url
    }

    fn binds(&self) -> Binding {
        Binding::Tcp
    }

    fn secure(&self) -> bool {
        self.secure
    }

    /// The round trips of each way in: TCP and the upgrade; for wss TLS too, full or resumed.
    fn setup_variants(&self) -> &'static [SetupVariant] {
        match self.secure {
            false => &[SetupVariant {
                name: "tcp+upgrade",
                resume: false,
                shared_endpoint: false,
            }],
            true => &[
                SetupVariant {
                    name: "tls+upgrade",
                    resume: false,
                    shared_endpoint: false,
                },
                SetupVariant {
                    name: "resumed+upgrade",
                    resume: true,
                    shared_endpoint: false,
                },
            ],
        }
    }

    fn reads(&self) -> Vec<Setting> {
        let mut reads = [
            Setting::CONNECTIONS,
            Setting::BUFFERS,
            Setting::TCP_LISTENER,
            Setting::WEBSOCKET,
        ]
        .concat();
        if self.secure {
            let tls: Vec<Setting> = Setting::SECURE
                .iter()
                .filter(|s| !reads.contains(s))
                .copied()
                .collect();
            reads.extend(tls);
        }
        reads
    }

    fn check(&self, opts: &ServerOptions) -> Result<()> {
        match self.secure {
            true => check_server(&opts.tls, config::TLS_OVER_TCP),
            false => Ok(()),
        }
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("{}://{addr}", self.scheme());
        let listener =
            echotool_tcp::socket::bind_listener(&url, addr, Family::Any, &opts.socket).await?;
        Ok(Box::new(WsServer::new(listener, addr, opts, self.secure)?))
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("{}://{addr}", self.scheme());
        let dialed = tokio::time::timeout(opts.connect_timeout, self.connect(&url, addr, opts));
        let dialed = dialed.await.map_err(|_| echotool_core::Error::Timeout {
            what: format!("no WebSocket with {url}"),
            after: opts.connect_timeout,
            hint: "is it a WebSocket server? Raise --timeout on a slow network".into(),
        })??;
        Ok(Connection {
            channel: Channel::Datagram(Box::new(WsSocket::new(
                dialed.stream,
                WebSocketOptions::DEFAULT_MAX_MESSAGE,
            ))),
            peer: dialed.peer.into(),
            details: dialed.details,
            resumed: dialed.resumed,
            streams: None,
        })
    }
}

/// wss's TLS client for one dial, made before the TCP connection.
struct TlsClient {
    connector: TlsConnector,
    /// The name checked, for messages.
    name: String,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// The TLS handshake over `tcp`, failures in the secure crate's words.
    async fn connect(
        self,
        tcp: tokio::net::TcpStream,
        opts: &TlsClientOptions,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let name = self.name;
        let tls = self.connector.connect(self.server_name, tcp).await;
        Ok(tls.map_err(|e| {
            echotool_secure::explain::handshake_error(&e, Side::Client, &name, opts)
        })?)
    }
}

/// A connection dialed and upgraded.
struct Dialed {
    stream: BoxStream,
    peer: std::net::SocketAddr,
    /// What `-v` shows.
    details: Vec<String>,
    /// Whether a TLS session was resumed.
    resumed: bool,
}

impl WsTransport {
    /// TCP, TLS for wss, and the upgrade.
    async fn connect(&self, url: &str, addr: &HostPort, opts: &ClientOptions) -> Result<Dialed> {
        // wss: the configuration and the server name before the dial, so that a bad `--ca` or
        // `--server-name` is reported as itself, as over tls and quic, not as what the dial meets.
        let secure = match self.secure {
            true => Some(self.tls_client(addr, opts)?),
            false => None,
        };
        let tcp = echotool_tcp::socket::dial(url, addr, Family::Any, opts).await?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| echotool_core::Error::io(format!("connecting to {url}"), e))?;
        let mut details = vec![format!("connected to {peer}")];
        let mut resumed = false;
        let mut stream: BoxStream = match secure {
            None => Box::new(tcp),
            Some(client) => {
                let tls = client.connect(tcp, &opts.tls).await?;
                let conn = tls.get_ref().1;
                resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                details.push(echotool_secure::describe_session(conn));
                if let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) {
                    details.push(describe_certificate(cert));
                }
                Box::new(tls)
            }
        };
        let host = HostPort::new(addr.host.clone(), addr.port).to_string();
        let path = addr.path.as_deref().unwrap_or("/");
        client::upgrade(&mut stream, &host, path)
            .await
            .map_err(|e| WsError::Upgrade {
                url: url.to_string(),
                why: e.to_string(),
            })?;
        details.push(format!("WebSocket upgrade of {path} accepted (101)"));
        Ok(Dialed {
            stream,
            peer,
            details,
            resumed,
        })
    }

    /// What wss's TLS handshake needs, from the secure crate: the configuration and the name.
    fn tls_client(&self, addr: &HostPort, opts: &ClientOptions) -> Result<TlsClient> {
        let setup = self
            .clients
            .get(&opts.tls, config::TLS_OVER_TCP, opts.resume)?;
        let (name, server_name) = echotool_secure::client::server_name(&opts.tls, &addr.host)?;
        Ok(TlsClient {
            connector: TlsConnector::from(setup.config),
            name,
            server_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use echotool_core::testing::Loopback;
    use echotool_core::{Channel, ServerOptions, WebSocketOptions};

    use super::WsTransport;

    #[tokio::test]
    async fn ws_and_wss_echo_through_their_own_client_and_wss_resumes() {
        for transport in [WsTransport::plain(), WsTransport::secure()] {
            let secure = transport.secure;
            let server = Loopback::serve(transport, ServerOptions::default())
                .await
                .expect("binds");
            let (echo, _) = server
                .echo_with(&server.client, b"line\n", 3)
                .await
                .unwrap();
            assert_eq!(echo, b"line\n".repeat(3));
            let again = server.dial(&server.client).await.unwrap();
            assert!(matches!(again.channel, Channel::Datagram(_)));
            assert_eq!(again.resumed, secure, "a wss session ticket is used");
            drop(again);
            let stats = server.stop().await;
            assert_eq!((stats.messages, stats.errors), (3, 0), "{stats}");
        }
    }

    #[tokio::test]
    async fn a_message_above_the_limit_is_refused_with_1009_in_words() {
        let opts = ServerOptions {
            websocket: WebSocketOptions {
                max_message: Some(100),
            },
            ..ServerOptions::default()
        };
        let server = Loopback::serve(WsTransport::plain(), opts).await.unwrap();
        let err = server.echo(&[b'x'; 101], 1).await.unwrap_err().to_string();
        assert!(
            err.contains("the server closed the WebSocket with 1009"),
            "{err}"
        );
        assert_eq!(server.echo(&[b'x'; 100], 1).await.unwrap().len(), 100);
        let stats = server.stop().await;
        assert_eq!(stats.errors, 1, "{stats}");
    }
}
