//! Everything TLS can get wrong, phrased as the cause and the fix.

use std::io;
use std::path::PathBuf;

use echotool_core::TlsClientOptions;
use rustls::{AlertDescription, CertificateError};

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

    /// Any other rustls configuration error.
    #[error("TLS configuration: {0}")]
    Config(String),
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

impl TlsError {
    /// Explains a failed handshake from the I/O error tokio-rustls returns.
    pub fn from_handshake(
        err: &io::Error,
        side: Side,
        name: &str,
        opts: &TlsClientOptions,
    ) -> Self {
        TlsError::Handshake(explain_io(err, side, name, opts))
    }
}

/// The rustls error inside an I/O error, if there is one.
pub(crate) fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Explains an I/O error from a TLS stream: rustls errors in words, the rest as they are.
pub(crate) fn explain_io(
    err: &io::Error,
    side: Side,
    name: &str,
    opts: &TlsClientOptions,
) -> String {
    if let Some(tls) = rustls_error(err) {
        return explain(tls, side, name, opts);
    }
    match (err.kind(), side) {
        (io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset, Side::Client) => {
            "the server closed the connection during the TLS handshake; is it a TLS server? \
             (a plaintext server or a refused client certificate ends it this way)"
                .into()
        }
        (io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset, Side::Server) => {
            "the client closed the connection during the TLS handshake".into()
        }
        _ => err.to_string(),
    }
}

/// Explains a rustls error: the cause, and the flag or command that fixes it.
pub fn explain(err: &rustls::Error, side: Side, name: &str, opts: &TlsClientOptions) -> String {
    use rustls::Error as E;
    let them = match side {
        Side::Client => "the server",
        Side::Server => "the client",
    };
    match err {
        E::InvalidCertificate(cert) => explain_certificate(cert, side, name),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            match side {
                Side::Client => "the server did not answer in TLS; is it a plaintext server? \
                     Use --proto tcp for one"
                    .into(),
                Side::Server => "the client did not speak TLS (plaintext or garbage on the TLS port)"
                    .into(),
            }
        }
        E::NoCertificatesPresented => "the client sent no certificate, and this server requires \
             one (--client-ca); the client must pass --cert and --key"
            .into(),
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate: pass --cert and --key (echotool certs \
             writes certs/client.pem and certs/client-key.pem)"
                .into()
        }
        E::AlertReceived(AlertDescription::HandshakeFailure) if side == Side::Client && opts.cert.is_none() => {
            "the server ended the handshake; it may require a client certificate (pass --cert \
             and --key) or share no cipher suite or TLS version with this client"
                .into()
        }
        E::AlertReceived(
            AlertDescription::UnknownCA | AlertDescription::BadCertificate | AlertDescription::CertificateUnknown,
        ) => match side {
            Side::Client => "the server rejected this client's certificate: it was not issued by \
                 a CA the server trusts (its --client-ca)"
                .into(),
            Side::Server => "the client rejected this server's certificate: it does not trust \
                 the issuing CA (the client needs --ca with it, or --insecure)"
                .into(),
        },
        E::AlertReceived(AlertDescription::DecryptError) if side == Side::Client && opts.cert.is_some() => {
            "the server rejected this client's certificate: its signature does not verify              against the server's --client-ca (issued by another CA of the same name?)"
                .into()
        }
        E::AlertReceived(AlertDescription::CertificateExpired) => {
            format!("{them} says our certificate has expired; renew it (echotool certs --force)")
        }
        E::AlertReceived(AlertDescription::NoApplicationProtocol) | E::NoApplicationProtocol => {
            format!(
                "{them} supports none of the ALPN protocols offered; make --alpn agree on both \
                 sides"
            )
        }
        E::AlertReceived(AlertDescription::ProtocolVersion) => {
            format!("{them} supports no TLS version in common with this side; make --tls-version agree")
        }
        E::PeerIncompatible(why) => {
            format!("{them} has nothing in common with this side ({why:?}); check --tls-version on both sides")
        }
        E::AlertReceived(alert) => format!("{them} ended the TLS session with the alert {alert:?}"),
        other => other.to_string(),
    }
}

fn explain_certificate(cert: &CertificateError, side: Side, name: &str) -> String {
    let whose = match side {
        Side::Client => "the server's certificate",
        Side::Server => "the client's certificate",
    };
    match cert {
        CertificateError::UnknownIssuer => match side {
            Side::Client => format!(
                "{whose} was not issued by a CA this client trusts; pass --ca with the CA \
                 certificate that signed it (echotool certs writes certs/ca.pem), --pin \
                 sha256:... for a self-signed one, or --insecure to skip verification"
            ),
            Side::Server => format!(
                "{whose} was not issued by the CA in --client-ca; give the client a certificate \
                 from that CA"
            ),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "{whose} is for {} and not for {}; pass --server-name with one of those names, or \
             regenerate it with `echotool certs --san {}`",
            if presented.is_empty() {
                "no name at all".to_string()
            } else {
                presented
                    .iter()
                    .map(|n| plain_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            expected.to_str(),
            expected.to_str()
        ),
        CertificateError::NotValidForName => format!(
            "{whose} is not valid for {name}; pass --server-name with a name it holds, or \
             regenerate it with `echotool certs --san {name}`"
        ),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "{whose} expired at {} (it is now {}); renew it, e.g. with `echotool certs --force`",
            unix_date(not_after.as_secs()),
            unix_date(time.as_secs())
        ),
        CertificateError::Expired => {
            format!("{whose} has expired; renew it, e.g. with `echotool certs --force`")
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "{whose} is not valid before {} (it is now {}); check the clocks of both machines, \
             or issue it with an earlier start",
            unix_date(not_before.as_secs()),
            unix_date(time.as_secs())
        ),
        CertificateError::NotValidYet => {
            format!("{whose} is not valid yet; check the clocks of both machines")
        }
        CertificateError::BadSignature => {
            format!("{whose} has a bad signature; it was altered or mis-issued")
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("{whose} is not issued for this use (server or client authentication)")
        }
        CertificateError::ApplicationVerificationFailure => {
            format!("{whose} does not match the pinned fingerprint (--pin)")
        }
        CertificateError::Other(why) => format!("{whose} {why}"),
        other => format!("{whose} was rejected: {other:?}"),
    }
}

/// webpki presents names as `DnsName("localhost")` and `IpAddress(0::1)`; users type
/// `localhost` and `::1`.
fn plain_name(presented: &str) -> String {
    let inner = presented
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|s| s.strip_suffix(')'))
        })
        .unwrap_or(presented);
    match inner.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => inner.to_string(),
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
