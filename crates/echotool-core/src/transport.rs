//! The `Transport` trait: what every protocol crate implements, and what it hands back.
//!
//! A transport binds servers and dials clients. Servers run the echo themselves (streams
//! usually through [`crate::accept::serve_streams`]); clients get a [`Connection`] whose
//! [`Channel`] is either a byte stream (TCP, TLS, a QUIC stream) or a datagram socket (UDP,
//! QUIC datagrams). The trait is object safe so that `--proto` picks an implementation at run
//! time from the [`crate::Registry`].

use async_trait::async_trait;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{
    ClientOptions, DEFAULT_PORT, Family, HostPort, Peer, Result, ServeContext, ServerOptions,
    Setting,
};

/// A protocol echotool can serve and dial.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// The name used after `--proto` and as the URL scheme: `tcp`, `tcp6`, `udp`, `tls`, ...
    fn name(&self) -> &'static str;

    /// One line for `--help` and error messages: what this transport is.
    fn summary(&self) -> &'static str;

    /// Which IP versions it uses; decides the default host (127.0.0.1 or ::1).
    fn family(&self) -> Family {
        Family::Any
    }

    /// How its endpoints are written: an IP host and port, a socket path, or a host, port
    /// and URL path. [`crate::Registry::locate`] refuses an endpoint of another shape.
    fn addressing(&self) -> Addressing {
        Addressing::HostPort
    }

    /// Where servers listen and clients dial when an endpoint leaves something out: by
    /// default this family's loopback address and port 5555.
    fn default_addr(&self) -> HostPort {
        HostPort::new(self.family().loopback(), DEFAULT_PORT)
    }

    /// Whether clients get a byte stream or datagrams.
    fn kind(&self) -> Kind {
        Kind::Stream
    }

    /// Whether it runs TLS (certificates, verification, ALPN), so that the TLS flags of a
    /// client apply to it.
    fn secure(&self) -> bool {
        false
    }

    /// Whether a client can send unreliable datagrams over it: datagram transports always,
    /// and stream transports that also carry datagrams (QUIC, RFC 9221) when asked to with
    /// [`ClientOptions::datagrams`].
    fn offers_datagrams(&self) -> bool {
        self.kind() == Kind::Datagram
    }

    /// What a listener of this transport occupies in the kernel; decides which listeners of one
    /// process conflict. The default follows [`Transport::kind`]: streams take a TCP socket,
    /// datagrams a UDP socket.
    fn binds(&self) -> Binding {
        match self.kind() {
            Kind::Stream => Binding::Tcp,
            Kind::Datagram => Binding::Udp,
        }
    }

    /// The server settings a listener of this transport reads. Any other setting would do
    /// nothing for it, so a config file or flag that gives one is refused (keys in a config
    /// file's `[defaults]` are skipped instead). The default reads everything.
    fn reads(&self) -> Vec<Setting> {
        Setting::ALL.to_vec()
    }

    /// For benchmarks: the ways a connection can be set up, each measured as a row of its own
    /// (TLS: a `full` handshake and a `resumed` one; QUIC: `1-rtt` and `0-rtt`). Empty when
    /// there is only one way.
    fn setup_variants(&self) -> &'static [SetupVariant] {
        &[]
    }

    /// Checks settings without binding anything (`echotool config check`): certificate files
    /// readable and matching, values in range. An error about one setting comes as
    /// [`crate::Error::Setting`], so that a config file error points at the line that set it.
    /// The default accepts everything.
    fn check(&self, _opts: &ServerOptions) -> Result<()> {
        Ok(())
    }

    /// Binds the listening socket(s) without serving yet, so that a process with several
    /// listeners can bind them all before any of them serves (and fail as a whole).
    async fn bind(&self, addr: &HostPort, opts: &ServerOptions) -> Result<Box<dyn Server>>;

    /// Connects to a server (including any handshake) within `opts.connect_timeout`.
    async fn dial(&self, addr: &HostPort, opts: &ClientOptions) -> Result<Connection>;
}

