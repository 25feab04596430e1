//! TLS alerts in words. An alert is all one side learns when the other gives up, and rustls
//! sends the same alert for different causes (`certificate_expired` for a certificate that is
//! not valid *yet*, `bad_certificate` for a wrong name), so each alert is explained by what it
//! can really mean, from the side that received it and from the side that sent it.
//!
//! Only QUIC needs the sending side's view: quinn reports this side's own TLS failure as the
//! alert it sent, with rustls's raw text beside it.

use echotool_core::HandshakeError;
use rustls::AlertDescription as A;

use crate::cause;
use crate::error::Side;

/// The alert's name in words (after RFC 8446 and the IANA registry), for alerts with nothing
/// more specific to say.
pub fn describe(alert: A) -> String {
    let words = match alert {
        A::CloseNotify => "close notify",
        A::UnexpectedMessage => "unexpected message",
        A::BadRecordMac => "bad record authentication code",
        A::DecryptionFailed => "decryption failed",
        A::RecordOverflow => "record overflow",
        A::DecompressionFailure => "decompression failure",
        A::HandshakeFailure => "handshake failure",
        A::NoCertificate => "no certificate",
        A::BadCertificate => "bad certificate",
        A::UnsupportedCertificate => "unsupported certificate",
        A::CertificateRevoked => "certificate revoked",
        A::CertificateExpired => "certificate expired",
        A::CertificateUnknown => "certificate unknown",
        A::IllegalParameter => "illegal parameter",
        A::UnknownCA => "unknown certificate authority",
        A::AccessDenied => "access denied",
        A::DecodeError => "decode error",
        A::DecryptError => "decrypt error",
        A::ExportRestriction => "export restriction",
        A::ProtocolVersion => "protocol version",
        A::InsufficientSecurity => "insufficient security",
        A::InternalError => "internal error",
        A::InappropriateFallback => "inappropriate fallback",
        A::UserCanceled => "user canceled",
        A::NoRenegotiation => "no renegotiation",
        A::MissingExtension => "missing extension",
        A::UnsupportedExtension => "unsupported extension",
        A::CertificateUnobtainable => "certificate unobtainable",
        A::UnrecognisedName => "unrecognised name",
        A::BadCertificateStatusResponse => "bad certificate status response",
        A::BadCertificateHashValue => "bad certificate hash value",
        A::UnknownPSKIdentity => "unknown pre-shared key identity",
        A::CertificateRequired => "certificate required",
        A::NoApplicationProtocol => "no application protocol",
        A::EncryptedClientHelloRequired => "encrypted client hello required",
        _ => return format!("number {} (not one TLS defines)", u8::from(alert)),
    };
    format!("\"{words}\"")
}

/// The peer, the peer's certificate, and this side's certificate, in words.
struct Parties {
    them: &'static str,
    ours: &'static str,
    theirs: &'static str,
}

fn parties(side: Side) -> Parties {
    match side {
        Side::Client => Parties {
            them: "the server",
            ours: "this client's certificate",
            theirs: "the server's certificate",
        },
        Side::Server => Parties {
            them: "the client",
            ours: "this server's certificate",
            theirs: "the client's certificate",
        },
    }
}

/// An alert the peer sent: it gave up on the handshake (or the session) for this reason.
/// `has_cert` says whether this side presented a certificate of its own (a client without
/// `--cert` cannot have had it rejected).
pub fn received(alert: A, side: Side, has_cert: bool) -> HandshakeError {
    if let Some(found) = received_about_certificates(alert, side, has_cert) {
        return found;
    }
    let Parties { them, .. } = parties(side);
    let (cause, message) = match alert {
        A::CloseNotify | A::UserCanceled => (
            cause::CLOSED,
            format!("{them} closed the session before the handshake finished"),
        ),
        A::HandshakeFailure | A::InsufficientSecurity => (
            cause::NO_COMMON,
            format!(
                "{them} found no cipher suite, key exchange group or signature scheme it shares \
                 with this side; check that both allow the same TLS versions (--tls-version) \
                 and current algorithms"
            ),
        ),
        A::ProtocolVersion | A::InappropriateFallback => (
            cause::NO_VERSION,
            format!(
                "{them} supports no TLS version in common with this side; make --tls-version \
                 agree on both sides"
            ),
        ),
        A::NoApplicationProtocol => (
            cause::NO_ALPN,
            format!(
                "{them} supports none of the ALPN protocols offered; make --alpn agree on both \
                 sides"
            ),
        ),
        A::UnrecognisedName => (
            cause::WRONG_NAME,
            format!(
                "{them} has no certificate for the name this side asked for; connect with a \
                 name it serves, or pass --server-name with one"
            ),
        ),
        A::InternalError => (
            cause::PEER_FAILED,
            format!("{them} failed with an internal error of its own; its log may say more"),
        ),
        A::BadRecordMac | A::DecryptionFailed => (
            cause::PROTOCOL,
            format!(
                "{them} received data it could not decrypt: something on the way altered the \
                 traffic"
            ),
        ),
        A::EncryptedClientHelloRequired => (
            cause::PROTOCOL,
            format!("{them} requires Encrypted Client Hello, which echotool does not use"),
        ),
        other => (
            cause::PROTOCOL,
            format!(
                "{them} ended the session with the TLS alert {}: it found this side's TLS \
                 messages malformed or out of place (a faulty implementation, or something on \
                 the way altering the traffic)",
                describe(other)
            ),
        ),
    };
    HandshakeError::new(cause, message)
}

