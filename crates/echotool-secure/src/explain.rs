//! rustls failures in words: for each error a short cause (what the server's summary counts
//! failed handshakes by) and a message that says what went wrong and which flag or command
//! fixes it. No rustls identifier or `Debug` output reaches the user: every variant of
//! `rustls::Error`, `CertificateError` and the webpki errors inside them is phrased here.

use std::io;

use echotool_core::{HandshakeError, TlsClientOptions};
use rustls::{CertificateError, PeerIncompatible};

use crate::alert;
use crate::cause;
use crate::error::{Side, unix_date};

/// Explains a rustls error: the cause, and the flag or command that fixes it. `name` is the
/// server name (client side) or the peer's address (server side); `opts` are the client's
/// trust settings (defaults on the server).
pub fn explain(err: &rustls::Error, side: Side, name: &str, opts: &TlsClientOptions) -> String {
    judge(err, side, name, opts).message
}

/// Explains a rustls error with its cause.
pub fn judge(
    err: &rustls::Error,
    side: Side,
    name: &str,
    opts: &TlsClientOptions,
) -> HandshakeError {
    use rustls::Error as E;
    let them = them(side);
    let (cause, message) = match err {
        E::InvalidCertificate(cert) => return certificate(cert, side, name, opts),
        E::AlertReceived(alert) => return alert::received(*alert, side, opts.cert.is_some()),
        E::PeerIncompatible(why) => return incompatible(why, side),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => not_tls(side),
        E::InappropriateHandshakeMessage { .. } if side == Side::Client => not_tls(side),
        E::InappropriateHandshakeMessage { .. } => (
            cause::PROTOCOL,
            "the client sent a TLS handshake message out of order; a faulty TLS implementation"
                .into(),
        ),
        E::NoCertificatesPresented => match side {
            Side::Server => (
                cause::NO_CLIENT_CERT,
                "the client sent no certificate, and this server requires one (--client-ca); \
                 the client must pass --cert and --key"
                    .into(),
            ),
            Side::Client => (
                cause::NO_SERVER_CERT,
                "the server sent no certificate, so it cannot be verified; give it one with \
                 --cert and --key"
                    .into(),
            ),
        },
        E::UnsupportedNameType => (
            cause::WRONG_NAME,
            format!(
                "'{name}' is not a kind of name a certificate can be checked against; pass \
                 --server-name with a DNS name or an IP address"
            ),
        ),
        E::DecryptError | E::PeerSentOversizedRecord | E::InvalidEncryptedClientHello(_) => (
            cause::PROTOCOL,
            format!(
                "{them} sent a TLS record that could not be decrypted or is larger than TLS \
                 allows: something on the way altered the traffic, or {them} is faulty"
            ),
        ),
        E::PeerMisbehaved(_) => (
            cause::PROTOCOL,
            format!(
                "{them} broke the rules of the TLS protocol (a faulty implementation, or \
                 something on the way altering the traffic)"
            ),
        ),
        E::NoApplicationProtocol => (
            cause::NO_ALPN,
            format!(
                "{them} supports none of the ALPN protocols offered; make --alpn agree on both \
                 sides"
            ),
        ),
        other => (cause::INTERNAL, internal(other)),
    };
    HandshakeError::new(cause, message)
}

/// The other side, in words.
fn them(side: Side) -> &'static str {
    match side {
        Side::Client => "the server",
        Side::Server => "the client",
    }
}

fn not_tls(side: Side) -> (&'static str, String) {
    let message = match side {
        Side::Client => {
            "the server did not answer in TLS; is it a plaintext server? Use --proto tcp for one"
        }
        Side::Server => "the client did not speak TLS (plaintext or garbage on the TLS port)",
    };
    (cause::NOT_TLS, message.into())
}

