//! Server-certificate verifiers for the two cases the usual CA check does not cover:
//! `--insecure` (accept any certificate) and `--pin` (accept exactly one).
//!
//! Both still verify the handshake signatures with the provider's algorithms, so the server
//! must hold the private key of the certificate it shows.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::certs::fingerprint;

/// Accepts the server certificate if it is pinned (when `pin` is set) or unconditionally.
#[derive(Debug)]
pub(crate) struct PinnedOrAny {
    pub provider: Arc<CryptoProvider>,
    /// The SHA-256 the end-entity certificate must have; `None` accepts any (`--insecure`).
    pub pin: Option<[u8; 32]>,
}

/// The message for a certificate that does not match the pin.
#[derive(Debug)]
struct PinMismatch {
    presented: String,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "has the fingerprint {}, not the one given with --pin; if the server was restarted \
             with a new ephemeral certificate, copy the new fingerprint it printed",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedOrAny {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(pin) = self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let presented = fingerprint(end_entity);
        if crate::certs::parse_fingerprint(&presented).ok() == Some(pin) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch { presented })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
