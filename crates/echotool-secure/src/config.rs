//! rustls configurations built from echotool's options: versions, certificates, client
//! authentication, verification, ALPN, resumption and key logging, all with the aws-lc-rs
//! provider. TLS over TCP and QUIC share them; [`Flavor`] says which.

use std::path::Path;
use std::sync::{Arc, Once, OnceLock};

use echotool_core::{TlsClientOptions, TlsServerOptions, TlsVersion};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, KeyLog, KeyLogFile, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::{self, parse_fingerprint};
use crate::pem::{load_certs, load_key, load_roots};
use crate::session_cache::SessionCache;
use crate::verify::{ClientVerifier, Listed, Trust, Verifier, VerifyLog};
use crate::{TlsError, error::SERVER_FILES_HINT};

/// What a configuration is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flavor {
    /// Name in messages: "TLS" or "QUIC".
    pub name: &'static str,
    /// ALPN protocols when the user gives none.
    pub default_alpn: &'static [&'static str],
    /// QUIC runs TLS 1.3 only, and allows 0-RTT early data.
    pub quic: bool,
}

/// TLS over TCP: versions 1.2 and 1.3, no ALPN unless asked for.
pub const TLS_OVER_TCP: Flavor = Flavor {
    name: "TLS",
    default_alpn: &[],
    quic: false,
};

/// QUIC: TLS 1.3 only, ALPN `echo`, early data (0-RTT) allowed.
pub const QUIC: Flavor = Flavor {
    name: "QUIC",
    default_alpn: &["echo"],
    quic: true,
};

/// The crypto provider every configuration uses: aws-lc-rs (see the crate documentation),
/// preferring AES-128-GCM with SHA-256.
///
/// rustls's default order puts AES-256-GCM-SHA384 first. Its handshake hashing (HKDF with
/// SHA-384) has no hardware path on x86, while SHA-256 runs on the CPU's SHA extensions, and
/// AES-128 does fewer rounds than AES-256 for a security level (128 bits) that is the norm
/// for TLS today. Measured on this project's reference machine: QUIC spent a tenth of its
/// handshake time in software SHA-512 before this change.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            let rank = |suite: &rustls::SupportedCipherSuite| match suite.suite() {
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
                rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
                _ => 3,
            };
            // A stable sort keeps rustls's order among the TLS 1.2 suites.
            provider.cipher_suites.sort_by_key(rank);
            Arc::new(provider)
        })
        .clone()
}

fn versions(
    pin: Option<TlsVersion>,
    flavor: Flavor,
) -> Result<&'static [&'static SupportedProtocolVersion], TlsError> {
    static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match (pin, flavor.quic) {
        (Some(TlsVersion::V1_2), true) => Err(TlsError::Version(
            "QUIC always runs TLS 1.3: drop the 1.2 version setting".into(),
        )),
        (_, true) | (Some(TlsVersion::V1_3), false) => Ok(TLS13),
        (None, false) => Ok(rustls::ALL_VERSIONS),
        (Some(TlsVersion::V1_2), false) => Ok(TLS12),
    }
}

fn config_err(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

/// With SSLKEYLOGFILE set, session keys are written there so captures can be decrypted
/// (Wireshark). Says so once per process, since it defeats the encryption for anyone who
/// reads the file.
fn key_log() -> Option<Arc<dyn KeyLog>> {
    let path = std::env::var_os("SSLKEYLOGFILE")?;
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "SSLKEYLOGFILE is set: TLS and QUIC session keys are written to {}; anyone who \
             reads it can decrypt captured traffic",
            Path::new(&path).display()
        );
    });
    Some(Arc::new(KeyLogFile::new()))
}

/// `--cert` and `--key` go together: both, or neither.
fn pair<'a>(
    cert: &'a Option<std::path::PathBuf>,
    key: &'a Option<std::path::PathBuf>,
) -> Result<Option<(&'a Path, &'a Path)>, TlsError> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some((cert, key))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(TlsError::HalfPair {
            given: "--cert",
            missing: "--key",
        }),
        (None, Some(_)) => Err(TlsError::HalfPair {
            given: "--key",
            missing: "--cert",
        }),
    }
}

