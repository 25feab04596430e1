//! The error type of the WebSocket crate: an upgrade the server refused or answered wrongly,
//! in words a user can act on. TLS failures keep the secure crate's words (`TlsError`), and
//! sockets core's.

use echotool_core::Error;

/// What can go wrong setting up a WebSocket, in words.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The server did not switch to WebSocket as RFC 6455 says it must.
    #[error("no WebSocket with {url}: {why}")]
    Upgrade {
        /// The endpoint.
        url: String,
        /// What the server answered instead, and what to do.
        why: String,
    },
}

impl From<WsError> for Error {
    fn from(e: WsError) -> Self {
        Error::Transport(Box::new(e))
    }
}
