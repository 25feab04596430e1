//! The causes failed handshakes are counted by: a few words that read well after a number
//! ("2 untrusted certificate").

/// Plaintext or garbage where TLS was expected.
pub const NOT_TLS: &str = "not TLS";
/// A certificate not issued by a trusted CA, or not the pinned one.
pub const UNTRUSTED: &str = "untrusted certificate";
/// A certificate outside its validity period (TLS has one alert for both ends).
pub const EXPIRED: &str = "certificate expired or not yet valid";
/// A certificate without the name asked for.
pub const WRONG_NAME: &str = "wrong name";
/// The `bad_certificate` alert: a wrong name from rustls peers, else an unparsable one.
pub const WRONG_NAME_OR_BAD: &str = "wrong name or bad certificate";
/// A certificate that cannot be parsed or used at all.
pub const BAD_CERT: &str = "unusable certificate";
/// A certificate whose extended key usage forbids this use.
pub const NOT_FOR_USE: &str = "certificate not for this use";
/// A revoked certificate.
pub const REVOKED: &str = "certificate revoked";
/// A certificate refused for a reason TLS has no alert for.
pub const REJECTED: &str = "rejected certificate";
/// A signature that does not verify.
pub const SIGNATURE: &str = "bad signature";
/// A client that sent no certificate to a server that requires one.
pub const NO_CLIENT_CERT: &str = "no client certificate";
/// A server that sent no certificate.
pub const NO_SERVER_CERT: &str = "no server certificate";
/// No TLS version both sides allow.
pub const NO_VERSION: &str = "no common protocol version";
/// No cipher suite, key exchange group or signature scheme both sides allow.
pub const NO_COMMON: &str = "no common algorithms";
/// No ALPN protocol both sides allow.
pub const NO_ALPN: &str = "no common ALPN";
/// The peer went away before the handshake finished.
pub const CLOSED: &str = "closed during handshake";
/// Malformed or misplaced TLS messages from a TLS peer.
pub const PROTOCOL: &str = "protocol error";
/// The peer failed on its own.
pub const PEER_FAILED: &str = "peer failed";
/// This side failed on its own.
pub const INTERNAL: &str = "internal error";
