//! Certificates and keys from PEM files, with the `PemObject` trait of rustls-pki-types.
//!
//! Every failure names the file and says what it holds instead of what was wanted, because
//! "no certificates found" is the most common TLS setup mistake: the key file passed as the
//! certificate, or the reverse.
//!
//! Each `load_*` reads its file and hands the bytes to the matching `*_from_pem`, which does
//! all the parsing without touching the file system, so that the fuzz target (`fuzz/`) can
//! feed it bytes directly.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// The contents of `path`, or an error that names it as the `what` file.
fn read(path: &Path, what: &'static str, hint: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
        hint,
    })
}

/// Every PEM section in `bytes` (the contents of `path`), in order.
fn sections(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<Vec<(SectionKind, Vec<u8>)>, TlsError> {
    let found = <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::WrongItem {
            path: path.to_path_buf(),
            found: format!("broken PEM ({e})"),
            wanted: article(what),
            hint,
        })?;
    if found.is_empty() && String::from_utf8_lossy(bytes).contains("ENCRYPTED PRIVATE KEY") {
        return Err(TlsError::WrongItem {
            path: path.to_path_buf(),
            found: "an encrypted private key".into(),
            wanted: article(what),
            hint: "echotool needs it unencrypted: `openssl pkey -in KEY -out plain-key.pem`",
        });
    }
    Ok(found)
}

/// Loads the certificates in `path` (a chain: leaf first). `what` and `hint` shape the errors.
pub fn load_certs(
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read(path, what, hint)?, path, what, hint)
}

/// The certificates in `pem`, the contents of the file `path` (named in errors), as
/// [`load_certs`] finds them.
pub fn certs_from_pem(
    pem: &[u8],
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let all = sections(pem, path, what, hint)?;
    let certs: Vec<CertificateDer<'static>> = all
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certs.is_empty() {
        return Err(TlsError::WrongItem {
            path: path.to_path_buf(),
            found: describe(&all),
            wanted: article(what),
            hint,
        });
    }
    Ok(certs)
}

/// Loads the first private key (PKCS#8, PKCS#1 or SEC1) in `path`.
pub fn load_key(path: &Path, hint: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    key_from_pem(&read(path, "private key", hint)?, path, hint)
}

/// The first private key in `pem`, the contents of the file `path` (named in errors), as
/// [`load_key`] finds it.
pub fn key_from_pem(
    pem: &[u8],
    path: &Path,
    hint: &'static str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let all = sections(pem, path, "private key", hint)?;
    let key = all
        .iter()
        .find_map(|(kind, der)| PrivateKeyDer::from_pem(*kind, der.clone()));
    key.ok_or_else(|| TlsError::WrongItem {
        path: path.to_path_buf(),
        found: describe(&all),
        wanted: "a private key",
        hint,
    })
}

/// Loads CA certificates from `path` into a root store, and returns them as they are too (a
/// certificate named here is trusted as a peer's own even when it is a CA certificate).
pub fn load_roots(
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    roots_from_pem(&read(path, what, hint)?, path, what, hint)
}

/// The CA certificates in `pem`, the contents of the file `path` (named in errors), as
/// [`load_roots`] finds them.
pub fn roots_from_pem(
    pem: &[u8],
    path: &Path,
    what: &'static str,
    hint: &'static str,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = certs_from_pem(pem, path, what, hint)?;
    for cert in &certs {
        roots.add(cert.clone()).map_err(|e| TlsError::WrongItem {
            path: path.to_path_buf(),
            found: format!("a certificate that cannot be a trust anchor ({e})"),
            wanted: "a CA certificate",
            hint,
        })?;
    }
    Ok((roots, certs))
}

fn article(what: &'static str) -> &'static str {
    match what {
        "certificate" => "a certificate",
        "CA certificate" => "a CA certificate",
        "private key" => "a private key",
        _ => what,
    }
}

/// What a file holds, in words: "a private key", "a certificate and a private key", ...
fn describe(sections: &[(SectionKind, Vec<u8>)]) -> String {
    let mut kinds: Vec<&str> = sections
        .iter()
        .map(|(kind, _)| match kind {
            SectionKind::Certificate => "a certificate",
            SectionKind::PublicKey => "a public key",
            SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
                "a private key"
            }
            SectionKind::Crl => "a revocation list",
            SectionKind::Csr => "a certificate signing request",
            _ => "an unexpected PEM section",
        })
        .collect();
    kinds.dedup();
    if kinds.is_empty() {
        "no PEM certificate or key".into()
    } else {
        kinds.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("echotool-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_key_file_passed_as_certificate_says_so() {
        let pair = rcgen::KeyPair::generate().unwrap();
        let path = write("key-as-cert.pem", &pair.serialize_pem());
        let err = load_certs(&path, "certificate", "hint")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds a private key, not a certificate"),
            "{err}"
        );
    }

    #[test]
    fn a_certificate_passed_as_key_says_so() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let path = write("cert-as-key.pem", &certified.cert.pem());
        let err = load_key(&path, "hint").unwrap_err().to_string();
        assert!(
            err.contains("holds a certificate, not a private key"),
            "{err}"
        );
        assert_eq!(load_certs(&path, "certificate", "hint").unwrap().len(), 1);
    }

    #[test]
    fn missing_and_empty_files() {
        let err = load_certs(Path::new("/nonexistent/x.pem"), "certificate", "check it")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "cannot read the certificate file /nonexistent/x.pem: no such file; check it"
            ),
            "{err}"
        );
        let path = write("empty.pem", "hello\n");
        let err = load_key(&path, "hint").unwrap_err().to_string();
        assert!(
            err.contains("holds no PEM certificate or key, not a private key"),
            "{err}"
        );
    }
}
