//! Endpoints as users write them after `--listen`, `connect`, `--target` and `listen =`:
//! `127.0.0.1:5555`, `[::1]:7`, `:6000`, `tls://[fe80::1%lo]:5556`.
//!
//! Beyond "no panic": an endpoint that parses, written back in the canonical form (scheme,
//! bracketed IPv6, port, path), parses to the same endpoint; the address it fills in displays as
//! `PROTO://HOST:PORT` that parses to the same host and port; a socket address made from it keeps the
//! port.

#![no_main]

use echotool_core::{Endpoint, HostPort};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(endpoint) = Endpoint::parse(text) else {
        return;
    };
    // Display writes it back: scheme, bracketed IPv6, port, and any path (`ws://h:p/echo`,
    // `unix:///run/e.sock`); a writer of our own here once forgot the path.
    let canonical = endpoint.to_string();
    match Endpoint::parse(&canonical) {
        Ok(again) => assert_eq!(again, endpoint, "{text:?} written back as {canonical:?}"),
        Err(e) => panic!("{text:?} written back as {canonical:?} does not parse: {e}"),
    }
    if endpoint.is_socket_path() {
        return;
    }
    let addr = endpoint.fill(&HostPort::new("127.0.0.1", 5555));
    // Shown after a scheme, as echotool writes addresses (`{proto}://{addr}`): without one, a
    // URL path holding "://" (`h:1//://x`) would read as a scheme.
    let shown = format!("{}://{addr}", endpoint.proto.as_deref().unwrap_or("tcp"));
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
