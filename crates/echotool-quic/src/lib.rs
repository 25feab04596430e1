//! QUIC for echotool, with quinn: the transport people comparing protocols ask for most.
//!
//! - **Server** (`quic://`): every bidirectional stream a client opens is an echo stream
//!   (bytes back on the same stream, FIN answered with FIN, the same echo loop as TCP); every
//!   unreliable datagram (RFC 9221) is echoed as a datagram. Many connections, many streams
//!   per connection, the same limits, timeouts, counters and drain as the other servers.
//!   0-RTT is accepted: an echo is idempotent, so replayed early data does no harm.
//! - **Client**: one stream, seesaw or pipe, exactly like TCP; or datagrams
//!   (`--datagram`), lost and reordered ones reported like UDP.
//!
//! Certificates, verification (`--ca`, `--pin`, `--insecure`, `--server-name`), mutual
//! authentication and error messages are the TLS crate's ([`echotool_secure::config`] with the
//! QUIC flavour: TLS 1.3, ALPN `echo`, early data). quinn's UDP layer uses GSO and GRO on
//! Linux when the kernel offers them.
//!
//! Settings by path (module `path`): on a connection whose peer is a loopback address
//! (127.0.0.0/8, `::1`), packets grow to 9 000 bytes instead of quinn's 1 452 (the client
//! starts there, the server discovers it right after the handshake, since before it it may
//! send only three times what it received); every other path keeps quinn's defaults and its
//! path MTU discovery. The choice is
//! made per connection, on both sides, from the peer's address, so a server on `0.0.0.0`
//! treats its local and its remote clients each as their path allows.
//!
//! A client dials through an endpoint of its own by default (its socket connected to the
//! server, so that a closed port is told at once); with [`ClientOptions::shared_endpoint`],
//! all dials share one endpoint per address family, as a real client that connects many
//! times does (the benchmark's `*-shared` set-up variants).

#![warn(missing_docs)]

mod error;
mod path;
mod server;
mod socket;
mod stream;

pub use error::QuicError;
pub use server::QuicServer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use echotool_core::resolve_dial;
use echotool_core::{
    Binding, Channel, ClientOptions, Connection, Error, Family, HostPort, Result, Server,
    ServerOptions, Setting, SetupVariant, Transport, async_trait,
};
use echotool_secure::ClientConfigs;
use echotool_secure::config::{QUIC, ephemeral_names, server_config};
use quinn::crypto::rustls::QuicClientConfig;

use crate::stream::{ClientConnection, QuicDatagrams, QuicOpener, QuicStream};

/// The `quic` transport.
#[derive(Default)]
pub struct QuicTransport {
    /// Kept across dials so sessions resume (and 0-RTT works) on the next connection.
    clients: ClientConfigs,
    /// The endpoints shared by dials with [`ClientOptions::shared_endpoint`], one per address
    /// family, made at the first such dial.
    shared: socket::SharedEndpoints,
}

