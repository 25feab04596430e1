//! One line about an established TLS session, for `-v`.

/// `TLS version TLS 1.3, cipher suite TLS13_AES_128_GCM_SHA256, key exchange X25519MLKEM768,
/// ALPN echo`: what was negotiated, as `openssl s_client` reports it (its "Server Temp Key" is
/// the key exchange group).
pub fn describe_session(conn: &rustls::CommonState) -> String {
    let version = conn
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
        .unwrap_or_else(|| "unknown".into());
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    let group = conn
        .negotiated_key_exchange_group()
        .map(|g| format!("{:?}", g.name()))
        .unwrap_or_else(|| "unknown".into());
    let alpn = conn
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| "none".into());
    format!("TLS version {version}, cipher suite {suite}, key exchange {group}, ALPN {alpn}")
}
