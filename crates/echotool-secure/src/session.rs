//! One line about an established TLS session, for `-v`.

use rustls::{CipherSuite, NamedGroup};

/// `TLS version TLS 1.3, cipher suite TLS13_AES_128_GCM_SHA256, key exchange X25519MLKEM768,
/// ALPN echo`: what was negotiated, as `openssl s_client` reports it (its "Server Temp Key" is
/// the key exchange group).
pub fn describe_session(conn: &rustls::CommonState) -> String {
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
        .unwrap_or_else(|| "unknown".into());
    let negotiated = describe_negotiated(
        conn.negotiated_cipher_suite().map(|s| s.suite()),
        conn.negotiated_key_exchange_group().map(|g| g.name()),
        conn.alpn_protocol(),
    );
    format!("TLS version {version}, {negotiated}")
}

/// `cipher suite TLS13_AES_128_GCM_SHA256, key exchange X25519MLKEM768, ALPN echo`: the part of
/// [`describe_session`]'s line that QUIC (TLS 1.3 inside) reports too, "unknown" for what was
/// not negotiated and "none" for no ALPN.
pub fn describe_negotiated(
    suite: Option<CipherSuite>,
    group: Option<NamedGroup>,
    alpn: Option<&[u8]>,
) -> String {
    let unknown = || "unknown".to_string();
    let suite = suite.map(|s| format!("{s:?}")).unwrap_or_else(unknown);
    let group = group.map(|g| format!("{g:?}")).unwrap_or_else(unknown);
    let alpn = alpn
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "none".into());
    format!("cipher suite {suite}, key exchange {group}, ALPN {alpn}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_negotiated_reads_as_openssl_names_it() {
        assert_eq!(
            describe_negotiated(
                Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
                Some(NamedGroup::X25519MLKEM768),
                Some(b"echo"),
            ),
            "cipher suite TLS13_AES_128_GCM_SHA256, key exchange X25519MLKEM768, ALPN echo"
        );
        assert_eq!(
            describe_negotiated(None, None, None),
            "cipher suite unknown, key exchange unknown, ALPN none"
        );
    }
}
