//! The error type of echotool's libraries: every message says what went wrong and what to do.

use std::io;
use std::time::Duration;

/// A convenient alias used throughout echotool's libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in echotool, phrased for the person at the keyboard.
///
/// `Display` gives one line with the cause and, where there is one, the fix; the binary prints it
/// after `error: `. Transports with their own failure modes (TLS certificates, say) wrap their
/// error in [`Error::Transport`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--proto` or a URL scheme names no registered transport.
    #[error("unknown protocol '{name}': choose one of {known}")]
    UnknownProtocol {
        /// What the user typed.
        name: String,
        /// The registered names, comma separated.
        known: String,
    },

    /// An address or endpoint URL that cannot be parsed.
    #[error(
        "'{input}' is not a valid address: {reason}; expected HOST:PORT or PROTO://HOST:PORT, \
         e.g. 127.0.0.1:5555, [::1]:5555 or tcp://localhost:5555"
    )]
    BadAddress {
        /// What the user typed.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A host name that does not resolve (or resolves to no address of the wanted family).
    #[error("could not resolve '{host}': {reason}; check the spelling, or give an IP address")]
    Resolve {
        /// The host part of the address.
        host: String,
        /// Why resolution failed.
        reason: String,
    },

    /// Binding a listening socket failed.
    #[error("cannot listen on {url}: {}", bind_hint(source))]
    Bind {
        /// The endpoint, as `proto://addr`.
        url: String,
        /// The operating system's answer.
        source: io::Error,
    },

    /// Dialing a server failed.
    #[error("could not connect to {url}: {}", connect_hint(source))]
    Connect {
        /// The endpoint, as `proto://addr`.
        url: String,
        /// The operating system's answer.
        source: io::Error,
    },

    /// Something did not happen in time.
    #[error("{what} within {}; {hint}", crate::duration::display(*after))]
    Timeout {
        /// What did not happen, e.g. "no echo from tcp://127.0.0.1:5555".
        what: String,
        /// The limit that expired.
        after: Duration,
        /// What the user can do about it.
        hint: String,
    },

    /// A message larger than the transport can carry.
    #[error(
        "a {size}-byte message is too large for {proto}: at most {max} bytes fit in one datagram; \
         send less, or lower --size"
    )]
    TooLarge {
        /// Protocol name.
        proto: String,
        /// The offending size.
        size: usize,
        /// The protocol's limit.
        max: usize,
    },

    /// The peer broke the echo contract (closed early, sent back different bytes, lost data).
    #[error("{0}")]
    Echo(String),

    /// Bad option values (a duration that does not parse, a limit of zero, ...).
    #[error("{0}")]
    Invalid(String),

    /// An I/O error with what echotool was doing at the time.
    #[error("{context}: {source}")]
    Io {
        /// What echotool was doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },

    /// A transport-specific error (TLS certificates, QUIC, ...), already phrased for the user.
    #[error("{0}")]
    Transport(Box<dyn std::error::Error + Send + Sync + 'static>),

    /// An error about the value of one setting (a certificate file that does not match its key,
    /// a TLS version a transport cannot offer), so that whoever reads settings from a file can
    /// point at the line that set it. Displays as `source` alone.
    #[error("{source}")]
    Setting {
        /// The setting the error is about.
        key: crate::Setting,
        /// What is wrong with its value.
        source: Box<Error>,
    },

    /// An error of one listener, with where that listener was written (`echotool.toml, line
    /// 12, key 'listen'`) in front.
    #[error("{origin}: {source}")]
    Located {
        /// Where the listener came from.
        origin: String,
        /// What went wrong.
        source: Box<Error>,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Marks `source` as being about the value of `key`.
    pub fn setting(key: crate::Setting, source: impl Into<Error>) -> Self {
        Error::Setting {
            key,
            source: Box::new(source.into()),
        }
    }

    /// The setting this error is about, when it is about one.
    pub fn concerns(&self) -> Option<crate::Setting> {
        match self {
            Error::Setting { key, .. } => Some(*key),
            Error::Located { source, .. } => source.concerns(),
            _ => None,
        }
    }
}

/// Explains a failed bind in terms of what to do next.
fn bind_hint(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => "the address is already in use; stop the program holding it, \
             or pick another port (port 0 picks a free one)"
            .into(),
        io::ErrorKind::PermissionDenied => "permission denied; ports below 1024 need root or \
             CAP_NET_BIND_SERVICE, so pick a port of 1024 or above"
            .into(),
        io::ErrorKind::AddrNotAvailable => "no local interface has that address; use 127.0.0.1, \
             ::1, 0.0.0.0, :: or an address shown by `ip addr`"
            .into(),
        _ if err.raw_os_error() == Some(libc::EAFNOSUPPORT) => "this machine has no support for \
             that address family; is IPv6 disabled?"
            .into(),
        _ => err.to_string(),
    }
}

/// Explains a failed connect in terms of what to do next.
fn connect_hint(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused; is a server listening there? \
             Start one with `echotool serve`, or check the port and protocol"
            .into(),
        io::ErrorKind::PermissionDenied => "permission denied; a firewall rule may block it".into(),
        io::ErrorKind::AddrNotAvailable => "the address cannot be reached from here; check the \
             host part, and use 127.0.0.1 or ::1 for this machine"
            .into(),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => {
            format!("{err}; check the address and this machine's routes")
        }
        _ => err.to_string(),
    }
}
