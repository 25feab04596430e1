//! Plain settings for servers and clients, filled by the command line or a config file and read
//! by whichever transport needs them.
//!
//! They live here rather than in the transports so that the CLI and the config file describe
//! every listener the same way and a new transport reuses the settings it shares with others
//! (QUIC reads [`TlsServerOptions`] just as TLS does).
//!
//! # Why the TLS settings are here too
//!
//! [`TlsServerOptions`] and [`TlsClientOptions`] are plain data (paths, names, a version, pins)
//! with no rustls type in them, and core depends on no crypto crate. Keeping them beside the
//! other settings lets the command line, the config file (with its line-accurate errors) and
//! `Transport::reads` treat `cert` like `backlog`, and lets the object-safe [`crate::Transport`]
//! take one options type for every transport. The alternative, a type map that secure
//! transports look their options up in, would move errors from compile time to run time and
//! make the config crate depend on the secure crate, for no gain: turning these settings into
//! rustls configurations is the secure crate's job, and happens only there.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// Settings for one listening endpoint.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Connection limits and timeouts.
    pub limits: Limits,
    /// Socket-level tuning.
    pub socket: SocketOptions,
    /// Certificates and protocol choices for TLS-based transports.
    pub tls: TlsServerOptions,
    /// Settings of datagram transports (UDP).
    pub datagram: DatagramServerOptions,
    /// Settings of a listening socket that is a file (Unix domain sockets).
    pub socket_file: SocketFileOptions,
    /// Settings of WebSocket servers.
    pub websocket: WebSocketOptions,
}

/// What a stream server does with a new connection once `max_conns` are open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnLimit {
    /// Stop accepting until a connection closes; new clients wait in the kernel's backlog.
    #[default]
    Wait,
    /// Accept and close at once, so the client learns immediately.
    Refuse,
}

impl FromStr for OnLimit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "wait" => Ok(OnLimit::Wait),
            "refuse" => Ok(OnLimit::Refuse),
            _ => Err(Error::Invalid(format!(
                "'{s}' is not a connection-limit policy: use 'wait' or 'refuse'"
            ))),
        }
    }
}

/// Connection limits and timeouts of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most connections open at once on one listener.
    pub max_conns: usize,
    /// What happens to connections beyond `max_conns`.
    pub on_limit: OnLimit,
    /// A connection that sends nothing for this long is closed; `None` never closes it.
    pub idle_timeout: Option<Duration>,
    /// A TLS (or other) handshake that has not finished by then is dropped.
    pub handshake_timeout: Duration,
    /// On shutdown, how long in-flight echoes may take before connections are cut.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_conns: 10_000,
            on_limit: OnLimit::Wait,
            idle_timeout: Some(Duration::from_secs(300)),
            handshake_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Socket-level tuning shared by servers and clients.
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// TCP_NODELAY: send small writes at once instead of waiting to coalesce them.
    pub nodelay: bool,
    /// Length of the listen backlog.
    pub backlog: u32,
    /// SO_RCVBUF in bytes, if set.
    pub recv_buffer: Option<usize>,
    /// SO_SNDBUF in bytes, if set.
    pub send_buffer: Option<usize>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: true,
            backlog: 1024,
            recv_buffer: None,
            send_buffer: None,
        }
    }
}

/// A TLS protocol version to pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

impl FromStr for TlsVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim_start_matches("TLSv").trim_start_matches("tls") {
            "1.2" | "12" => Ok(TlsVersion::V1_2),
            "1.3" | "13" => Ok(TlsVersion::V1_3),
            _ => Err(Error::Invalid(format!(
                "'{s}' is not a TLS version echotool speaks: use 1.2 or 1.3"
            ))),
        }
    }
}

/// Certificates and protocol choices of a TLS-based server.
#[derive(Clone, Debug, Default)]
pub struct TlsServerOptions {
    /// Certificate chain (PEM). Without it an ephemeral self-signed certificate is made.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) matching `cert`.
    pub key: Option<PathBuf>,
    /// When set, clients must present a certificate signed by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
    /// Pin one protocol version; both 1.2 and 1.3 are offered otherwise.
    pub version: Option<TlsVersion>,
    /// ALPN protocols to accept, in preference order; empty means the transport's default.
    pub alpn: Vec<String>,
}

