//! Certificate verifiers. The client's: the usual CA check, a pinned fingerprint (`--pin`),
//! or nothing (`--insecure`); it remembers why it last said no, because QUIC reports a failed
//! handshake only as text. The server's (`--client-ca`): the usual CA check.
//!
//! Both accept a self-signed CA certificate (basic constraints CA:TRUE, as `openssl req
//! -x509` makes them) presented as the peer's own when the user named that very certificate
//! in `--ca` or `--client-ca`, as Go's crypto/tls, OpenSSL and curl do; webpki alone refuses
//! every CA certificate used as an end entity. The certificate must still be valid now and,
//! for a server, valid for the name asked for. Every other CA-as-leaf stays refused.
//!
//! Pinned and insecure modes still verify the handshake signatures with the provider's
//! algorithms, so the server must hold the private key of the certificate it shows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::certs::fingerprint;
use echotool_core::lock_ignoring_poison;

/// The certificates of the file the user named as trusted (`--ca`, `--client-ca`), kept as
/// they are: a CA certificate presented as a peer's own is accepted only if it is one of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Listed(pub Vec<CertificateDer<'static>>);

impl Listed {
    /// Whether `cert` is, byte for byte, one of the listed certificates.
    fn contains(&self, cert: &CertificateDer<'_>) -> bool {
        self.0.iter().any(|listed| listed.as_ref() == cert.as_ref())
    }

    /// Turns webpki's refusal of a CA certificate as an end entity into acceptance when the
    /// certificate is listed and valid now (and, for a server, for `name`).
    fn second_look<T>(
        &self,
        verdict: Result<T, Error>,
        end_entity: &CertificateDer<'_>,
        now: UnixTime,
        name: Option<&ServerName<'_>>,
        accepted: impl FnOnce() -> T,
    ) -> Result<T, Error> {
        match verdict {
            Err(e) if is_ca_used_as_end_entity(&e) && self.contains(end_entity) => {
                check_listed(end_entity, now, name)?;
                Ok(accepted())
            }
            other => other,
        }
    }
}

/// Whether webpki refused a certificate for being a CA certificate used as an end entity.
fn is_ca_used_as_end_entity(err: &Error) -> bool {
    match err {
        Error::InvalidCertificate(CertificateError::Other(other)) => {
            let inner: &(dyn std::error::Error + 'static) = &*other.0;
            inner.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

/// What is still checked of a certificate the user trusts as it is: its validity period,
/// its extended key usage if it has one, and (for a server) that it holds `name`.
fn check_listed(
    der: &CertificateDer<'_>,
    now: UnixTime,
    name: Option<&ServerName<'_>>,
) -> Result<(), Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let secs = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0).unsigned_abs()));
    let (not_before, not_after) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let time = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if time < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: secs(not_before),
        }
        .into());
    }
    if time > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: secs(not_after),
        }
        .into());
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        let eku = eku.value;
        let allowed = eku.any
            || if name.is_some() {
                eku.server_auth
            } else {
                eku.client_auth
            };
        if !allowed {
            return Err(CertificateError::InvalidPurpose.into());
        }
    }
    if let Some(name) = name {
        let cert = webpki::EndEntityCert::try_from(der)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        cert.verify_is_valid_for_subject_name(name)
            .map_err(|e| match e {
                webpki::Error::CertNotValidForName(context) => {
                    CertificateError::NotValidForNameContext {
                        expected: context.expected,
                        presented: context.presented,
                    }
                }
                _ => CertificateError::NotValidForName,
            })?;
    }
    Ok(())
}