/// A certificate and key, checked to belong together.
fn cert_and_key(
    cert: &Path,
    key: &Path,
    hint: &'static str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    Ok((load_certs(cert, "certificate", hint)?, load_key(key, hint)?))
}

fn key_mismatch(e: rustls::Error, cert: &Path, key: &Path) -> TlsError {
    match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        },
        other => config_err(other),
    }
}

/// A server configuration, and facts about its certificate.
pub struct ServerSetup {
    /// The rustls configuration.
    pub config: Arc<ServerConfig>,
    /// Set when the server made its own certificate: its `sha256:` fingerprint.
    pub ephemeral_fingerprint: Option<String>,
    /// The fingerprint of the (leaf) certificate presented, made or loaded.
    pub certificate_pin: Option<String>,
    /// When that certificate is valid, in words (`valid from ... until ...`).
    pub validity: Option<String>,
}

impl ServerSetup {
    /// Lines to print after `listening on URL` for a server with an ephemeral certificate:
    /// its fingerprint and the exact command that connects to it.
    pub fn notes(&self, proto: &str, addr: &echotool_core::HostPort) -> Vec<String> {
        match &self.ephemeral_fingerprint {
            None => Vec::new(),
            Some(fp) => vec![
                format!("certificate: ephemeral and self-signed (no --cert/--key), {fp}"),
                format!("connect with: echotool connect --proto {proto} --pin {fp} {addr}"),
            ],
        }
    }
}

/// Names for an ephemeral certificate besides the defaults: the host the server was asked to
/// listen on, unless that is loopback or the unspecified address.
pub fn ephemeral_names(asked: &echotool_core::HostPort) -> Vec<String> {
    match asked.ip() {
        Some(ip) if ip.is_loopback() || ip.is_unspecified() => Vec::new(),
        _ => vec![asked.host.clone()],
    }
}

/// Sessions a QUIC server remembers for resumption and 0-RTT; the cache grows to this bound
/// as clients come, and allocates nothing before (see [`SessionCache`]).
const SESSION_CACHE: usize = 16 * 1024;

/// TLS 1.3 session tickets a server sends after each handshake (rustls and OpenSSL send 2).
///
/// A ticket is good for one resumption, and every resumed handshake brings a fresh one, so a
/// client that reconnects one connection after another (`echotool connect`, the bench's
/// set-up rounds, `openssl s_client -reconnect`) never runs out with one; only a client opening
/// several connections at once from a single full handshake would resume fewer of them (the
/// others make full handshakes, as they would with any server that sends one ticket, like Go's
/// crypto/tls). Each ticket costs the server a key derivation, a ticket encryption and a record
/// on every full handshake: with two, rustls's handling of the client's Finished (where the
/// tickets are made) was 7 % of the server's samples (`perf` under `openssl s_time -new`).
const TICKETS_PER_HANDSHAKE: usize = 1;

/// Builds the server configuration. Without `--cert`/`--key` an ephemeral self-signed
/// certificate is made for the default names plus `extra_sans`.
pub fn server_config(
    opts: &TlsServerOptions,
    flavor: Flavor,
    extra_sans: &[String],
) -> Result<ServerSetup, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(opts.version, flavor)?)
        .map_err(config_err)?;
    let builder = match &opts.client_ca {
        Some(ca) => {
            let (roots, listed) = load_roots(
                ca,
                "CA certificate",
                "pass the CA that issued the client certificates, e.g. certs/ca.pem",
            )?;
            let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| {
                    TlsError::Config(format!("client verification with {}: {e}", ca.display()))
                })?;
            builder.with_client_cert_verifier(Arc::new(ClientVerifier {
                inner,
                listed: Listed(listed),
            }))
        }
        None => builder.with_no_client_auth(),
    };
    let (mut config, ephemeral_fingerprint, leaf, validity) = match pair(&opts.cert, &opts.key)? {
        Some((cert, key)) => {
            let (chain, private) = cert_and_key(cert, key, SERVER_FILES_HINT)?;
            let leaf = certs::fingerprint(&chain[0]);
            let validity = certs::validity(&chain[0]);
            let config = builder
                .with_single_cert(chain, private)
                .map_err(|e| key_mismatch(e, cert, key))?;
            (config, None, leaf, validity)
        }
        None => {
            let made = certs::ephemeral(extra_sans)?;
            let validity = made.chain.first().and_then(|c| certs::validity(c));
            let config = builder
                .with_single_cert(made.chain, made.key)
                .map_err(config_err)?;
            (
                config,
                Some(made.fingerprint.clone()),
                made.fingerprint,
                validity,
            )
        }
    };
    config.alpn_protocols = alpn(&opts.alpn, flavor.default_alpn);
    config.send_tls13_tickets = TICKETS_PER_HANDSHAKE;
    if flavor.quic {
        // QUIC allows only 0 or u32::MAX here; the maximum lets clients send 0-RTT data.
        config.max_early_data_size = u32::MAX;
        // Early data needs resumption state on the server (rustls refuses 0-RTT with stateless
        // tickets, which could be replayed): a bounded in-memory cache.
        config.session_storage = Arc::new(SessionCache::new(SESSION_CACHE));
    } else {
        // Without early data, stateless tickets resume sessions with no memory per client.
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(config_err)?;
    }
    if let Some(log) = key_log() {
        config.key_log = log;
    }
    Ok(ServerSetup {
        config: Arc::new(config),
        ephemeral_fingerprint,
        certificate_pin: Some(leaf),
        validity,
    })
}

