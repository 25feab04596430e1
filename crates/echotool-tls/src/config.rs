//! rustls configurations built from echotool's options: versions, certificates, client
//! authentication, verification and ALPN, all with the aws-lc-rs provider.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use echotool_core::{TlsClientOptions, TlsServerOptions, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::{self, parse_fingerprint};
use crate::pem::{load_certs, load_key, load_roots};
use crate::verify::PinnedOrAny;
use crate::{TlsError, error::SERVER_FILES_HINT};

/// The crypto provider every configuration uses: aws-lc-rs (see the crate documentation).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

fn versions(pin: Option<TlsVersion>) -> &'static [&'static SupportedProtocolVersion] {
    static TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    static TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match pin {
        None => rustls::ALL_VERSIONS,
        Some(TlsVersion::V1_2) => TLS12,
        Some(TlsVersion::V1_3) => TLS13,
    }
}

fn config_err(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
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

/// A server configuration, and the fingerprint of the ephemeral certificate if one was made.
pub struct ServerSetup {
    /// The rustls configuration.
    pub config: Arc<ServerConfig>,
    /// Set when the server made its own certificate: its `sha256:` fingerprint.
    pub ephemeral_fingerprint: Option<String>,
    /// The fingerprint of the (leaf) certificate presented, made or loaded.
    pub certificate_pin: Option<String>,
}

/// Builds the server configuration. Without `--cert`/`--key` an ephemeral self-signed
/// certificate is made for the default names plus `extra_sans`.
pub fn server_config(
    opts: &TlsServerOptions,
    default_alpn: &[&str],
    extra_sans: &[String],
) -> Result<ServerSetup, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(opts.version))
        .map_err(config_err)?;
    let builder = match &opts.client_ca {
        Some(ca) => {
            let roots = load_roots(
                ca,
                "CA certificate",
                "pass the CA that issued the client certificates, e.g. certs/ca.pem",
            )?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| {
                    TlsError::Config(format!("client verification with {}: {e}", ca.display()))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let (mut config, ephemeral_fingerprint, leaf) = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let (chain, private) = cert_and_key(cert, key, SERVER_FILES_HINT)?;
            let leaf = certs::fingerprint(&chain[0]);
            let config = builder
                .with_single_cert(chain, private)
                .map_err(|e| key_mismatch(e, cert, key))?;
            (config, None, leaf)
        }
        (None, None) => {
            let made = certs::ephemeral(extra_sans)?;
            let config = builder
                .with_single_cert(made.chain, made.key)
                .map_err(config_err)?;
            (config, Some(made.fingerprint.clone()), made.fingerprint)
        }
        (Some(_), None) => {
            return Err(TlsError::HalfPair {
                given: "--cert",
                missing: "--key",
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::HalfPair {
                given: "--key",
                missing: "--cert",
            });
        }
    };
    config.alpn_protocols = alpn(&opts.alpn, default_alpn);
    Ok(ServerSetup {
        config: Arc::new(config),
        ephemeral_fingerprint,
        certificate_pin: Some(leaf),
    })
}

/// Builds the client configuration, and a warning to print when verification is off.
pub fn client_config(
    opts: &TlsClientOptions,
    default_alpn: &[&str],
) -> Result<(Arc<ClientConfig>, Option<String>), TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(opts.version))
        .map_err(config_err)?;
    let mut warning = None;
    let builder = if opts.insecure || opts.pin.is_some() {
        let pin = opts.pin.as_deref().map(parse_fingerprint).transpose()?;
        if pin.is_none() {
            warning = Some(
                "--insecure: the server's certificate is not verified; anyone on the path can \
                 pose as the server"
                    .to_string(),
            );
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrAny {
                provider: provider(),
                pin,
            }))
    } else {
        let roots = match &opts.ca {
            Some(ca) => load_roots(
                ca,
                "CA certificate",
                "pass the CA that issued the server certificate, e.g. certs/ca.pem",
            )?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
                roots
            }
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let hint =
                "check the path; `echotool certs` writes certs/client.pem and certs/client-key.pem";
            let (chain, private) = cert_and_key(cert, key, hint)?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| key_mismatch(e, cert, key))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(TlsError::HalfPair {
                given: "--cert",
                missing: "--key",
            });
        }
        (None, Some(_)) => {
            return Err(TlsError::HalfPair {
                given: "--key",
                missing: "--cert",
            });
        }
    };
    config.alpn_protocols = alpn(&opts.alpn, default_alpn);
    Ok((Arc::new(config), warning))
}

fn alpn(given: &[String], default: &[&str]) -> Vec<Vec<u8>> {
    if given.is_empty() {
        default.iter().map(|p| p.as_bytes().to_vec()).collect()
    } else {
        given.iter().map(|p| p.as_bytes().to_vec()).collect()
    }
}
