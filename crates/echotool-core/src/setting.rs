//! The settings of a listener, by name: one list that the config file, the command line and
//! the transports share.
//!
//! A config file key and its `serve` flag accept the same values because both ask
//! [`Setting::accepts`]; a listener says which settings it reads with
//! [`crate::Transport::reads`], so a setting that would do nothing is reported instead of
//! ignored; and an error about one setting ([`crate::Error::Setting`]) can be pointed at the line
//! that set it.

use std::fmt;
use std::ops::RangeInclusive;

/// One setting of a listener. In a config file its key is the long flag's name
/// ([`Setting::key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Setting {
    /// `max-conns`: connections open at once.
    MaxConns,
    /// `on-limit`: what happens beyond `max-conns`.
    OnLimit,
    /// `idle-timeout`: how long a silent connection stays open.
    IdleTimeout,
    /// `handshake-timeout`: how long a handshake may take.
    HandshakeTimeout,
    /// `drain-timeout`: how long in-flight echoes may take at shutdown.
    DrainTimeout,
    /// `backlog`: the listen backlog.
    Backlog,
    /// `nodelay`: TCP_NODELAY (the flag `--nagle` turns it off).
    Nodelay,
    /// `recv-buffer`: SO_RCVBUF.
    RecvBuffer,
    /// `send-buffer`: SO_SNDBUF.
    SendBuffer,
    /// `workers`: sockets sharing a port with SO_REUSEPORT.
    Workers,
    /// `udp-rate-limit`: datagrams per second per source address.
    UdpRateLimit,
    /// `cert`: the certificate chain.
    Cert,
    /// `key`: the certificate's private key.
    Key,
    /// `client-ca`: the CA client certificates must come from.
    ClientCa,
    /// `tls-version`: the one TLS version to offer.
    TlsVersion,
    /// `alpn`: the ALPN protocols to accept.
    Alpn,
    /// `mode`: the permission bits of a socket file (who may connect to a Unix socket).
    Mode,
    /// `ws-max-message`: the largest WebSocket message a server takes.
    WsMaxMessage,
}

/// What a number given for a setting counts, for messages.
enum Unit {
    Count,
    Bytes,
    Millis,
    NameBytes,
    Mode,
}

impl Setting {
    /// Every setting, in the order `serve --help` lists them.
    pub const ALL: [Setting; 18] = [
        Setting::MaxConns,
        Setting::OnLimit,
        Setting::IdleTimeout,
        Setting::HandshakeTimeout,
        Setting::DrainTimeout,
        Setting::Backlog,
        Setting::Nodelay,
        Setting::RecvBuffer,
        Setting::SendBuffer,
        Setting::Workers,
        Setting::UdpRateLimit,
        Setting::Mode,
        Setting::WsMaxMessage,
        Setting::Cert,
        Setting::Key,
        Setting::ClientCa,
        Setting::TlsVersion,
        Setting::Alpn,
    ];

