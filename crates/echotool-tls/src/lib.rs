//! TLS over TCP for echotool, and the certificates to test it with.
//!
//! The `tls` transport layers tokio-rustls on the TCP crate's listener, dialer and acceptor
//! (nothing of TCP is copied here): the TCP connection is accepted or dialed exactly as for
//! `tcp`, then the handshake runs in the connection's own task under the handshake timeout.
//!
//! # Crypto provider: aws-lc-rs, on purpose
//!
//! rustls 0.23 offers two built-in providers, *ring* and *aws-lc-rs*. echotool uses
//! aws-lc-rs everywhere (rustls, rcgen, and QUIC through quinn) and builds without ring:
//! - it is rustls's default provider, the best tested combination;
//! - it is faster for what an echo benchmark measures: ECDSA and X25519 in handshakes, and
//!   AES-GCM bulk encryption with the widest set of CPU-specific code paths;
//! - it offers the post-quantum hybrid key exchange X25519MLKEM768, which rustls prefers by
//!   default, so handshakes measured here are the ones modern clients actually do;
//! - one provider means one copy of the crypto code and no process-wide default to install.
//!
//! The cost is a C build (aws-lc-sys, built with `cc`; no cmake needed on Linux).
//!
//! # Modules
//! - [`certs`]: generating a CA, server and client certificates (`echotool certs`) and
//!   ephemeral self-signed ones; fingerprints.
//! - [`pem`]: reading certificates and keys from PEM files with errors that name the file.
//! - [`config`]: rustls server and client configurations built from echotool's options.
//! - [`error`]: the crate's error type.
//! - [`explain`] and [`alert`]: rustls failures and TLS alerts in words, cause and fix, with
//!   the short cause a server counts failed handshakes by.
//!
//! # rustls-webpki, directly
//!
//! rustls reports some certificate failures (a CA certificate used as a server's own, among
//! others) only as a webpki error inside `CertificateError::Other`; naming them in words means
//! downcasting to webpki's error type, and accepting a self-signed CA certificate the user
//! trusts explicitly reuses webpki's name check. The dependency is the very crate and version
//! rustls already builds, without a crypto provider of its own.

#![warn(missing_docs)]

pub mod alert;
pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod explain;
pub mod pem;
mod server;
mod stream;
mod verify;

pub use client::ClientConfigs;
pub use error::{Side, TlsError};
pub use server::TlsServer;
pub use stream::describe_certificate;
pub use verify::VerifyLog;

use echotool_core::{
    Binding, Channel, ClientOptions, Connection, Family, HostPort, Result, Server, ServerOptions,
    Setting, TlsServerOptions, Transport, async_trait,
};
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

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

    fn setup_kinds(&self) -> Option<[&'static str; 2]> {
        Some(["full", "resumed"])
    }

    fn secure(&self) -> bool {
        true
    }

    fn binds(&self) -> Binding {
        Binding::Tcp
    }

    fn reads(&self) -> &'static [Setting] {
        use Setting::*;
        &[
            MaxConns,
            OnLimit,
            IdleTimeout,
            HandshakeTimeout,
            DrainTimeout,
            Backlog,
            Nodelay,
            RecvBuffer,
            SendBuffer,
            Cert,
            Key,
            ClientCa,
            TlsVersion,
            Alpn,
        ]
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
        let name = opts
            .tls
            .server_name
            .clone()
            .unwrap_or_else(|| addr.host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| TlsError::BadServerName { name: name.clone() })?;
        let handshake = async {
            let tcp = echotool_tcp::socket::dial(&url, addr, Family::Any, opts).await?;
            let peer = tcp
                .peer_addr()
                .map_err(|e| echotool_core::Error::io(format!("connecting to {url}"), e))?;
            let tls = TlsConnector::from(setup.config)
                .connect(server_name, tcp)
                .await
                .map_err(|e| TlsError::from_handshake(&e, Side::Client, &name, &opts.tls))?;
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
            peer,
            details,
            resumed,
        })
    }
}

/// Checks a server's TLS settings without binding (`echotool config check`). An error says
/// which setting it concerns ([`echotool_core::Error::Setting`]): the version when it fails on
/// its own, then the client CA when it does, else the certificate or its key, so that a config
/// file error points at the line to fix.
pub fn check_server(opts: &TlsServerOptions, flavor: config::Flavor) -> Result<()> {
    let Err(err) = config::server_config(opts, flavor, &[]) else {
        return Ok(());
    };
    let fails_alone = |alone: TlsServerOptions| config::server_config(&alone, flavor, &[]).is_err();
    let setting = if opts.version.is_some()
        && fails_alone(TlsServerOptions {
            version: opts.version,
            ..TlsServerOptions::default()
        }) {
        Some(Setting::TlsVersion)
    } else if opts.client_ca.is_some()
        && fails_alone(TlsServerOptions {
            client_ca: opts.client_ca.clone(),
            ..TlsServerOptions::default()
        })
    {
        Some(Setting::ClientCa)
    } else {
        let about_key = match &err {
            TlsError::KeyMismatch { .. } => true,
            TlsError::ReadFile { path, .. } | TlsError::WrongItem { path, .. } => {
                opts.key.as_ref() == Some(path) && opts.cert.as_ref() != Some(path)
            }
            _ => false,
        };
        match (&opts.cert, &opts.key) {
            (_, Some(_)) if about_key => Some(Setting::Key),
            (Some(_), _) => Some(Setting::Cert),
            (None, Some(_)) => Some(Setting::Key),
            (None, None) => None,
        }
    };
    Err(match setting {
        Some(setting) => echotool_core::Error::setting(setting, err),
        None => err.into(),
    })
}