/// Alerts about certificates, from the side whose certificate (or lack of one) was judged.
fn received_about_certificates(alert: A, side: Side, has_cert: bool) -> Option<HandshakeError> {
    let Parties { them, ours, .. } = parties(side);
    let fix = match side {
        Side::Client => {
            "--client-ca with the CA that issued it, or this client needs --cert and --key \
             of a certificate from the CA the server trusts"
        }
        Side::Server => {
            "--ca with the CA that issued it (certs/ca.pem for `echotool certs`), or --pin \
             with its fingerprint"
        }
    };
    let (cause, message) = match alert {
        A::CertificateRequired | A::NoCertificate => (
            cause::NO_CLIENT_CERT,
            "the server requires a client certificate: pass --cert and --key (echotool certs \
             writes certs/client.pem and certs/client-key.pem)"
                .to_string(),
        ),
        A::HandshakeFailure if side == Side::Client && !has_cert => (
            cause::NO_COMMON,
            "the server ended the handshake; it may require a client certificate (pass --cert \
             and --key) or share no cipher suite or TLS version with this client"
                .to_string(),
        ),
        A::UnknownCA => (
            cause::UNTRUSTED,
            format!(
                "{them} rejected {ours}: it was not issued by a CA {them} trusts; {them} needs \
                 {fix}"
            ),
        ),
        A::CertificateExpired => (
            cause::EXPIRED,
            format!(
                "{them} rejected {ours} as expired or not valid yet (TLS has one alert for \
                 both): check its dates (`openssl x509 -noout -dates -in FILE`) and the clocks \
                 of both machines; renew it with `echotool certs --force`"
            ),
        ),
        A::BadCertificate => match side {
            Side::Server => (
                cause::WRONG_NAME_OR_BAD,
                "the client rejected this server's certificate as bad: most often it does not \
                 hold the name the client connected to (rustls clients such as echotool send \
                 this alert for a wrong name; the client can pass --server-name with a name it \
                 holds, or reissue it with `echotool certs --san NAME`); other clients also \
                 send it for a certificate they cannot parse"
                    .to_string(),
            ),
            Side::Client => (
                cause::BAD_CERT,
                "the server rejected this client's certificate as bad (it cannot parse it, or \
                 finds an extension in it it does not understand); issue a new one, e.g. with \
                 `echotool certs`"
                    .to_string(),
            ),
        },
        _ => return received_about_certificate_use(alert, side),
    };
    Some(HandshakeError::new(cause, message))
}

/// Alerts about a certificate that was understood but not accepted for this use.
fn received_about_certificate_use(alert: A, side: Side) -> Option<HandshakeError> {
    let Parties { them, ours, .. } = parties(side);
    let (cause, message) = match alert {
        A::UnsupportedCertificate => (
            cause::NOT_FOR_USE,
            format!(
                "{them} rejected {ours}: it is not issued for this use (its extended key usage \
                 lacks {} authentication); issue one for it, e.g. with `echotool certs`",
                match side {
                    Side::Client => "client",
                    Side::Server => "server",
                }
            ),
        ),
        A::CertificateRevoked => (
            cause::REVOKED,
            format!("{them} says {ours} has been revoked by its issuer; get a new one"),
        ),
        A::CertificateUnknown | A::BadCertificateStatusResponse | A::CertificateUnobtainable => (
            cause::REJECTED,
            format!(
                "{them} rejected {ours} for a reason TLS has no specific alert for (rustls \
                 peers send this for a certificate that does not match a --pin, or for a CA \
                 certificate used as a {} certificate that they were not told to trust); {}",
                match side {
                    Side::Client => "client",
                    Side::Server => "server",
                },
                match side {
                    Side::Client => "the server's log names the reason",
                    Side::Server => "the client's own error message names the reason",
                }
            ),
        ),
        A::AccessDenied => (
            cause::UNTRUSTED,
            format!(
                "{them} recognised {ours} but refused access (a decision of its own, such as a \
                 fingerprint pin that does not match)"
            ),
        ),
        A::DecryptError => (
            cause::SIGNATURE,
            format!(
                "{them} rejected {ours}: a signature did not verify, so it was probably issued \
                 by another CA with the same name as the one {them} trusts (say, by a second \
                 run of `echotool certs`), or this side's key does not belong to it"
            ),
        ),
        _ => return None,
    };
    Some(HandshakeError::new(cause, message))
}

