//! PEM files as `--cert`, `--key`, `--ca` and `--client-ca` (and `cert =`, `key =`,
//! `client-ca =` in a config file) hand them over: certificate chains, private keys in every
//! encoding, CA bundles; then what the server and client do with them: the key loaded by the
//! crypto provider, the pair checked, the roots made a client verifier, and each certificate
//! described in words (as `-v` and errors describe a peer's).
//!
//! Beyond "no panic": every error names the file; a certificate's fingerprint is `sha256:`
//! and 64 hex digits that read back as a pin.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use echotool_secure::certs::{describe_certificate, fingerprint, parse_fingerprint, validity};
use echotool_secure::config::provider;
use echotool_secure::pem::{certs_from_pem, key_from_pem, roots_from_pem};
use libfuzzer_sys::fuzz_target;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

const FILE: &str = "/fuzz/input.pem";

fuzz_target!(|pem: &[u8]| {
    let path = Path::new(FILE);
    let named = |e: &dyn std::fmt::Display| {
        let text = e.to_string();
        assert!(
            text.contains(FILE),
            "an error that does not name the file: {text}"
        );
    };
    let certs = certs_from_pem(pem, path, "certificate", "hint").inspect_err(|e| named(e));
    let key = key_from_pem(pem, path, "hint").inspect_err(|e| named(e));
    if let Ok(certs) = &certs {
        for der in certs {
            let fp = fingerprint(der);
            assert_eq!(fp.len(), "sha256:".len() + 64, "{fp}");
            assert!(parse_fingerprint(&fp).is_ok(), "{fp}");
            assert!(describe_certificate(der).contains(&fp));
            let _ = validity(der);
        }
    }
    if let Ok(key) = &key {
        let _ = provider().key_provider.load_private_key(key.clone_key());
    }
    if let (Ok(certs), Ok(key)) = (certs, key) {
        let _ = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map(|b| b.with_no_client_auth().with_single_cert(certs, key));
    }
    match roots_from_pem(pem, path, "CA certificate", "hint") {
        Ok((roots, _)) => {
            let _ =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build();
        }
        Err(e) => named(&e),
    }
});
