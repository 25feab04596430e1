//! Endpoints as users write them after `--listen`, `connect`, `--target` and `listen =`:
//! `127.0.0.1:5555`, `[::1]:7`, `:6000`, `tls://[fe80::1%lo]:5556`.
//!
//! Beyond "no panic": an endpoint that parses, written back in the canonical form (scheme,
//! bracketed IPv6, port), parses to the same endpoint; the address it fills in displays as
//! `HOST:PORT` that parses to the same host and port; a socket address made from it keeps the
//! port.

#![no_main]

use echotool_core::{Endpoint, HostPort};
use libfuzzer_sys::fuzz_target;

/// The endpoint written back: `[proto://][host][:port]`, brackets around IPv6 literals.
fn written(e: &Endpoint) -> String {
    let mut text = String::new();
    if let Some(proto) = &e.proto {
        text.push_str(proto);
        text.push_str("://");
    }
    match &e.host {
        Some(host) if host.contains(':') => text.push_str(&format!("[{host}]")),
        Some(host) => text.push_str(host),
        None => {}
    }
    if let Some(port) = e.port {
        text.push_str(&format!(":{port}"));
    }
    text
}

fuzz_target!(|text: &str| {
    let Ok(endpoint) = Endpoint::parse(text) else {
        return;
    };
    let canonical = written(&endpoint);
    match Endpoint::parse(&canonical) {
        Ok(again) => assert_eq!(again, endpoint, "{text:?} written back as {canonical:?}"),
        Err(e) => panic!("{text:?} written back as {canonical:?} does not parse: {e}"),
    }
    if endpoint.is_socket_path() {
        return;
    }
    let addr = endpoint.fill(&HostPort::new("127.0.0.1", 5555));
    let shown = addr.to_string();
    match Endpoint::parse(&shown) {
        Ok(again) => {
            assert_eq!(again.host.as_deref(), Some(addr.host.as_str()), "{shown}");
            assert_eq!(again.port, Some(addr.port), "{shown}");
        }
        Err(e) => panic!("{text:?} fills in as {shown:?}, which does not parse: {e}"),
    }
    if let Some(socket) = addr.socket_addr() {
        assert_eq!(socket.port(), addr.port);
    }
});
