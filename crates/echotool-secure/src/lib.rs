//! Secure channels for echotool: everything about TLS that is not a transport, shared by every
//! transport that runs TLS (`tls` over TCP, `quic`, and later `wss`).
//!
//! A transport crate asks this crate for a rustls configuration ([`config::server_config`],
//! [`config::client_config`] or the cache [`ClientConfigs`]) built from echotool's plain
//! options, and for words when something fails ([`explain`], [`alert`]); `echotool certs`
//! uses [`certs`]. Nothing here opens a socket, so QUIC depends on this crate and core only,
//! not on TLS over TCP.
//!
//! # Crypto provider: aws-lc-rs, on purpose
//!
//! rustls 0.23 offers two built-in providers, *ring* and *aws-lc-rs*. echotool uses
//! aws-lc-rs everywhere (rustls, rcgen, and QUIC through quinn) and builds without ring:
//! - it is rustls's default provider, the best tested combination;
//! - it is faster for what an echo benchmark measures: ECDSA and X25519 in handshakes, and
//!   AES-GCM bulk encryption with the widest set of CPU-specific code paths;
//! - it offers the post-quantum hybrid key exchange X25519MLKEM768, which rustls prefers by
//!   default, so handshakes measured here are the ones modern clients actually do;
//! - one provider means one copy of the crypto code and no process-wide default to install.
//!
//! The cost is a C build (aws-lc-sys, built with `cc`; no cmake needed on Linux).
//!
//! # Modules
//! - [`certs`]: generating a CA, server and client certificates (`echotool certs`) and
//!   ephemeral self-signed ones; fingerprints; a certificate in one line.
//! - `session_cache`: the QUIC server's bounded session cache, which allocates as it fills.
//! - [`pem`]: reading certificates and keys from PEM files with errors that name the file
//!   (with the `PemObject` trait of rustls-pki-types; rustls-pemfile is unmaintained).
//! - [`config`]: rustls server and client configurations built from echotool's options, the
//!   key log (`SSLKEYLOGFILE`), and the check `echotool config check` runs.
//! - [`error`]: the crate's error type.
//! - `session`: one line about an established session for `-v` ([`describe_session`], and
//!   [`describe_negotiated`] for what QUIC reports too).
//! - [`explain`] and [`alert`]: rustls failures and TLS alerts in words, cause and fix, with
//!   the short cause a server counts failed handshakes by.
//!
//! # Other dependencies, and why
//!
//! - rcgen (with aws-lc-rs): certificates for tests and ephemeral servers.
//! - rustls-webpki, directly: rustls reports some certificate failures (a CA certificate used
//!   as a server's own, among others) only as a webpki error inside
//!   `CertificateError::Other`; naming them in words means downcasting to webpki's error type,
//!   and accepting a self-signed CA certificate the user trusts explicitly reuses webpki's name
//!   check. It is the very crate and version rustls already builds.
//! - rustls-native-certs: the system's roots when no `--ca` is given.
//! - x509-parser: subject, issuer and dates of a certificate for `-v` and for messages.
//! - time: dates in messages.

#![warn(missing_docs)]

pub mod alert;
pub mod cause;
pub mod certs;
pub mod client;
pub mod config;
pub mod error;
pub mod explain;
pub mod pem;
mod session;
mod session_cache;
mod verify;

pub use certs::describe_certificate;
pub use client::ClientConfigs;
pub use config::check_server;
pub use error::{Side, TlsError};
pub use session::{describe_negotiated, describe_session};
pub use verify::VerifyLog;