#[async_trait]
impl Transport for QuicTransport {
    fn name(&self) -> &'static str {
        "quic"
    }

    fn summary(&self) -> &'static str {
        "QUIC (quinn, TLS 1.3, ALPN echo): a stream per echo, or datagrams with --datagram"
    }

    fn setup_variants(&self) -> &'static [SetupVariant] {
        &[
            SetupVariant {
                name: "1-rtt",
                resume: false,
                shared_endpoint: false,
            },
            SetupVariant {
                name: "0-rtt",
                resume: true,
                shared_endpoint: false,
            },
            // How real QUIC clients connect many times: one socket and one driver for all.
            SetupVariant {
                name: "1-rtt-shared",
                resume: false,
                shared_endpoint: true,
            },
            SetupVariant {
                name: "0-rtt-shared",
                resume: true,
                shared_endpoint: true,
            },
        ]
    }

    fn secure(&self) -> bool {
        true
    }

    fn offers_datagrams(&self) -> bool {
        true
    }

    fn binds(&self) -> Binding {
        Binding::Udp
    }

    fn reads(&self) -> Vec<Setting> {
        [Setting::CONNECTIONS, Setting::BUFFERS, Setting::SECURE].concat()
    }

    fn check(&self, opts: &ServerOptions) -> Result<()> {
        echotool_secure::check_server(&opts.tls, QUIC)
    }

    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>> {
        let url = format!("quic://{addr}");
        let setup = server_config(&opts.tls, QUIC, &ephemeral_names(addr))?;
        Ok(Box::new(QuicServer::bind(&url, addr, opts, setup).await?))
    }

    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection> {
        let url = format!("quic://{addr}");
        let setup = self.clients.get(&opts.tls, QUIC, opts.resume)?;
        let (name, _) = echotool_secure::client::server_name(&opts.tls, &addr.host)?;
        let peer = resolve_dial(addr, Family::Any, opts.resolved.as_ref()).await?[0];
        let crypto = QuicClientConfig::try_from(setup.config.clone())
            .map_err(|e| QuicError::Config(e.to_string()))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(path::for_peer(
            client_transport(),
            peer.ip(),
            path::Side::Client,
        ));
        let connect_err = |source| Error::Connect {
            url: url.clone(),
            source,
        };
        let (endpoint, socket) = match opts.shared_endpoint {
            true => (self.shared.get(peer).map_err(connect_err)?, None),
            false => {
                let (endpoint, socket) = socket::client_endpoint(peer).map_err(connect_err)?;
                (endpoint, Some(socket))
            }
        };
        let connecting = endpoint
            .connect_with(config, peer, &name)
            .map_err(|e| QuicError::Config(format!("cannot connect to {url}: {e}")))?;
        let explainer = explainer(&setup.verify_log, &opts.tls, &name, &url, peer);
        let explain = |e: quinn::ConnectionError| Error::from(QuicError::Connection(explainer(&e)));
        let handshake = async {
            // With a resumed session the connection is usable at once: the first stream and
            // its data travel as 0-RTT early data.
            let (conn, early) = match connecting.into_0rtt() {
                Ok((conn, _accepted)) if opts.resume => (conn, true),
                Ok((conn, accepted)) => {
                    accepted.await;
                    (conn, false)
                }
                Err(connecting) => (connecting.await.map_err(explain)?, false),
            };
            let (channel, streams) = if opts.datagrams {
                let max = conn
                    .max_datagram_size()
                    .ok_or(QuicError::NoDatagrams { url: url.clone() })?;
                let datagrams = QuicDatagrams::new(conn.clone(), endpoint.clone(), max);
                (Channel::Datagram(Box::new(datagrams)), None)
            } else {
                let owner = ClientConnection::new(conn.clone(), endpoint.clone());
                let (send, recv) = conn.open_bi().await.map_err(explain)?;
                let first = QuicStream::client(send, recv, owner.clone(), explainer.clone());
                let opener = QuicOpener {
                    owner,
                    explain: explainer.clone(),
                };
                let streams: Box<dyn echotool_core::StreamOpener> = Box::new(opener);
                (Channel::Stream(Box::new(first)), Some(streams))
            };
            Ok::<_, Error>((conn, channel, streams, early))
        };
        // A refusal (ICMP port unreachable) ends the wait at once; silence lasts until the
        // timeout. A shared endpoint's socket is not connected and hears no refusal.
        let refused = async {
            match &socket {
                Some(socket) => socket.refused().await,
                None => std::future::pending().await,
            }
        };
        let (conn, channel, streams, early) = tokio::select! {
            done = tokio::time::timeout(opts.connect_timeout, handshake) => {
                done.map_err(|_| error::no_answer(&url, peer, opts.connect_timeout))??
            }
            () = refused => {
                return Err(connect_err(std::io::ErrorKind::ConnectionRefused.into()));
            }
        };
        let details = stream::describe(&conn, early);
        Ok(Connection {
            channel,
            peer: peer.into(),
            details,
            resumed: early,
            streams,
        })
    }
}

/// Explains a lost connection from the client's side, for the dial and the stream after it.
fn explainer(
    log: &echotool_secure::VerifyLog,
    tls: &echotool_core::TlsClientOptions,
    name: &str,
    url: &str,
    peer: SocketAddr,
) -> stream::Explain {
    let (log, tls, name, url) = (log.clone(), tls.clone(), name.to_string(), url.to_string());
    Arc::new(move |e| error::explain_connection(e, &log, &tls, &name, &url, peer).to_string())
}

/// Client transport settings: datagrams on, a keep-alive below the idle timeout.
fn client_transport() -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.datagram_receive_buffer_size(Some(1 << 20));
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    transport
}

#[cfg(test)]
mod tests {
    use echotool_core::ServerOptions;
    use echotool_core::testing::Loopback;

    use super::QuicTransport;

    #[tokio::test]
    async fn streams_datagrams_and_0_rtt() {
        let server = Loopback::serve(QuicTransport::default(), ServerOptions::default())
            .await
            .expect("binds with an ephemeral certificate");
        assert_eq!(
            server.echo(b"over a stream\n", 2).await.unwrap(),
            b"over a stream\n".repeat(2)
        );
        let mut datagrams = server.client.clone();
        datagrams.datagrams = true;
        let (echo, report) = server.echo_with(&datagrams, b"dgram", 3).await.unwrap();
        assert_eq!((echo.as_slice(), report.lost), (&b"dgramdgramdgram"[..], 0));
        // The echoes above left a session ticket: the next connection resumes with 0-RTT.
        let again = server.dial(&server.client).await.unwrap();
        assert!(again.resumed, "0-RTT after an earlier connection");
        drop(again);
        let stats = server.stop().await;
        assert_eq!(
            (stats.errors, stats.failed_handshakes_total()),
            (0, 0),
            "{stats}"
        );
    }
    #[tokio::test]
    async fn a_shared_endpoint_serves_every_dial_and_resumes() {
        let server = Loopback::serve(QuicTransport::default(), ServerOptions::default())
            .await
            .expect("binds with an ephemeral certificate");
        let mut shared = server.client.clone();
        shared.shared_endpoint = true;
        let (echo, _) = server.echo_with(&shared, b"one", 1).await.unwrap();
        assert_eq!(echo, b"one");
        let again = server.dial(&shared).await.unwrap();
        assert!(again.resumed, "0-RTT through the shared endpoint");
        drop(again);
        let (echo, _) = server.echo_with(&shared, b"three", 1).await.unwrap();
        assert_eq!(echo, b"three");
        let stats = server.stop().await;
        // The 0-RTT connection above was dropped before its handshake finished; through a
        // shared endpoint, which outlives it, its close reaches the server at once and counts
        // as one "closed during handshake".
        assert_eq!(
            (stats.errors, stats.failed_handshakes_total()),
            (0, 1),
            "{stats}"
        );
    }
}