/// An alert this side sent: its own TLS stack refused the peer for this reason. QUIC reports
/// failures this way (quinn gives the alert and rustls's raw text, nothing else).
pub fn sent(alert: A, side: Side) -> HandshakeError {
    let Parties { them, theirs, .. } = parties(side);
    let trust = match side {
        Side::Client => {
            "pass --ca with the CA that issued it (certs/ca.pem for `echotool certs`), or --pin"
        }
        Side::Server => "give the client a certificate from the CA in --client-ca",
    };
    let (cause, message) = match alert {
        A::CertificateRequired | A::NoCertificate => (
            cause::NO_CLIENT_CERT,
            "the client sent no certificate, and this server requires one (--client-ca); the \
             client must pass --cert and --key"
                .to_string(),
        ),
        A::UnknownCA => (
            cause::UNTRUSTED,
            format!("{theirs} was not issued by a CA trusted here; {trust}"),
        ),
        A::CertificateExpired => (
            cause::EXPIRED,
            format!(
                "{theirs} has expired or is not valid yet; check its dates and the clocks of \
                 both machines"
            ),
        ),
        A::BadCertificate => match side {
            Side::Client => (
                cause::WRONG_NAME_OR_BAD,
                "the server's certificate is not valid for the name this client asked for \
                 (pass --server-name with a name it holds), or cannot be parsed"
                    .to_string(),
            ),
            Side::Server => (
                cause::BAD_CERT,
                "the client's certificate cannot be parsed, or carries a critical extension \
                 this server does not understand"
                    .to_string(),
            ),
        },
        A::UnsupportedCertificate => (
            cause::NOT_FOR_USE,
            format!("{theirs} is not issued for this use (its extended key usage)"),
        ),
        A::CertificateRevoked => (cause::REVOKED, format!("{theirs} has been revoked")),
        A::CertificateUnknown => (
            cause::REJECTED,
            format!(
                "{theirs} was rejected: for example a CA certificate (CA:TRUE) used as {them}'s \
                 own certificate, which is trusted only if {} names that very certificate",
                match side {
                    Side::Client => "--ca",
                    Side::Server => "--client-ca",
                }
            ),
        ),
        A::AccessDenied => (
            cause::UNTRUSTED,
            format!("{theirs} does not match the pinned fingerprint (--pin)"),
        ),
        A::DecryptError => (
            cause::SIGNATURE,
            format!(
                "a signature from {them} did not verify: {theirs} was issued by another CA with \
                 the same name as the trusted one, or {them} does not hold its key"
            ),
        ),
        other => return sent_about_the_handshake(other, side),
    };
    HandshakeError::new(cause, message)
}

/// Alerts this side sent about the handshake itself: nothing in common, or a broken one.
fn sent_about_the_handshake(alert: A, side: Side) -> HandshakeError {
    let Parties { them, .. } = parties(side);
    let (cause, message) = match alert {
        A::NoApplicationProtocol => (
            cause::NO_ALPN,
            format!(
                "{them} offered no ALPN protocol accepted here; make --alpn agree on both sides"
            ),
        ),
        A::ProtocolVersion => (
            cause::NO_VERSION,
            format!("{them} offered no TLS version accepted here; make --tls-version agree"),
        ),
        A::HandshakeFailure | A::InsufficientSecurity => (
            cause::NO_COMMON,
            format!(
                "{them} offered no cipher suite, key exchange group or signature scheme accepted \
                 here"
            ),
        ),
        A::InternalError => (
            cause::INTERNAL,
            "this side's TLS failed with an internal error".to_string(),
        ),
        other => (
            cause::PROTOCOL,
            format!(
                "{them} sent TLS messages that are malformed or out of place (this side ended \
                 the handshake with the alert {}): a faulty implementation, or something on the \
                 way altering the traffic",
                describe(other)
            ),
        ),
    };
    HandshakeError::new(cause, message)
}