/// A client configuration, and where its verifier says why it rejected a certificate.
#[derive(Clone)]
pub struct ClientSetup {
    /// The rustls configuration.
    pub config: Arc<ClientConfig>,
    /// The last verification failure.
    pub verify_log: VerifyLog,
}

/// Builds the client configuration. With `resume`, sessions are cached for resumption (and,
/// for QUIC, 0-RTT); without it every handshake is a full one.
pub fn client_config(
    opts: &TlsClientOptions,
    flavor: Flavor,
    resume: bool,
) -> Result<ClientSetup, TlsError> {
    let trust = if let Some(pin) = &opts.pin {
        Trust::Pin(parse_fingerprint(pin)?)
    } else if opts.insecure {
        Trust::Any
    } else {
        let (roots, listed) = match &opts.ca {
            Some(ca) => load_roots(
                ca,
                "CA certificate",
                "pass the CA that issued the server certificate, e.g. certs/ca.pem",
            )?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                // The system's roots vouch for what they issue, not for themselves as leaves.
                (roots, Vec::new())
            }
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| TlsError::Config(format!("certificate verification: {e}")))?;
        Trust::Roots(webpki, Listed(listed))
    };
    let verify_log = VerifyLog::default();
    let verifier = Verifier {
        trust,
        provider: provider(),
        log: verify_log.clone(),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(opts.version, flavor)?)
        .map_err(config_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let mut config = match pair(&opts.cert, &opts.key)? {
        Some((cert, key)) => {
            let hint =
                "check the path; `echotool certs` writes certs/client.pem and certs/client-key.pem";
            let (chain, private) = cert_and_key(cert, key, hint)?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| key_mismatch(e, cert, key))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn(&opts.alpn, flavor.default_alpn);
    if !resume {
        config.resumption = Resumption::disabled();
    }
    config.enable_early_data = flavor.quic;
    if let Some(log) = key_log() {
        config.key_log = log;
    }
    Ok(ClientSetup {
        config: Arc::new(config),
        verify_log,
    })
}

fn alpn(given: &[String], default: &[&str]) -> Vec<Vec<u8>> {
    if given.is_empty() {
        default.iter().map(|p| p.as_bytes().to_vec()).collect()
    } else {
        given.iter().map(|p| p.as_bytes().to_vec()).collect()
    }
}

/// Checks a server's TLS settings without binding (`echotool config check`). An error says
/// which setting it concerns ([`echotool_core::Error::Setting`]), so that a config file error
/// points at the line to fix.
pub fn check_server(opts: &TlsServerOptions, flavor: Flavor) -> echotool_core::Result<()> {
    match server_config(opts, flavor, &[]) {
        Ok(_) => Ok(()),
        Err(err) => Err(match err.setting(opts) {
            Some(setting) => echotool_core::Error::setting(setting, err),
            None => err.into(),
        }),
    }
}