/// Failures of this side, not of the peer.
fn internal(err: &rustls::Error) -> String {
    use rustls::Error as E;
    match err {
        E::EncryptError => "a message was too large to encrypt (a bug in echotool)".into(),
        E::InvalidCertRevocationList(_) => "a certificate revocation list could not be used".into(),
        E::General(why) => format!("TLS failed unexpectedly: {why}"),
        E::FailedToGetCurrentTime => {
            "this machine's clock could not be read, so certificates cannot be checked".into()
        }
        E::FailedToGetRandomBytes => "the system's random number generator failed".into(),
        E::HandshakeNotComplete => "the TLS handshake is not complete yet".into(),
        E::BadMaxFragmentSize => "the TLS record size limit is out of range".into(),
        E::InconsistentKeys(_) => {
            "the private key does not belong to the certificate; pass the key that was \
             generated together with it"
                .into()
        }
        E::Other(why) => format!("TLS failed: {why}"),
        _ => "TLS failed with an error echotool does not know; try again with -v".into(),
    }
}

/// Why the peer and this side have nothing in common.
fn incompatible(why: &PeerIncompatible, side: Side) -> HandshakeError {
    use PeerIncompatible as P;
    let them = them(side);
    let (cause, message) = match why {
        P::ServerDoesNotSupportTls12Or13
        | P::ServerTlsVersionIsDisabledByOurConfig
        | P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::Tls13RequiredForQuic => (
            cause::NO_VERSION,
            format!(
                "{them} supports no TLS version in common with this side (echotool speaks TLS \
                 1.2 and 1.3, QUIC 1.3 only); make --tls-version agree on both sides"
            ),
        ),
        P::NoCipherSuitesInCommon => (
            cause::NO_COMMON,
            format!("{them} offers no cipher suite this side supports"),
        ),
        P::NoKxGroupsInCommon => (
            cause::NO_COMMON,
            format!("{them} offers no key exchange group this side supports"),
        ),
        P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon => (
            cause::NO_COMMON,
            format!(
                "{them} accepts no signature scheme this side's certificate can sign with; \
                 an ECDSA P-256 certificate (`echotool certs`) is accepted almost everywhere"
            ),
        ),
        P::ServerRejectedEncryptedClientHello(_) => (
            cause::PROTOCOL,
            "the server rejected Encrypted Client Hello".to_string(),
        ),
        _ => (
            cause::NO_COMMON,
            format!(
                "{them} lacks a TLS feature this side requires (it is too old, or configured \
                 unusually); check --tls-version on both sides"
            ),
        ),
    };
    HandshakeError::new(cause, message)
}