    /// What every connection server reads: its limits and the timeouts of its connections.
    pub const CONNECTIONS: &'static [Setting] = &[
        Setting::MaxConns,
        Setting::OnLimit,
        Setting::IdleTimeout,
        Setting::DrainTimeout,
    ];

    /// Socket buffer sizes, which every socket has.
    pub const BUFFERS: &'static [Setting] = &[Setting::RecvBuffer, Setting::SendBuffer];

    /// What only a listening TCP socket has: its backlog and Nagle's algorithm.
    pub const TCP_LISTENER: &'static [Setting] = &[Setting::Backlog, Setting::Nodelay];

    /// What every server that runs TLS reads: its handshake timeout, certificate, key, client
    /// CA, version and ALPN.
    pub const SECURE: &'static [Setting] = &[
        Setting::HandshakeTimeout,
        Setting::Cert,
        Setting::Key,
        Setting::ClientCa,
        Setting::TlsVersion,
        Setting::Alpn,
    ];

    /// What a listening socket that is a file reads: the file's mode.
    pub const SOCKET_FILE: &'static [Setting] = &[Setting::Mode];

    /// What a WebSocket server reads beyond a TCP listener's: how long its HTTP upgrade may
    /// take, and the largest message it takes.
    pub const WEBSOCKET: &'static [Setting] = &[Setting::HandshakeTimeout, Setting::WsMaxMessage];

    /// What a server of independent datagrams reads: its sockets and per-source rate limit.
    pub const DATAGRAMS: &'static [Setting] = &[Setting::Workers, Setting::UdpRateLimit];

    /// The key in a config file, which is the long flag's name: `max-conns`, `cert`. The one
    /// exception is `nodelay`, whose flag is `--nagle` (it turns TCP_NODELAY off).
    pub fn key(self) -> &'static str {
        match self {
            Setting::MaxConns => "max-conns",
            Setting::OnLimit => "on-limit",
            Setting::IdleTimeout => "idle-timeout",
            Setting::HandshakeTimeout => "handshake-timeout",
            Setting::DrainTimeout => "drain-timeout",
            Setting::Backlog => "backlog",
            Setting::Nodelay => "nodelay",
            Setting::RecvBuffer => "recv-buffer",
            Setting::SendBuffer => "send-buffer",
            Setting::Workers => "workers",
            Setting::UdpRateLimit => "udp-rate-limit",
            Setting::Cert => "cert",
            Setting::Key => "key",
            Setting::ClientCa => "client-ca",
            Setting::TlsVersion => "tls-version",
            Setting::Alpn => "alpn",
            Setting::Mode => "mode",
            Setting::WsMaxMessage => "ws-max-message",
        }
    }

    /// The `serve` flag that sets it: `--max-conns`, `--nagle`.
    pub fn flag(self) -> String {
        match self {
            Setting::Nodelay => "--nagle".into(),
            other => format!("--{}", other.key()),
        }
    }

    /// The setting whose flag is `flag` (`--cert`), or whose key is `flag` (`cert`).
    pub fn named(flag: &str) -> Option<Setting> {
        let name = flag.trim_start_matches('-');
        Setting::ALL
            .into_iter()
            .find(|s| s.key() == name || s.flag() == format!("--{name}"))
    }

    /// The numbers a setting accepts, for settings that are numbers (or, for `alpn`, the
    /// length of each name in bytes): counts as they are, sizes in bytes, durations in
    /// milliseconds. `None` when there is no limit beyond the value's type.
    pub fn range(self) -> Option<RangeInclusive<u64>> {
        Some(match self {
            // The kernel's default cap on open files per process (nr_open).
            Setting::MaxConns => 1..=1_048_576,
            // Kernels before 4.1 keep the backlog in 16 bits.
            Setting::Backlog => 1..=65_535,
            Setting::Workers => 1..=1024,
            Setting::UdpRateLimit => 1..=u64::from(u32::MAX),
            // The kernel doubles the value in an int.
            Setting::RecvBuffer | Setting::SendBuffer => 1..=1 << 30,
            // Zero would fail every handshake; there is no "off".
            Setting::HandshakeTimeout => 1..=u64::MAX,
            // RFC 7301: a protocol name is 1 to 255 bytes.
            Setting::Alpn => 1..=255,
            // Permission bits only: setuid, setgid and sticky mean nothing on a socket.
            Setting::Mode => 0..=0o777,
            // A message is held whole before it is echoed: at most 1G per connection.
            Setting::WsMaxMessage => 1..=1 << 30,
            _ => return None,
        })
    }

    fn unit(self) -> Unit {
        match self {
            Setting::RecvBuffer | Setting::SendBuffer | Setting::WsMaxMessage => Unit::Bytes,
            Setting::HandshakeTimeout | Setting::IdleTimeout | Setting::DrainTimeout => {
                Unit::Millis
            }
            Setting::Alpn => Unit::NameBytes,
            Setting::Mode => Unit::Mode,
            _ => Unit::Count,
        }
    }

    /// Whether `value` (in the unit of [`Setting::range`]) is allowed.
    pub fn accepts(self, value: u64) -> bool {
        self.range().is_none_or(|range| range.contains(&value))
    }

    /// What the setting accepts, in words, for "found X, expected ..." messages: "a whole
    /// number from 1 to 1024".
    pub fn expecting(self) -> String {
        let Some(range) = self.range() else {
            return format!("a value for {}", self.key());
        };
        let (min, max) = (*range.start(), *range.end());
        match self.unit() {
            Unit::Count => format!("a whole number from {min} to {max}"),
            Unit::Bytes => format!("a size from {} to {}", bytes(min), bytes(max)),
            Unit::Millis if max == u64::MAX => format!("a duration of at least {min}ms"),
            Unit::Millis => format!("a duration from {min}ms to {max}ms"),
            Unit::NameBytes => format!("protocol names of {min} to {max} bytes"),
            Unit::Mode => format!(
                "an octal file mode from {} to {}",
                crate::mode::display(min as u32),
                crate::mode::display(max as u32)
            ),
        }
    }
}

/// A byte count the way sizes are typed: `1 byte`, `64K`, `1G`.
fn bytes(n: u64) -> String {
    match n {
        1 => "1 byte".into(),
        _ => [(30, "G"), (20, "M"), (10, "K")]
            .into_iter()
            .find(|(shift, _)| n >= 1 << shift && n % (1 << shift) == 0)
            .map_or(n.to_string(), |(shift, unit)| {
                format!("{}{unit}", n >> shift)
            }),
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for setting in Setting::ALL {
            assert_eq!(Setting::named(setting.key()), Some(setting));
            assert_eq!(Setting::named(&setting.flag()), Some(setting));
        }
        assert_eq!(Setting::Nodelay.flag(), "--nagle");
        assert_eq!(Setting::named("--nope"), None);
    }

    #[test]
    fn ranges_refuse_zero_where_zero_is_meaningless() {
        for setting in [
            Setting::MaxConns,
            Setting::Backlog,
            Setting::Workers,
            Setting::UdpRateLimit,
            Setting::RecvBuffer,
            Setting::SendBuffer,
            Setting::HandshakeTimeout,
        ] {
            assert!(!setting.accepts(0), "{setting}");
            assert!(setting.accepts(1), "{setting}");
        }
        assert!(Setting::IdleTimeout.accepts(0), "0 means never");
        assert!(Setting::DrainTimeout.accepts(0), "0 means cut at once");
        assert!(Setting::Workers.accepts(1024));
        assert!(!Setting::Workers.accepts(1025));
    }

    #[test]
    fn expectations_read_like_the_values_people_type() {
        assert_eq!(
            Setting::Workers.expecting(),
            "a whole number from 1 to 1024"
        );
        assert_eq!(Setting::RecvBuffer.expecting(), "a size from 1 byte to 1G");
        assert_eq!(
            Setting::HandshakeTimeout.expecting(),
            "a duration of at least 1ms"
        );
        assert_eq!(
            Setting::Mode.expecting(),
            "an octal file mode from 0000 to 0777"
        );
        assert!(Setting::Mode.accepts(0o777) && !Setting::Mode.accepts(0o1000));
        assert_eq!(bytes(64 << 10), "64K");
        assert_eq!(bytes(1000), "1000");
    }
}
