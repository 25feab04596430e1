//! The heart of echotool: what every transport implements and everything they share.
//!
//! A transport crate (`echotool-tcp`, `echotool-udp`, `echotool-tls`, ...) implements
//! [`Transport`]: bind a [`Server`] that echoes, or dial a [`Connection`] a client talks
//! through. Connection servers hand an [`AcceptSource`] and a [`Handshake`] to
//! [`serve_connections`], the one accept loop, which owns connection limits, idle and
//! handshake timeouts, back-off, draining, counters and the echo of every stream and
//! datagram. [`bind_all`] and [`start`] run a process's listeners.
//! Clients run [`client::run_session`], the seesaw of send, wait for the echo, show it.
//!
//! The binary fills a [`Registry`] with one line per transport and hands it to everything else,
//! so this crate never names a transport and nothing outside the binary has to.

#![warn(missing_docs)]

// Namespaces of functions, used by their module's name (`duration::parse`, `client::run_session`).
pub mod client;
pub mod duration;
pub mod mismatch;
pub mod mode;
pub mod size;
#[cfg(feature = "testing")]
pub mod testing;

mod accept;
mod admission;
mod echo;
mod endpoint;
mod error;
mod idle;
mod latch;
mod options;
mod peer;
mod poison;
mod registry;
mod resolve;
mod servers;
mod setting;
mod slab;
mod stats;
mod transport;

pub use accept::{
    AcceptSource, Arrival, Connected, Established, Finishing, Handshake, HandshakeError,
    Multiplexed, Plain, serve_connections,
};
pub use endpoint::{DEFAULT_PORT, Endpoint, HostPort};
pub use error::{Error, Result};
pub use options::{
    ClientOptions, DatagramServerOptions, Limits, OnLimit, ServerOptions, SocketFileOptions,
    SocketOptions, TlsClientOptions, TlsServerOptions, TlsVersion, WebSocketOptions,
};
pub use peer::{Credentials, Peer};
pub use poison::lock_ignoring_poison;
pub use registry::Registry;
pub use resolve::{Family, Resolved, resolve, resolve_dial};
pub use servers::{
    BoundListener, Conflict, ListenSpec, ListenerSummary, Running, ServeContext, bind_all,
    find_conflict, start,
};
pub use setting::Setting;
pub use stats::{ActiveGuard, EchoStats, StatsSnapshot};
pub use transport::{
    Addressing, Binding, BoxStream, ByteStream, Channel, Connection, DatagramSocket, Kind, Server,
    SetupVariant, StreamOpener, Transport,
};

/// Re-exported so transport crates implement [`Transport`] with the same macro version.
pub use async_trait::async_trait;
/// Re-exported so transports and the binary share one cancellation type.
pub use tokio_util::sync::CancellationToken;