/// Explains a rejected certificate: whose, why, and what to do.
fn certificate(
    cert: &CertificateError,
    side: Side,
    name: &str,
    opts: &TlsClientOptions,
) -> HandshakeError {
    use CertificateError as C;
    let whose = match side {
        Side::Client => "the server's certificate",
        Side::Server => "the client's certificate",
    };
    let renew = "renew it, e.g. with `echotool certs --force`";
    let (cause, message) = match cert {
        C::UnknownIssuer => (cause::UNTRUSTED, unknown_issuer(side, whose)),
        C::NotValidForNameContext {
            expected,
            presented,
        } => (
            cause::WRONG_NAME,
            format!(
                "{whose} is for {} and not for {}; pass --server-name with one of those names, \
                 or regenerate it with `echotool certs --san {}`",
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
        ),
        C::NotValidForName => (
            cause::WRONG_NAME,
            format!(
                "{whose} is not valid for {name}; pass --server-name with a name it holds, or \
                 regenerate it with `echotool certs --san {name}`"
            ),
        ),
        C::ExpiredContext { time, not_after } => (
            cause::EXPIRED,
            format!(
                "{whose} expired at {} (it is now {}); {renew}",
                unix_date(not_after.as_secs()),
                unix_date(time.as_secs())
            ),
        ),
        C::Expired => (cause::EXPIRED, format!("{whose} has expired; {renew}")),
        C::NotValidYetContext { time, not_before } => (
            cause::EXPIRED,
            format!(
                "{whose} is not valid before {} (it is now {}); check the clocks of both \
                 machines, or issue it with an earlier start",
                unix_date(not_before.as_secs()),
                unix_date(time.as_secs())
            ),
        ),
        C::NotValidYet => (
            cause::EXPIRED,
            format!("{whose} is not valid yet; check the clocks of both machines"),
        ),
        C::Other(other) => return other_certificate_error(other, side, whose, opts),
        other => certificate_defect(other, side, whose),
    };
    HandshakeError::new(cause, message)
}

fn unknown_issuer(side: Side, whose: &str) -> String {
    match side {
        Side::Client => format!(
            "{whose} was not issued by a CA this client trusts; pass --ca with the CA \
             certificate that signed it (echotool certs writes certs/ca.pem), --pin sha256:... \
             for a self-signed one, or --insecure to skip verification"
        ),
        Side::Server => format!(
            "{whose} was not issued by the CA in --client-ca; give the client a certificate from \
             that CA"
        ),
    }
}

/// Certificates that are broken, revoked or meant for something else.
fn certificate_defect(cert: &CertificateError, side: Side, whose: &str) -> (&'static str, String) {
    use CertificateError as C;
    let reissue = "reissue it, e.g. with `echotool certs`";
    match cert {
        C::BadEncoding => (
            cause::BAD_CERT,
            format!("{whose} cannot be parsed (it is not valid DER); {reissue}"),
        ),
        C::UnhandledCriticalExtension => (
            cause::BAD_CERT,
            format!(
                "{whose} carries an extension marked critical that this side does not \
                 understand; {reissue}"
            ),
        ),
        C::Revoked => (
            cause::REVOKED,
            format!("{whose} has been revoked by its issuer; get a new one"),
        ),
        C::UnknownRevocationStatus
        | C::ExpiredRevocationList
        | C::ExpiredRevocationListContext { .. } => (
            cause::UNTRUSTED,
            format!(
                "whether {whose} has been revoked cannot be told (its revocation list is \
                 missing or out of date)"
            ),
        ),
        C::BadSignature => (
            cause::SIGNATURE,
            format!(
                "{whose} has a signature that does not verify with the trusted CA's key: it was \
                 altered, or issued by another CA with the same name as the trusted one (say, \
                 by a second run of `echotool certs`); trust the CA that really issued it"
            ),
        ),
        #[allow(deprecated)]
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => (
            cause::BAD_CERT,
            format!(
                "{whose} is signed with an algorithm this side does not support; {reissue} \
                 (ECDSA P-256)"
            ),
        ),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => (
            cause::NOT_FOR_USE,
            format!(
                "{whose} is not issued for {} authentication (its extended key usage forbids \
                 it); {reissue}",
                match side {
                    Side::Client => "server",
                    Side::Server => "client",
                }
            ),
        ),
        C::InvalidOcspResponse => (
            cause::REJECTED,
            format!("the revocation status (OCSP) response sent with {whose} is invalid"),
        ),
        C::ApplicationVerificationFailure => (
            cause::UNTRUSTED,
            format!("{whose} does not match the pinned fingerprint (--pin)"),
        ),
        _ => (
            cause::REJECTED,
            format!("{whose} was rejected by certificate verification; {reissue}"),
        ),
    }
}

/// `CertificateError::Other`: webpki's errors rustls has no variant for, or this crate's own.
fn other_certificate_error(
    other: &rustls::OtherError,
    side: Side,
    whose: &str,
    opts: &TlsClientOptions,
) -> HandshakeError {
    let inner: &(dyn std::error::Error + 'static) = &*other.0;
    if let Some(webpki) = inner.downcast_ref::<webpki::Error>() {
        let (cause, message) = webpki_error(webpki, side, whose, opts);
        return HandshakeError::new(cause, message);
    }
    if inner.is::<crate::verify::PinMismatch>() {
        return HandshakeError::new(cause::UNTRUSTED, format!("{whose} {inner}"));
    }
    HandshakeError::new(cause::REJECTED, format!("{whose} was rejected: {inner}"))
}

/// The webpki errors that rustls passes on as `CertificateError::Other`.
fn webpki_error(
    err: &webpki::Error,
    side: Side,
    whose: &str,
    opts: &TlsClientOptions,
) -> (&'static str, String) {
    use webpki::Error as W;
    let reissue = "reissue it, e.g. with `echotool certs`";
    match err {
        W::CaUsedAsEndEntity => (cause::UNTRUSTED, ca_as_leaf(side, whose, opts)),
        // rustls turns these into variants of its own; a custom verifier may pass them as
        // they are.
        W::UnknownIssuer => (cause::UNTRUSTED, unknown_issuer(side, whose)),
        W::CertExpired { .. } | W::CertNotValidYet { .. } => (
            cause::EXPIRED,
            format!(
                "{whose} has expired or is not valid yet; check its dates and the clocks of \
                 both machines"
            ),
        ),
        W::CertNotValidForName(_) => (
            cause::WRONG_NAME,
            format!(
                "{whose} does not hold the name asked for; pass --server-name with a name it \
                 holds, or regenerate it with `echotool certs --san NAME`"
            ),
        ),
        W::InvalidSignatureForPublicKey => (
            cause::SIGNATURE,
            format!("{whose} has a signature that does not verify with the trusted CA's key"),
        ),
        #[allow(deprecated)]
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => (
            cause::NOT_FOR_USE,
            format!("{whose} is not issued for this use (its extended key usage); {reissue}"),
        ),
        W::CertDistrusted => (
            cause::UNTRUSTED,
            format!("{whose} is explicitly distrusted"),
        ),
        W::EndEntityUsedAsCa => (
            cause::UNTRUSTED,
            format!(
                "the chain sent with {whose} uses a certificate that is not a CA as its issuer; \
                 send the real intermediate CA certificates after it"
            ),
        ),
        W::EmptyEkuExtension => (
            cause::NOT_FOR_USE,
            format!("{whose} allows no use at all (an empty extended key usage); {reissue}"),
        ),
        W::UnsupportedNameType => (
            cause::WRONG_NAME,
            "the server name is of a kind a certificate cannot be checked against; pass \
             --server-name with a DNS name or an IP address"
                .into(),
        ),
        W::InvalidCertValidity => (
            cause::BAD_CERT,
            format!("{whose} has a validity period that ends before it starts; {reissue}"),
        ),
        other => webpki_chain_error(other, whose),
    }
}

/// webpki's errors about the chain of issuers and revocation, and the rest: a certificate it
/// cannot use.
fn webpki_chain_error(err: &webpki::Error, whose: &str) -> (&'static str, String) {
    use webpki::Error as W;
    let reissue = "reissue it, e.g. with `echotool certs`";
    match err {
        W::NameConstraintViolation | W::PathLenConstraintViolated => (
            cause::UNTRUSTED,
            format!("{whose} lies outside what its issuing CA may issue (its constraints)"),
        ),
        W::MaximumNameConstraintComparisonsExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumPathDepthExceeded
        | W::MaximumSignatureChecksExceeded => (
            cause::UNTRUSTED,
            format!("{whose} comes with a chain too long or complex to verify"),
        ),
        W::CertRevoked
        | W::UnknownRevocationStatus
        | W::CrlExpired { .. }
        | W::IssuerNotCrlSigner
        | W::InvalidCrlNumber
        | W::InvalidCrlSignatureForPublicKey
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedRevocationReason
        | W::UnsupportedRevocationReasonsPartitioning => (
            cause::UNTRUSTED,
            format!("whether {whose} has been revoked cannot be told from its revocation list"),
        ),
        _ => (
            cause::BAD_CERT,
            format!(
                "{whose} is malformed or uses a feature this side does not support (an \
                 extension, a name, a serial number or a signature algorithm); {reissue}"
            ),
        ),
    }
}

/// A CA certificate (basic constraints CA:TRUE) presented as the peer's own, and not one
/// this side was told to trust as it is: explicitly trusted ones are accepted before this.
fn ca_as_leaf(side: Side, whose: &str, opts: &TlsClientOptions) -> String {
    match side {
        Side::Client => {
            let trusted = match &opts.ca {
                Some(ca) => format!("in {} (--ca)", ca.display()),
                None => "among this system's trusted roots (no --ca given)".into(),
            };
            format!(
                "{whose} is a CA certificate (basic constraints CA:TRUE) used as the server's \
                 own, and it is not one of the certificates {trusted}. To trust this very \
                 certificate, pass the file holding it with --ca; better, give the server a \
                 certificate issued by a CA (`echotool certs` writes certs/server.pem, issued \
                 by certs/ca.pem)"
            )
        }
        Side::Server => format!(
            "{whose} is a CA certificate (basic constraints CA:TRUE) used as the client's own, \
             and it is not one of the certificates in --client-ca. To trust this very \
             certificate, name the file holding it with --client-ca; better, give the client a \
             certificate issued by a CA (`echotool certs` writes certs/client.pem)"
        ),
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

/// The rustls error inside an I/O error, if there is one.
pub fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Explains an I/O error from a TLS stream: rustls errors in words, a connection closed
/// under the handshake as such, the rest as the operating system says.
pub fn judge_io(
    err: &io::Error,
    side: Side,
    name: &str,
    opts: &TlsClientOptions,
) -> HandshakeError {
    if let Some(tls) = rustls_error(err) {
        return judge(tls, side, name, opts);
    }
    use io::ErrorKind as K;
    match (err.kind(), side) {
        (K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe, side) => {
            let message = match side {
                Side::Client => {
                    "the server closed the connection during the TLS handshake; is it a TLS \
                     server? (a plaintext server or a refused client certificate ends it this \
                     way)"
                }
                Side::Server => {
                    "the client closed the connection during the TLS handshake (a client that \
                     rejects the certificate without saying why, or a port scanner, does so)"
                }
            };
            HandshakeError::new(cause::CLOSED, message)
        }
        _ => HandshakeError::new(cause::CLOSED, err.to_string()),
    }
}

/// A failed handshake, explained, from the I/O error tokio-rustls returns.
pub fn handshake_error(
    err: &io::Error,
    side: Side,
    name: &str,
    opts: &TlsClientOptions,
) -> crate::TlsError {
    crate::TlsError::Handshake(explain_io(err, side, name, opts))
}

/// Explains an I/O error from a TLS stream, as a message.
pub fn explain_io(err: &io::Error, side: Side, name: &str, opts: &TlsClientOptions) -> String {
    judge_io(err, side, name, opts).message
}

/// Adds when this side's certificate is valid to a peer's complaint that it is expired or not
/// valid yet (the alert does not say which, nor whose clock is wrong).
pub fn with_validity(failure: HandshakeError, validity: Option<&str>) -> HandshakeError {
    match validity {
        Some(validity) if failure.cause == cause::EXPIRED => HandshakeError {
            message: format!("{}; this side's certificate is {validity}", failure.message),
            ..failure
        },
        _ => failure,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{
        AlertDescription, CertRevocationListError, ContentType, EncryptedClientHelloError,
        Error as E, ExtendedKeyPurpose, HandshakeType, InconsistentKeys, InvalidMessage,
        OtherError, PeerMisbehaved,
    };

    use super::*;

    /// Fails on text meant for people that holds a Rust identifier (`UnknownIssuer`) or Debug
    /// output (`Some(..)`, `{ .. }`, `Foo::Bar`).
    fn assert_plain(text: &str, what: &str) {
        assert!(!text.is_empty(), "{what}: empty");
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            let camel = word
                .chars()
                .zip(word.chars().skip(1))
                .any(|(a, b)| a.is_lowercase() && b.is_uppercase());
            assert!(!camel, "{what}: identifier {word:?} in {text:?}");
        }
        for debug in ["{", "}", "::", "Some(", "None", "Context", "_"] {
            assert!(!text.contains(debug), "{what}: {debug:?} in {text:?}");
        }
    }

    #[test]
    #[should_panic(expected = "identifier")]
    fn the_plain_text_check_catches_identifiers() {
        assert_plain("the server's certificate CaUsedAsEndEntity", "a leak");
    }

    fn opts() -> Vec<TlsClientOptions> {
        let with_files = TlsClientOptions {
            ca: Some("certs/ca.pem".into()),
            cert: Some("certs/client.pem".into()),
            ..TlsClientOptions::default()
        };
        vec![TlsClientOptions::default(), with_files]
    }

    fn assert_judged(err: &rustls::Error) {
        for side in [Side::Client, Side::Server] {
            for opts in opts() {
                let judged = judge(err, side, "localhost", &opts);
                assert_plain(&judged.message, &format!("{err:?} ({side:?})"));
                assert_plain(judged.cause, &format!("cause of {err:?}"));
            }
        }
    }

    #[test]
    fn every_alert_code_is_explained_in_words_from_both_ends() {
        for code in 0..=255u8 {
            let alert = AlertDescription::from(code);
            for side in [Side::Client, Side::Server] {
                for has_cert in [false, true] {
                    let got = crate::alert::received(alert, side, has_cert);
                    assert_plain(&got.message, &format!("alert {code} received"));
                }
                let sent = crate::alert::sent(alert, side);
                assert_plain(&sent.message, &format!("alert {code} sent"));
                assert_plain(&crate::alert::describe(alert), "alert name");
            }
            assert_judged(&E::AlertReceived(alert));
        }
    }

    fn time(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[allow(deprecated)]
    fn certificate_errors() -> Vec<CertificateError> {
        use CertificateError as C;
        let name = ServerName::try_from("echo.example").unwrap();
        vec![
            C::BadEncoding,
            C::Expired,
            C::ExpiredContext {
                time: time(2_000_000_000),
                not_after: time(1_900_000_000),
            },
            C::NotValidYet,
            C::NotValidYetContext {
                time: time(1_900_000_000),
                not_before: time(2_000_000_000),
            },
            C::Revoked,
            C::UnhandledCriticalExtension,
            C::UnknownIssuer,
            C::UnknownRevocationStatus,
            C::ExpiredRevocationList,
            C::ExpiredRevocationListContext {
                time: time(2),
                next_update: time(1),
            },
            C::BadSignature,
            C::UnsupportedSignatureAlgorithm,
            C::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: vec![1, 2],
                supported_algorithms: vec![],
            },
            C::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: vec![1],
                public_key_algorithm_id: vec![2],
            },
            C::NotValidForName,
            C::NotValidForNameContext {
                expected: name.clone(),
                presented: vec![
                    "DnsName(\"localhost\")".into(),
                    "IpAddress(127.0.0.1)".into(),
                ],
            },
            C::NotValidForNameContext {
                expected: name,
                presented: vec![],
            },
            C::InvalidPurpose,
            C::InvalidPurposeContext {
                required: ExtendedKeyPurpose::ServerAuth,
                presented: vec![ExtendedKeyPurpose::ClientAuth],
            },
            C::InvalidOcspResponse,
            C::ApplicationVerificationFailure,
        ]
    }

    #[allow(deprecated)]
    fn webpki_errors() -> Vec<webpki::Error> {
        use webpki::Error as W;
        vec![
            W::BadDer,
            W::BadDerTime,
            W::CaUsedAsEndEntity,
            W::CertDistrusted,
            W::CertExpired {
                time: time(2),
                not_after: time(1),
            },
            W::CertNotValidYet {
                time: time(1),
                not_before: time(2),
            },
            W::CertRevoked,
            W::CrlExpired {
                time: time(2),
                next_update: time(1),
            },
            W::EmptyEkuExtension,
            W::EndEntityUsedAsCa,
            W::ExtensionValueInvalid,
            W::InvalidCertValidity,
            W::InvalidCrlNumber,
            W::InvalidNetworkMaskConstraint,
            W::InvalidSerialNumber,
            W::InvalidCrlSignatureForPublicKey,
            W::InvalidSignatureForPublicKey,
            W::IssuerNotCrlSigner,
            W::MalformedDnsIdentifier,
            W::MalformedExtensions,
            W::MalformedNameConstraint,
            W::MaximumNameConstraintComparisonsExceeded,
            W::MaximumPathBuildCallsExceeded,
            W::MaximumPathDepthExceeded,
            W::MaximumSignatureChecksExceeded,
            W::NameConstraintViolation,
            W::PathLenConstraintViolated,
            W::RequiredEkuNotFound,
            W::SignatureAlgorithmMismatch,
            W::UnknownIssuer,
            W::UnknownRevocationStatus,
            W::UnsupportedCertVersion,
            W::UnsupportedCriticalExtension,
            W::UnsupportedCrlIssuingDistributionPoint,
            W::UnsupportedCrlVersion,
            W::UnsupportedDeltaCrl,
            W::UnsupportedIndirectCrl,
            W::UnsupportedNameType,
            W::UnsupportedRevocationReason,
            W::UnsupportedRevocationReasonsPartitioning,
            W::UnsupportedCrlSignatureAlgorithm,
            W::UnsupportedSignatureAlgorithm,
            W::UnsupportedCrlSignatureAlgorithmForPublicKey,
            W::UnsupportedSignatureAlgorithmForPublicKey,
        ]
    }

    #[test]
    fn every_certificate_error_is_explained_in_words() {
        let mut all = certificate_errors();
        for webpki in webpki_errors() {
            all.push(CertificateError::Other(OtherError(Arc::new(webpki))));
        }
        let pin = crate::verify::PinMismatch {
            presented: "sha256:00".into(),
        };
        all.push(CertificateError::Other(OtherError(Arc::new(pin))));
        all.push(CertificateError::Other(OtherError(Arc::new(
            io::Error::other("refused by a custom check"),
        ))));
        for cert in all {
            assert_judged(&E::InvalidCertificate(cert));
        }
    }

    #[allow(deprecated)]
    fn peer_incompatible() -> Vec<PeerIncompatible> {
        use PeerIncompatible as P;
        vec![
            P::EcPointsExtensionRequired,
            P::ExtendedMasterSecretExtensionRequired,
            P::IncorrectCertificateTypeExtension,
            P::KeyShareExtensionRequired,
            P::NamedGroupsExtensionRequired,
            P::NoCertificateRequestSignatureSchemesInCommon,
            P::NoCipherSuitesInCommon,
            P::NoEcPointFormatsInCommon,
            P::NoKxGroupsInCommon,
            P::NoSignatureSchemesInCommon,
            P::NullCompressionRequired,
            P::ServerDoesNotSupportTls12Or13,
            P::ServerSentHelloRetryRequestWithUnknownExtension,
            P::ServerTlsVersionIsDisabledByOurConfig,
            P::SignatureAlgorithmsExtensionRequired,
            P::SupportedVersionsExtensionRequired,
            P::Tls12NotOffered,
            P::Tls12NotOfferedOrEnabled,
            P::Tls13RequiredForQuic,
            P::UncompressedEcPointsRequired,
            P::UnsolicitedCertificateTypeExtension,
            P::ServerRejectedEncryptedClientHello(None),
        ]
    }

    #[test]
    fn every_error_variant_is_explained_in_words() {
        let mut all = vec![
            E::InappropriateMessage {
                expect_types: vec![ContentType::Handshake],
                got_type: ContentType::ApplicationData,
            },
            E::InappropriateHandshakeMessage {
                expect_types: vec![HandshakeType::ServerHello],
                got_type: HandshakeType::ClientHello,
            },
            E::InvalidEncryptedClientHello(EncryptedClientHelloError::InvalidConfigList),
            E::InvalidMessage(InvalidMessage::InvalidContentType),
            E::NoCertificatesPresented,
            E::UnsupportedNameType,
            E::DecryptError,
            E::EncryptError,
            E::PeerMisbehaved(PeerMisbehaved::IncorrectBinder),
            E::InvalidCertRevocationList(CertRevocationListError::BadSignature),
            E::General("the unexpected happened".into()),
            E::FailedToGetCurrentTime,
            E::FailedToGetRandomBytes,
            E::HandshakeNotComplete,
            E::PeerSentOversizedRecord,
            E::NoApplicationProtocol,
            E::BadMaxFragmentSize,
            E::InconsistentKeys(InconsistentKeys::KeyMismatch),
            E::Other(OtherError(Arc::new(io::Error::other("a provider failed")))),
        ];
        all.extend(peer_incompatible().into_iter().map(E::PeerIncompatible));
        for err in &all {
            assert_judged(err);
        }
        for kind in [io::ErrorKind::UnexpectedEof, io::ErrorKind::ConnectionReset] {
            for side in [Side::Client, Side::Server] {
                let judged = judge_io(
                    &io::Error::from(kind),
                    side,
                    "x",
                    &TlsClientOptions::default(),
                );
                assert_eq!(judged.cause, cause::CLOSED);
                assert_plain(&judged.message, "closed");
            }
        }
    }

    #[test]
    fn causes_name_what_really_happened() {
        let no = TlsClientOptions::default();
        let received = |alert| judge(&E::AlertReceived(alert), Side::Server, "x", &no);
        // A client that finds this server's certificate not yet valid sends the same alert as
        // for an expired one; the server must not claim it expired.
        let not_yet = received(AlertDescription::CertificateExpired);
        assert_eq!(not_yet.cause, cause::EXPIRED);
        assert!(
            not_yet.message.contains("expired or not valid yet"),
            "{}",
            not_yet.message
        );
        let validity = Some("valid from 2030-01-01 00:00:00 UTC until 2031-01-01 00:00:00 UTC");
        let dated = with_validity(not_yet, validity);
        assert!(dated.message.ends_with("this side's certificate is valid from 2030-01-01 00:00:00 UTC until 2031-01-01 00:00:00 UTC"), "{}", dated.message);
        // rustls clients send bad_certificate for a wrong name: not an untrusted CA.
        let name = received(AlertDescription::BadCertificate);
        assert_eq!(name.cause, cause::WRONG_NAME_OR_BAD);
        assert!(name.message.contains("--server-name"), "{}", name.message);
        assert!(!name.message.contains("trust"), "{}", name.message);
        assert_eq!(
            received(AlertDescription::UnknownCA).cause,
            cause::UNTRUSTED
        );
        let plaintext = judge(
            &E::InvalidMessage(InvalidMessage::InvalidContentType),
            Side::Server,
            "x",
            &no,
        );
        assert_eq!(plaintext.cause, cause::NOT_TLS);
        assert_eq!(
            judge(&E::NoCertificatesPresented, Side::Server, "x", &no).cause,
            cause::NO_CLIENT_CERT
        );
    }

    #[test]
    fn a_ca_certificate_as_a_leaf_is_explained_with_the_file_to_name() {
        let webpki = || {
            E::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                webpki::Error::CaUsedAsEndEntity,
            ))))
        };
        let mut opts = TlsClientOptions::default();
        let system = judge(&webpki(), Side::Client, "localhost", &opts);
        assert_eq!(system.cause, cause::UNTRUSTED);
        assert!(
            system.message.contains("among this system's trusted roots"),
            "{}",
            system.message
        );
        opts.ca = Some("other.pem".into());
        let client = judge(&webpki(), Side::Client, "localhost", &opts).message;
        for want in [
            "CA:TRUE",
            "not one of the certificates in other.pem (--ca)",
            "echotool certs",
        ] {
            assert!(client.contains(want), "{want:?} in {client}");
        }
        let server = judge(
            &webpki(),
            Side::Server,
            "peer",
            &TlsClientOptions::default(),
        )
        .message;
        assert!(
            server.contains("--client-ca") && server.contains("CA:TRUE"),
            "{server}"
        );
    }
}