/// How the server's certificate is judged.
#[derive(Debug)]
pub(crate) enum Trust {
    /// Chain to these roots, valid for the server name (the default); or be one of the
    /// certificates of the `--ca` file itself.
    Roots(Arc<WebPkiServerVerifier>, Listed),
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
        lock_ignoring_poison(&self.0).take()
    }

    fn keep<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            *lock_ignoring_poison(&self.0) = Some(e.clone());
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
            Trust::Roots(webpki, listed) => listed.second_look(
                webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                end_entity,
                now,
                Some(server_name),
                ServerCertVerified::assertion,
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

/// The server's client-certificate verifier (`--client-ca`): webpki's, with a second look at
/// a CA certificate the user named in `--client-ca` itself.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub listed: Listed,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.listed.second_look(
            self.inner
                .verify_client_cert(end_entity, intermediates, now),
            end_entity,
            now,
            None,
            ClientCertVerified::assertion,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{BundleOptions, generate_bundle};
    use rustls_pki_types::pem::PemObject;

    /// A self-signed CA certificate for localhost, as `openssl req -x509` makes them.
    fn self_signed_ca(
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = not_before;
        params.not_after = not_after;
        params.self_signed(&key).unwrap().der().clone()
    }

    fn roots(certs: &[CertificateDer<'static>]) -> Arc<WebPkiServerVerifier> {
        let mut store = rustls::RootCertStore::empty();
        for cert in certs {
            store.add(cert.clone()).unwrap();
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), crate::config::provider())
            .build()
            .unwrap()
    }

    fn verify(
        trusted: Vec<CertificateDer<'static>>,
        listed: Vec<CertificateDer<'static>>,
        presented: &CertificateDer<'static>,
        name: &str,
    ) -> Result<ServerCertVerified, Error> {
        let verifier = Verifier {
            trust: Trust::Roots(roots(&trusted), Listed(listed)),
            provider: crate::config::provider(),
            log: VerifyLog::default(),
        };
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier.verify_server_cert(presented, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn a_listed_self_signed_ca_is_accepted_for_its_names_only() {
        let now = time::OffsetDateTime::now_utc();
        let cert = self_signed_ca(now - time::Duration::days(1), now + time::Duration::days(1));
        let trusted = [cert.clone()];
        assert!(verify(trusted.to_vec(), trusted.to_vec(), &cert, "localhost").is_ok());
        let wrong = verify(trusted.to_vec(), trusted.to_vec(), &cert, "echo.example").unwrap_err();
        assert!(
            matches!(
                wrong,
                Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{wrong:?}"
        );
    }

    #[test]
    fn a_ca_certificate_that_is_not_listed_stays_refused() {
        let now = time::OffsetDateTime::now_utc();
        let (from, until) = (now - time::Duration::days(1), now + time::Duration::days(1));
        let presented = self_signed_ca(from, until);
        let other = self_signed_ca(from, until);
        let refused =
            verify(vec![other.clone()], vec![other], &presented, "localhost").unwrap_err();
        assert!(is_ca_used_as_end_entity(&refused), "{refused:?}");
        // Trusted as a root but not named in the file the verifier compares with: refused too.
        let refused = verify(vec![presented.clone()], vec![], &presented, "localhost").unwrap_err();
        assert!(is_ca_used_as_end_entity(&refused), "{refused:?}");
    }

    #[test]
    fn a_listed_ca_outside_its_validity_is_refused_as_such() {
        let now = time::OffsetDateTime::now_utc();
        let future = self_signed_ca(now + time::Duration::days(1), now + time::Duration::days(2));
        let err = verify(
            vec![future.clone()],
            vec![future.clone()],
            &future,
            "localhost",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{err:?}"
        );
        let listed = Listed(vec![future.clone()]);
        let later = UnixTime::since_unix_epoch(Duration::from_secs(
            (now + time::Duration::days(3))
                .unix_timestamp()
                .unsigned_abs(),
        ));
        let err = check_listed(&future, later, None).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{err:?}"
        );
        assert!(listed.contains(&future));
    }

    #[test]
    fn certificates_issued_by_a_ca_still_verify() {
        let bundle = generate_bundle(&BundleOptions::valid_for_days(vec![], 1)).unwrap();
        let pem = |name: &str| {
            let file = bundle.files.iter().find(|f| f.name == name).unwrap();
            CertificateDer::from_pem_slice(file.contents.as_bytes()).unwrap()
        };
        let (ca, server) = (pem("ca.pem"), pem("server.pem"));
        assert!(verify(vec![ca.clone()], vec![ca.clone()], &server, "localhost").is_ok());
        // The CA itself, presented as a server's certificate, is listed: accepted only if it
        // holds the name, which echotool's CA does not.
        assert!(verify(vec![ca.clone()], vec![ca.clone()], &ca, "localhost").is_err());
    }
}
