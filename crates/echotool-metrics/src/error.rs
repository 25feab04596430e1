//! The one error type of the metrics server: what went wrong and what to do about it.

use std::io;

/// Everything that can keep the metrics server from starting.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Binding the metrics address failed.
    #[error("cannot serve metrics on {addr}: {}", bind_hint(source))]
    Bind {
        /// The address, as `HOST:PORT`.
        addr: String,
        /// The operating system's answer.
        source: io::Error,
    },

    /// The metrics address did not resolve; core's error already says what to do.
    #[error(transparent)]
    Resolve(#[from] echotool_core::Error),
}

/// Explains a failed bind in terms of what to do next.
fn bind_hint(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => "the address is already in use; stop the program holding \
             it, or give --metrics (or listen in [metrics]) another port (port 0 picks a free one)"
            .into(),
        io::ErrorKind::PermissionDenied => "permission denied; ports below 1024 need root or \
             CAP_NET_BIND_SERVICE, so pick a port of 1024 or above, such as 9555"
            .into(),
        io::ErrorKind::AddrNotAvailable => "no local interface has that address; use \
             127.0.0.1, ::1, 0.0.0.0 (every interface, as in a container) or an address shown \
             by `ip addr`"
            .into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_errors_say_what_to_do() {
        let bind = |kind| MetricsError::Bind {
            addr: "0.0.0.0:9555".into(),
            source: io::Error::from(kind),
        };
        let in_use = bind(io::ErrorKind::AddrInUse).to_string();
        assert!(
            in_use
                .starts_with("cannot serve metrics on 0.0.0.0:9555: the address is already in use"),
            "{in_use}"
        );
        assert!(in_use.contains("another port"), "{in_use}");
        let denied = bind(io::ErrorKind::PermissionDenied).to_string();
        assert!(denied.contains("CAP_NET_BIND_SERVICE"), "{denied}");
    }
}
