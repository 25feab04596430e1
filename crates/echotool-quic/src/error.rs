//! QUIC failures explained: a verifier that said no, an alert from the server, or silence.

use std::net::SocketAddr;
use std::time::Duration;

use echotool_core::{Error, TlsClientOptions};
use echotool_tls::{Side, TlsError, VerifyLog};
use rustls::AlertDescription;

/// The error type of the QUIC crate.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// quinn refused the configuration.
    #[error("QUIC configuration: {0}")]
    Config(String),
    /// The server did not enable RFC 9221 datagrams.
    #[error("{url} does not accept QUIC datagrams (RFC 9221); drop --datagram to use a stream")]
    NoDatagrams {
        /// The server.
        url: String,
    },
    /// The connection failed, explained.
    #[error("{0}")]
    Connection(String),
}

impl From<QuicError> for Error {
    fn from(e: QuicError) -> Self {
        Error::Transport(Box::new(e))
    }
}

/// What to check when a QUIC server does not answer.
fn udp_hint(peer: SocketAddr) -> String {
    format!(
        "QUIC runs over UDP, so nothing answers \"refused\": is a QUIC server listening on UDP \
         port {port} of {ip}? A firewall may be dropping UDP (allow it, e.g. `ufw allow \
         {port}/udp`)",
        port = peer.port(),
        ip = peer.ip()
    )
}

/// The error for a server that never answered within the connect timeout.
pub(crate) fn no_answer(url: &str, peer: SocketAddr, after: Duration) -> Error {
    Error::Timeout {
        what: format!("no QUIC connection to {url}"),
        after,
        hint: udp_hint(peer),
    }
}

/// Explains why a connection failed, from the client's side.
pub(crate) fn explain_connection(
    err: &quinn::ConnectionError,
    verify_log: &VerifyLog,
    opts: &TlsClientOptions,
    name: &str,
    url: &str,
    peer: SocketAddr,
) -> Error {
    use quinn::ConnectionError as C;
    if let Some(rejected) = verify_log.take() {
        return TlsError::Handshake(echotool_tls::error::explain(
            &rejected,
            Side::Client,
            name,
            opts,
        ))
        .into();
    }
    let alert = |code: u64| -> Option<AlertDescription> {
        (0x100..0x200)
            .contains(&code)
            .then(|| AlertDescription::from((code - 0x100) as u8))
    };
    let text = match err {
        C::ConnectionClosed(close) => match alert(u64::from(close.error_code)) {
            Some(a) => echotool_tls::error::explain(
                &rustls::Error::AlertReceived(a),
                Side::Client,
                name,
                opts,
            ),
            None => format!("{url} closed the connection: {close}"),
        },
        C::TransportError(te) => match alert(u64::from(te.code)) {
            Some(_) => format!("the QUIC handshake with {url} failed: {}", te.reason),
            None => format!("{url}: {te}"),
        },
        C::ApplicationClosed(close) => format!("{url} closed the connection: {close}"),
        C::TimedOut => format!("{url} stopped answering; {}", udp_hint(peer)),
        C::VersionMismatch => {
            format!("{url} speaks no QUIC version this client does (it offers v1)")
        }
        other => format!("{url}: {other}"),
    };
    QuicError::Connection(text).into()
}
