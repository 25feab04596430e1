//! QUIC failures explained: a verifier that said no, an alert from the server, or silence on
//! the client; on the server, why a handshake failed, with the cause it is counted under.

use std::net::SocketAddr;
use std::time::Duration;

use echotool_core::{Error, HandshakeError, TlsClientOptions};
use echotool_secure::cause;
use echotool_secure::explain::explain;
use echotool_secure::{Side, TlsError, VerifyLog};
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

/// What to check when a QUIC server does not answer. (A closed port is refused at once, so
/// silence means something there takes the datagrams, or something on the way drops them.)
fn udp_hint(peer: SocketAddr) -> String {
    format!(
        "is a QUIC server listening on UDP port {port} of {ip}? Something there may take \
         datagrams without answering (a program that is not a QUIC server, or one that hangs), \
         or a firewall may drop them (allow UDP, e.g. `ufw allow {port}/udp`)",
        port = peer.port(),
        ip = peer.ip()
    )
}

/// The error for a server that never answered within the connect timeout.
pub(crate) fn no_answer(url: &str, peer: SocketAddr, after: Duration) -> Error {
    Error::Timeout {
        what: format!("no QUIC connection to {url}"),
        after,
        hint: format!("nothing answered and nothing refused: {}", udp_hint(peer)),
    }
}

/// The TLS alert a QUIC connection was closed with, if its error code carries one
/// (RFC 9001: crypto errors are 0x100 plus the alert).
fn alert(code: u64) -> Option<AlertDescription> {
    (0x100..0x200)
        .contains(&code)
        .then(|| AlertDescription::from((code - 0x100) as u8))
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
        return TlsError::Handshake(explain(&rejected, Side::Client, name, opts)).into();
    }
    let text = match err {
        C::ConnectionClosed(close) => match alert(u64::from(close.error_code)) {
            Some(a) => {
                echotool_secure::alert::received(a, Side::Client, opts.cert.is_some()).message
            }
            None => format!("{url} closed the connection: {close}"),
        },
        C::TransportError(te) => match alert(u64::from(te.code)) {
            Some(a) => format!(
                "the QUIC handshake with {url} failed: {}",
                echotool_secure::alert::sent(a, Side::Client).message
            ),
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

/// Explains why a connection's handshake failed, from the server's side, with the cause the
/// summary counts it under. An alert from the client is its verdict on this server; an alert
/// of this server's own is its verdict on the client.
pub(crate) fn handshake_failure(err: &quinn::ConnectionError) -> HandshakeError {
    use quinn::ConnectionError as C;
    match err {
        C::ConnectionClosed(close) => match alert(u64::from(close.error_code)) {
            Some(a) => echotool_secure::alert::received(a, Side::Server, true),
            None => HandshakeError::new(
                cause::CLOSED,
                format!("the client closed the connection during the handshake: {close}"),
            ),
        },
        C::TransportError(te) => match alert(u64::from(te.code)) {
            Some(a) => echotool_secure::alert::sent(a, Side::Server),
            None => {
                HandshakeError::new(cause::PROTOCOL, format!("the QUIC handshake failed: {te}"))
            }
        },
        C::ApplicationClosed(_) | C::Reset | C::LocallyClosed => HandshakeError::new(
            cause::CLOSED,
            "the connection was closed during the handshake",
        ),
        C::TimedOut => HandshakeError::new(
            HandshakeError::TIMED_OUT,
            "the client stopped answering during the handshake",
        ),
        C::VersionMismatch => HandshakeError::new(
            cause::NO_VERSION,
            "the client speaks no QUIC version this server does (v1)",
        ),
        C::CidsExhausted => {
            HandshakeError::new(cause::INTERNAL, "this server ran out of connection IDs")
        }
    }
}

#[cfg(test)]
mod tests {
    use quinn::{ApplicationClose, ConnectionClose, ConnectionError, TransportErrorCode};

    use super::*;

    fn closed_with(alert: u8) -> ConnectionError {
        ConnectionError::ConnectionClosed(ConnectionClose {
            error_code: TransportErrorCode::crypto(alert),
            frame_type: None,
            reason: bytes::Bytes::new(),
        })
    }

    #[test]
    fn server_side_failures_are_counted_by_what_they_mean() {
        // The client's alerts judge this server's certificate.
        assert_eq!(handshake_failure(&closed_with(48)).cause, cause::UNTRUSTED);
        let not_yet = handshake_failure(&closed_with(45));
        assert_eq!(not_yet.cause, cause::EXPIRED);
        assert!(
            not_yet.message.contains("expired or not valid yet"),
            "{}",
            not_yet.message
        );
        let name = handshake_failure(&closed_with(42));
        assert_eq!(name.cause, cause::WRONG_NAME_OR_BAD);
        // A client that gives up under the handshake. (This server's own alerts arrive in a
        // type quinn does not export; the TLS crate's tests cover every alert sent.)
        let gone = ConnectionError::ApplicationClosed(ApplicationClose {
            error_code: 0u32.into(),
            reason: bytes::Bytes::new(),
        });
        assert_eq!(handshake_failure(&gone).cause, cause::CLOSED);
        assert_eq!(
            handshake_failure(&ConnectionError::TimedOut).cause,
            HandshakeError::TIMED_OUT
        );
    }
}
