//! Certificate pins as `connect --pin` takes them: `sha256:HEX`, colon-separated hex in any
//! case, or `openssl x509 -fingerprint -sha256` output.
//!
//! Beyond "no panic": a pin that parses, written back as `sha256:` and lowercase hex, parses
//! to the same 32 bytes.

#![no_main]

use echotool_secure::certs::parse_fingerprint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(bytes) = parse_fingerprint(text) else {
        return;
    };
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let again = parse_fingerprint(&format!("sha256:{hex}"))
        .unwrap_or_else(|e| panic!("{text:?} as sha256:{hex}: {e}"));
    assert_eq!(again, bytes, "{text:?}");
});