/// One way of setting up a connection, for the benchmark's set-up rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupVariant {
    /// Its name in reports: `full`, `resumed`, `1-rtt`, `0-rtt`.
    pub name: &'static str,
    /// Dial with [`ClientOptions::resume`] (a session ticket, 0-RTT), after one connection that
    /// leaves a session to resume.
    pub resume: bool,
    /// Dial with [`ClientOptions::shared_endpoint`]: every connection through one local
    /// endpoint, as a real client that connects many times would.
    pub shared_endpoint: bool,
}

/// How a transport's endpoints are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addressing {
    /// An IP host (or name) and a port, and no path: `tcp://127.0.0.1:5555`.
    HostPort,
    /// A socket path or abstract name, and no host or port: `unix:///run/echo.sock`,
    /// `unix://@name`.
    Path,
    /// A host, a port and a URL path: `ws://127.0.0.1:5555/echo`.
    Url,
}

/// Whether a transport carries byte streams or datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reliable, ordered bytes with no message boundaries (TCP, TLS, QUIC streams).
    Stream,
    /// Independent messages that may be lost or reordered (UDP).
    Datagram,
}

/// What a listener occupies in the kernel. Two listeners conflict when they occupy the same
/// kind at overlapping addresses and the same non-zero port: `tcp` and `udp` may share a port
/// number, `tcp` and `tls` (both TCP) may not, nor may `udp` and `quic` (both UDP). Listeners
/// on a socket path conflict when the path is the same, whatever their socket type: a path
/// names one socket file (or one abstract name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A TCP listening socket.
    Tcp,
    /// A UDP socket.
    Udp,
    /// A socket path or abstract name (Unix domain sockets, stream and datagram alike).
    Path,
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Binding::Tcp => "TCP",
            Binding::Udp => "UDP",
            Binding::Path => "socket path",
        })
    }
}

/// A bound server, ready to serve.
#[async_trait]
pub trait Server: Send {
    /// The address actually bound (with the real port when port 0 was asked for), or the
    /// socket path.
    fn local_addr(&self) -> HostPort;

    /// Extra lines to print after `listening on ...`, e.g. an ephemeral certificate's
    /// fingerprint and the command that connects to it.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Adjusts a client's options so that it trusts this very server: a server with a
    /// throwaway certificate has its client pin that certificate. The benchmark dials its
    /// embedded servers this way. By default there is nothing to trust.
    fn introduce(&self, _client: &mut ClientOptions) {}

    /// Echoes until `ctx.shutdown` is cancelled, then drains and returns.
    async fn serve(self: Box<Self>, ctx: ServeContext) -> Result<()>;
}

/// A byte stream a client writes to and reads from, or a server echoes on.
///
/// Half-close is `AsyncWrite::poll_shutdown`: the peer reads end-of-stream but may still send.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for S {}

/// An owned, dynamically typed byte stream.
pub type BoxStream = Box<dyn ByteStream>;

/// A connected datagram socket: every `send` is one message, every `recv` returns one.
#[async_trait]
pub trait DatagramSocket: Send + Sync {
    /// Sends one datagram to the peer.
    async fn send(&self, payload: &[u8]) -> io::Result<()>;

    /// Receives one datagram from the peer into `buf`, returning its length.
    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// The largest payload one datagram can carry.
    fn max_payload(&self) -> usize;
}

/// What a client talks through.
pub enum Channel {
    /// A reliable byte stream.
    Stream(BoxStream),
    /// Unreliable datagrams.
    Datagram(Box<dyn DatagramSocket>),
}

/// A dialed connection.
pub struct Connection {
    /// The stream or datagram socket.
    pub channel: Channel,
    /// The server: its address, or for a local socket whatever the kernel says about it.
    pub peer: Peer,
    /// Facts about the connection worth showing with `-v` (TLS version, cipher, certificate).
    pub details: Vec<String>,
    /// Whether an earlier session was resumed (TLS session ticket, QUIC 0-RTT).
    pub resumed: bool,
    /// More streams on the same connection, for transports that carry several (QUIC); `None`
    /// where a connection is one stream.
    pub streams: Option<Box<dyn StreamOpener>>,
}

/// Opens more streams on a connection that carries several, each independent of the others
/// (a loss on one does not hold the others back).
#[async_trait]
pub trait StreamOpener: Send + Sync {
    /// A new bidirectional stream on the same connection.
    async fn open(&self) -> io::Result<BoxStream>;
}
