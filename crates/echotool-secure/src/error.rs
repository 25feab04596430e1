//! The secure crate's error type: certificate files, keys, names and pins that cannot be used,
//! and failed handshakes (explained in [`crate::explain`]), each phrased as the cause and the fix.

use std::io;
use std::path::PathBuf;

/// Which end of the session this is, for phrasing errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The dialing end.
    Client,
    /// The accepting end.
    Server,
}

/// The error type of the TLS crate. Each message names the file, certificate or peer involved
/// and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file that cannot be read.
    #[error("cannot read the {what} file {}: {}; {hint}", path.display(), io_reason(source))]
    ReadFile {
        /// Which file it was meant to be ("certificate", "private key", "CA certificate").
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// Why reading failed.
        source: io::Error,
        /// What to do.
        hint: &'static str,
    },

    /// A PEM file holding the wrong kind of item, or nothing usable.
    #[error("{} holds {found}, not {wanted}; {hint}", path.display())]
    WrongItem {
        /// The file.
        path: PathBuf,
        /// What it holds, in words ("a private key", "no PEM sections").
        found: String,
        /// What was wanted ("a certificate").
        wanted: &'static str,
        /// What to do.
        hint: &'static str,
    },

    /// A private key that is not the certificate's.
    #[error(
        "the private key in {} does not belong to the certificate in {}; pass the key that was \
         generated together with that certificate",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },

    /// `--cert` without `--key` or the reverse.
    #[error("{given} was given without {missing}: pass both, the certificate and its private key")]
    HalfPair {
        /// The flag that was given.
        given: &'static str,
        /// The flag that is missing.
        missing: &'static str,
    },

    /// A `--server-name` (or host) that is neither a DNS name nor an IP address.
    #[error(
        "'{name}' is not a valid TLS server name; pass a DNS name or IP address with --server-name"
    )]
    BadServerName {
        /// The name.
        name: String,
    },

    /// A certificate fingerprint that cannot be parsed.
    #[error(
        "'{pin}' is not a certificate fingerprint: expected sha256: followed by 64 hex digits (colons allowed), as printed by the server"
    )]
    BadPin {
        /// What was given.
        pin: String,
    },

    /// A handshake (or a later alert) that failed, explained.
    #[error("{0}")]
    Handshake(String),

    /// Certificate generation failed.
    #[error("cannot generate certificates: {0}")]
    Generate(String),

    /// Files `echotool certs` would overwrite.
    #[error(
        "{} already exist: pass --force to overwrite them, or --out DIR for another directory",
        list(paths)
    )]
    Exists {
        /// The files in the way.
        paths: Vec<PathBuf>,
    },

    /// Writing a generated file failed.
    #[error("cannot write {}: {}", path.display(), io_reason(source))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },

    /// A TLS version the transport cannot offer.
    #[error("{0}")]
    Version(String),

    /// Any other rustls configuration error.
    #[error("TLS configuration: {0}")]
    Config(String),
}

impl TlsError {
    /// The server setting this error is about, when it is about one: the file it names, or the
    /// version, so that a config file error points at that key's line.
    pub fn setting(
        &self,
        opts: &echotool_core::TlsServerOptions,
    ) -> Option<echotool_core::Setting> {
        use echotool_core::Setting;
        let file = |path: &PathBuf| {
            if opts.client_ca.as_ref() == Some(path) {
                Some(Setting::ClientCa)
            } else if opts.key.as_ref() == Some(path) && opts.cert.as_ref() != Some(path) {
                Some(Setting::Key)
            } else if opts.cert.as_ref() == Some(path) {
                Some(Setting::Cert)
            } else {
                None
            }
        };
        match self {
            TlsError::ReadFile { path, .. } | TlsError::WrongItem { path, .. } => file(path),
            TlsError::KeyMismatch { .. } => Some(Setting::Key),
            TlsError::HalfPair {
                missing: "--key", ..
            } => Some(Setting::Cert),
            TlsError::HalfPair { .. } => Some(Setting::Key),
            TlsError::Version(_) => Some(Setting::TlsVersion),
            _ => None,
        }
    }
}

impl From<TlsError> for echotool_core::Error {
    fn from(e: TlsError) -> Self {
        echotool_core::Error::Transport(Box::new(e))
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn unix_date(secs: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{secs} seconds after 1970"))
}

/// The hint for a missing server certificate or key file.
pub(crate) const SERVER_FILES_HINT: &str =
    "check the path; `echotool certs` writes certs/server.pem and certs/server-key.pem";
