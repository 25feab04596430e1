//! The client's server-certificate verifier: the usual CA check, a pinned fingerprint
//! (`--pin`), or nothing (`--insecure`); it remembers why it last said no, because QUIC
//! reports a failed handshake only as text.
//!
//! Pinned and insecure modes still verify the handshake signatures with the provider's
//! algorithms, so the server must hold the private key of the certificate it shows.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::certs::fingerprint;

/// How the server's certificate is judged.
#[derive(Debug)]
pub(crate) enum Trust {
    /// Chain to these roots, valid for the server name (the default).
    Roots(Arc<WebPkiServerVerifier>),
    /// Exactly this SHA-256 fingerprint (`--pin`).
    Pin([u8; 32]),
    /// Anything (`--insecure`).
    Any,
}

/// The last verification failure, shared with whoever must explain a failed handshake.
#[derive(Clone, Debug, Default)]
pub struct VerifyLog(Arc<Mutex<Option<Error>>>);

impl VerifyLog {
    /// Takes the last failure, if the verifier rejected a certificate.
    pub fn take(&self) -> Option<Error> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.clone());
        }
        result
    }
}

/// The verifier.
#[derive(Debug)]
pub(crate) struct Verifier {
    pub trust: Trust,
    pub provider: Arc<CryptoProvider>,
    pub log: VerifyLog,
}

/// The message for a certificate that does not match the pin.
#[derive(Debug)]
pub(crate) struct PinMismatch {
    pub presented: String,
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

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let result = match &self.trust {
            Trust::Roots(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Trust::Any => Ok(ServerCertVerified::assertion()),
            Trust::Pin(pin) => {
                let presented = fingerprint(end_entity);
                if crate::certs::parse_fingerprint(&presented).ok().as_ref() == Some(pin) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(Error::InvalidCertificate(CertificateError::Other(
                        OtherError(Arc::new(PinMismatch { presented })),
                    )))
                }
            }
        };
        self.log.keep(result)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        self.log
            .keep(verify_tls12_signature(message, cert, dss, algorithms))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        self.log
            .keep(verify_tls13_signature(message, cert, dss, algorithms))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
