//! Certificates for testing TLS: a CA with a server and a client certificate (what
//! `echotool certs` writes), ephemeral self-signed certificates for a server started without
//! any, and SHA-256 fingerprints.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::TlsError;

/// Names every server certificate carries, so loopback works by name and by address.
pub const DEFAULT_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// What the certificates of a bundle are valid for, and when.
#[derive(Clone, Debug)]
pub struct BundleOptions {
    /// Extra names (DNS names or IP addresses) for the server certificate.
    pub extra_sans: Vec<String>,
    /// Start of validity of the server and client certificates.
    pub not_before: OffsetDateTime,
    /// End of validity of the server and client certificates.
    pub not_after: OffsetDateTime,
}

impl BundleOptions {
    /// Valid from yesterday (tolerating clock skew) for `days` days.
    pub fn valid_for_days(extra_sans: Vec<String>, days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        BundleOptions {
            extra_sans,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }
}

/// One generated PEM file.
#[derive(Clone, Debug)]
pub struct PemFile {
    /// File name within the output directory.
    pub name: &'static str,
    /// What it is, for `certs/README.md` and the command's output.
    pub description: &'static str,
    /// PEM text.
    pub contents: String,
    /// Private keys are written with mode 0600.
    pub secret: bool,
}

/// A CA, a server certificate signed by it, and a client certificate for mutual TLS.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The files, CA first.
    pub files: Vec<PemFile>,
}

fn gen_err(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "echotool");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn leaf_params(
    sans: Vec<String>,
    common_name: &str,
    usage: ExtendedKeyUsagePurpose,
    opts: &BundleOptions,
) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(sans).map_err(|e| {
        TlsError::Generate(format!(
            "{e}; --san takes a DNS name (echo.example) or an IP address (10.0.0.5)"
        ))
    })?;
    params.distinguished_name = name(common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params.not_before = opts.not_before;
    params.not_after = opts.not_after;
    Ok(params)
}

/// Generates a CA (valid ten years), a server certificate for [`DEFAULT_SANS`] plus
/// `opts.extra_sans`, and a client certificate, all ECDSA P-256.
pub fn generate_bundle(opts: &BundleOptions) -> Result<Bundle, TlsError> {
    let (ca_cert, ca_key, issuer) = test_ca()?;
    let mut sans: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    for extra in &opts.extra_sans {
        if !sans.contains(extra) {
            sans.push(extra.clone());
        }
    }
    let server_key = KeyPair::generate().map_err(gen_err)?;
    let server = leaf_params(sans, "localhost", ExtendedKeyUsagePurpose::ServerAuth, opts)?
        .signed_by(&server_key, &issuer)
        .map_err(gen_err)?;
    let client_key = KeyPair::generate().map_err(gen_err)?;
    let client = leaf_params(
        vec!["echotool-client".into()],
        "echotool client",
        ExtendedKeyUsagePurpose::ClientAuth,
        opts,
    )?
    .signed_by(&client_key, &issuer)
    .map_err(gen_err)?;
    let files = [
        (
            "ca.pem",
            "the CA certificate: what clients trust (--ca, --client-ca)",
            ca_cert.pem(),
            false,
        ),
        (
            "ca-key.pem",
            "the CA's private key: signs the other two; keep it secret",
            ca_key.serialize_pem(),
            true,
        ),
        (
            "server.pem",
            "the server certificate (--cert on serve)",
            server.pem(),
            false,
        ),
        (
            "server-key.pem",
            "the server's private key (--key on serve)",
            server_key.serialize_pem(),
            true,
        ),
        (
            "client.pem",
            "the client certificate for mutual TLS (--cert on connect)",
            client.pem(),
            false,
        ),
        (
            "client-key.pem",
            "the client's private key (--key on connect)",
            client_key.serialize_pem(),
            true,
        ),
    ];
    Ok(Bundle {
        files: files
            .into_iter()
            .map(|(name, description, contents, secret)| PemFile {
                name,
                description,
                contents,
                secret,
            })
            .collect(),
    })
}

/// A test CA, valid for ten years from yesterday: its certificate, its key, and the issuer
/// that signs leaves with it.
fn test_ca() -> Result<(rcgen::Certificate, KeyPair, Issuer<'static, KeyPair>), TlsError> {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("echotool test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::days(1);
    ca_params.not_after = now + Duration::days(3650);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err)?;
    let issuer_key = KeyPair::from_pem(&ca_key.serialize_pem()).map_err(gen_err)?;
    Ok((ca_cert, ca_key, Issuer::new(ca_params, issuer_key)))
}

