//! The heart of echotool: what every transport implements and everything they share.
//!
//! A transport crate (`echotool-tcp`, `echotool-udp`, `echotool-tls`, ...) implements
//! [`Transport`]: bind a [`Server`] that echoes, or dial a [`Connection`] a client talks
//! through. Stream servers hand their accept loop to [`listener::serve_streams`], which owns
//! connection limits ([`admission`]), timeouts, back-off and draining, and echo with
//! [`echo::echo_stream`].
//! Clients run [`session::run_session`], the seesaw of send, wait for the echo, show it.
//!
//! The binary fills a [`Registry`] with one line per transport and hands it to everything else,
//! so this crate never names a transport and nothing outside the binary has to.

#![warn(missing_docs)]

pub mod accept;
pub mod admission;
pub mod client;
pub mod duration;
pub mod echo;
pub mod endpoint;
mod error;
pub mod latch;
pub mod mismatch;
mod options;
mod registry;
pub mod resolve;
pub mod servers;
mod setting;
pub mod size;
mod stats;
mod transport;

pub use accept::HandshakeError;
pub use endpoint::{DEFAULT_PORT, Endpoint, HostPort};
pub use error::{Error, Result};
pub use options::{
    ClientOptions, DatagramServerOptions, Limits, OnLimit, ServerOptions, SocketOptions,
    TlsClientOptions, TlsServerOptions, TlsVersion,
};
pub use registry::Registry;
pub use resolve::Family;
pub use servers::ServeContext;
pub use setting::Setting;
pub use stats::{ActiveGuard, EchoStats, StatsSnapshot};
pub use transport::{
    Binding, BoxStream, ByteStream, Channel, Connection, DatagramSocket, Kind, Server,
    SetupVariant, Transport,
};

/// Re-exported so transport crates implement [`Transport`] with the same macro version.
pub use async_trait::async_trait;
/// Re-exported so transports and the binary share one cancellation type.
pub use tokio_util::sync::CancellationToken;