/// Certificates and protocol choices of a TLS-based client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsClientOptions {
    /// CA certificates (PEM) to trust instead of the built-in roots.
    pub ca: Option<PathBuf>,
    /// Name to verify the server certificate against; defaults to the host dialed.
    pub server_name: Option<String>,
    /// Skip certificate verification entirely (prints a warning).
    pub insecure: bool,
    /// Client certificate chain (PEM) for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) for `cert`.
    pub key: Option<PathBuf>,
    /// Pin one protocol version.
    pub version: Option<TlsVersion>,
    /// ALPN protocols to offer; empty means the transport's default.
    pub alpn: Vec<String>,
    /// Accept only a server certificate with this SHA-256 fingerprint (`sha256:HEX`).
    pub pin: Option<String>,
}

impl TlsClientOptions {
    /// Trusts the server certificate with fingerprint `pin` alone, if there is one (a server
    /// with a throwaway certificate introducing itself to its client, see
    /// [`crate::Server::introduce`]); without a pin the options stay as they are.
    pub fn trust_pin(&mut self, pin: Option<&str>) {
        if let Some(pin) = pin {
            self.pin = Some(pin.to_string());
            self.insecure = false;
        }
    }
}

/// Settings of datagram servers.
#[derive(Clone, Debug, Default)]
pub struct DatagramServerOptions {
    /// Sockets sharing the port with SO_REUSEPORT; `None` means one per CPU.
    pub workers: Option<usize>,
    /// Most datagrams per second accepted from one source address; `None` is unlimited.
    pub rate_limit: Option<u32>,
}

/// Settings of a listening socket that is a file (a Unix domain socket's path).
#[derive(Clone, Debug, Default)]
pub struct SocketFileOptions {
    /// The socket file's permission bits; `None` means [`SocketFileOptions::DEFAULT_MODE`].
    pub mode: Option<u32>,
}

impl SocketFileOptions {
    /// The mode a socket file gets unless told otherwise: 0600, read and write for the user
    /// that runs the server only. Connecting to a Unix socket needs write permission on its
    /// file, so the mode decides who may connect. Left to the umask it would be 0755 or 0775
    /// (depending on who starts the server), letting a group in on one machine and not on
    /// another; 0600 is the same everywhere and lets nobody in by surprise (root, as always,
    /// gets in anyway). Widen it on purpose: 0660 for a group, 0666 for every local user.
    pub const DEFAULT_MODE: u32 = 0o600;

    /// The mode to give the socket file.
    pub fn mode(&self) -> u32 {
        self.mode.unwrap_or(Self::DEFAULT_MODE)
    }
}

/// Settings of a WebSocket server.
#[derive(Clone, Debug, Default)]
pub struct WebSocketOptions {
    /// The largest message (after reassembly) taken; `None` means
    /// [`WebSocketOptions::DEFAULT_MAX_MESSAGE`].
    pub max_message: Option<usize>,
}

impl WebSocketOptions {
    /// The largest message a server takes unless told otherwise: 1 MiB, as Python's
    /// `websockets` does. A message is held whole before its echo goes out, so this bounds a
    /// connection's memory (10 000 connections, the default `max-conns`, stay under 10 GiB
    /// even if every one sends its largest), and it is far above what a typed line or the
    /// benchmark's default sizes need. A larger message is refused with close code 1009.
    pub const DEFAULT_MAX_MESSAGE: usize = 1 << 20;

    /// The largest message to take.
    pub fn max_message(&self) -> usize {
        self.max_message.unwrap_or(Self::DEFAULT_MAX_MESSAGE)
    }
}

/// Settings for dialing a server.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How long connecting (and any handshake) may take.
    pub connect_timeout: Duration,
    /// Socket-level tuning.
    pub socket: SocketOptions,
    /// TLS-based transports' settings.
    pub tls: TlsClientOptions,
    /// For transports that carry both (QUIC): use unreliable datagrams instead of a stream.
    pub datagrams: bool,
    /// Resume earlier sessions when the transport can (TLS session tickets, QUIC 0-RTT);
    /// without it every connection makes a full handshake.
    pub resume: bool,
    /// For transports whose client is an endpoint of its own (QUIC): dial every connection
    /// through one shared endpoint (one socket, one driver) instead of a new one per
    /// connection. Off by default, so that a dial to a closed port is told "refused" at once.
    pub shared_endpoint: bool,
    /// The target's addresses, resolved once ahead of many dials (the bench does this);
    /// `None` resolves the name at every dial.
    pub resolved: Option<crate::Resolved>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            socket: SocketOptions::default(),
            tls: TlsClientOptions::default(),
            datagrams: false,
            resume: true,
            shared_endpoint: false,
            resolved: None,
        }
    }
}