/// Writes a bundle into `dir` (created if needed). Refuses, writing nothing, when any file
/// exists and `force` is false. Private keys get mode 0600.
pub fn write_bundle(dir: &Path, bundle: &Bundle, force: bool) -> Result<Vec<PathBuf>, TlsError> {
    let paths: Vec<PathBuf> = bundle.files.iter().map(|f| dir.join(f.name)).collect();
    if !force {
        let existing: Vec<PathBuf> = paths.iter().filter(|p| p.exists()).cloned().collect();
        if !existing.is_empty() {
            return Err(TlsError::Exists { paths: existing });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    for (file, path) in bundle.files.iter().zip(&paths) {
        let mode = if file.secret { 0o600 } else { 0o644 };
        let write = || -> std::io::Result<()> {
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(path)?;
            // The mode above applies only to new files; an overwritten key must not stay
            // readable by others.
            out.set_permissions(std::fs::Permissions::from_mode(mode))?;
            out.write_all(file.contents.as_bytes())
        };
        write().map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(paths)
}

/// A throwaway self-signed certificate, made in memory for a server given none.
#[derive(Debug)]
pub struct Ephemeral {
    /// The certificate (a chain of one).
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// `sha256:` and the hex SHA-256 of the certificate, for `--pin`.
    pub fingerprint: String,
}

/// Makes an ephemeral certificate for [`DEFAULT_SANS`] plus `extra_sans`, valid for a day
/// either side of now.
pub fn ephemeral(extra_sans: &[String]) -> Result<Ephemeral, TlsError> {
    let mut sans: Vec<String> = DEFAULT_SANS.iter().map(|s| s.to_string()).collect();
    sans.extend(
        extra_sans
            .iter()
            .filter(|s| !DEFAULT_SANS.contains(&s.as_str()))
            .cloned(),
    );
    let key = KeyPair::generate().map_err(gen_err)?;
    let now = OffsetDateTime::now_utc();
    let opts = BundleOptions {
        extra_sans: Vec::new(),
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(1),
    };
    let mut params = leaf_params(
        sans,
        "echotool ephemeral",
        ExtendedKeyUsagePurpose::ServerAuth,
        &opts,
    )?;
    params.use_authority_key_identifier_extension = false;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let der = cert.der().clone();
    Ok(Ephemeral {
        fingerprint: fingerprint(&der),
        chain: vec![der],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// `sha256:` followed by the lowercase hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// When a DER certificate is valid, in words: `valid from 2026-01-01 00:00:00 UTC until
/// 2027-01-01 00:00:00 UTC`; `None` if it cannot be parsed.
pub fn validity(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let date = |t: i64| crate::error::unix_date(t.max(0).unsigned_abs());
    Some(format!(
        "valid from {} until {}",
        date(cert.validity().not_before.timestamp()),
        date(cert.validity().not_after.timestamp())
    ))
}

/// Parses a fingerprint as printed by [`fingerprint`], by `openssl x509 -fingerprint -sha256`
/// (colon-separated, any case), with or without the `sha256:` prefix.
pub fn parse_fingerprint(pin: &str) -> Result<[u8; 32], TlsError> {
    let bad = || TlsError::BadPin {
        pin: pin.to_string(),
    };
    let text = pin.trim();
    let text = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("SHA256:"))
        .or_else(|| text.strip_prefix("sha256 Fingerprint="))
        .unwrap_or(text);
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    // Counted in bytes and taken two at a time: anything but ASCII hex digits is refused
    // before, or a character of several bytes would be cut in two.
    if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let digits = std::str::from_utf8(pair).map_err(|_| bad())?;
        *byte = u8::from_str_radix(digits, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// One line about a certificate: subject, issuer, expiry and fingerprint.
pub fn describe_certificate(der: &[u8]) -> String {
    let fp = fingerprint(der);
    use x509_parser::prelude::{FromDer, X509Certificate};
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => format!(
            "server certificate: subject {}, issuer {}, valid until {}, {fp}",
            cert.subject(),
            cert.issuer(),
            cert.validity().not_after
        ),
        Err(_) => format!("server certificate: (unparsable), {fp}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip_in_every_spelling() {
        let fp = fingerprint(b"not really a certificate");
        let bytes = parse_fingerprint(&fp).unwrap();
        let colons: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")).unwrap(), bytes);
        assert_eq!(
            parse_fingerprint(&format!("sha256 Fingerprint={}", colons.join(":"))).unwrap(),
            bytes
        );
        assert!(parse_fingerprint("sha256:abcd").is_err());
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }

    /// Found by the pin fuzz target: 64 bytes with a character of three bytes among them
    /// were sliced two bytes at a time, through the middle of that character (a panic).
    #[test]
    fn pins_with_characters_beyond_ascii_are_refused() {
        let fuzzed = concat!(
            "\0\u{983b}\0\r\u{983b}\0\0\0\0\0\0\0\0\0\0\0{",
            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0q\0\0\0\0\0\0\0\0\r\r\r\r\r\r9F87G08"
        );
        assert_eq!(fuzzed.len(), 64);
        let typed = format!("€{}", "a".repeat(61));
        for pin in [fuzzed, &typed] {
            let err = parse_fingerprint(pin).unwrap_err().to_string();
            assert!(err.contains("is not a certificate fingerprint"), "{err}");
        }
    }

    #[test]
    fn bundle_refuses_to_overwrite_and_keys_are_private() {
        let dir = std::env::temp_dir().join(format!("echotool-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bundle =
            generate_bundle(&BundleOptions::valid_for_days(vec!["10.1.2.3".into()], 30)).unwrap();
        let written = write_bundle(&dir, &bundle, false).unwrap();
        assert_eq!(written.len(), 6);
        let mode = |name: &str| {
            std::fs::metadata(dir.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("server-key.pem"), 0o600);
        assert_eq!(mode("ca-key.pem"), 0o600);
        assert_eq!(mode("server.pem"), 0o644);
        let err = write_bundle(&dir, &bundle, false).unwrap_err().to_string();
        assert!(
            err.contains("already exist") && err.contains("--force"),
            "{err}"
        );
        std::fs::set_permissions(
            dir.join("client-key.pem"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        write_bundle(&dir, &bundle, true).unwrap();
        assert_eq!(mode("client-key.pem"), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
