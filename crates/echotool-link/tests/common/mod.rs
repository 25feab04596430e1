//! Helpers shared by the link's integration tests: the root check, sockets made inside a
//! side (and proven to be there), and a UDP echo peer on the server side.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use echotool_link::{Link, LinkOptions, LinkSpec, Side};

/// Whether the test can make namespaces; prints why it skips when not.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipping {test}: the link needs root (CAP_NET_ADMIN); run the tests as root");
    }
    root
}

/// Starts a link or fails the test with the error.
pub fn link(spec: &str, options: LinkOptions) -> Link {
    let spec = LinkSpec::parse(spec).unwrap_or_else(|e| panic!("{e}"));
    Link::start(&spec, options).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `make` inside `side`, having checked that the thread really is there: a socket made
/// in the host's namespace would send the link's addresses out of the host's default route.
pub fn inside<T>(side: &Side, make: impl FnOnce() -> T) -> T {
    let guard = side.enter().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        side.contains_current_thread(),
        "setns did not move the thread"
    );
    let made = make();
    drop(guard);
    made
}

/// A UDP socket bound in `side` on its IPv4 (or IPv6) address.
pub fn udp(side: &Side, ipv6: bool) -> UdpSocket {
    inside(side, || {
        UdpSocket::bind(side.addr(ipv6, 0)).expect("bind UDP in the side")
    })
}

/// A TCP listener in `side`.
pub fn tcp_listener(side: &Side, ipv6: bool) -> TcpListener {
    inside(side, || {
        TcpListener::bind(side.addr(ipv6, 0)).expect("listen in the side")
    })
}

/// A TCP connection from `side` to `to`.
pub fn tcp_connect(side: &Side, to: SocketAddr) -> TcpStream {
    inside(side, || {
        TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect across the link")
    })
}

/// An echo on `socket` that answers every datagram until `deadline` passes.
pub fn udp_echo(socket: UdpSocket, deadline: Instant) -> JoinHandle<u64> {
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("set timeout");
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut answered = 0;
        while Instant::now() < deadline {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                if buf[..n] == *b"stop" {
                    break;
                }
                let _ = socket.send_to(&buf[..n], from);
                answered += 1;
            }
        }
        answered
    })
}

/// Sends `count` numbered pings, each after the previous answer or `wait`; returns the round
/// trip of each answered one.
pub fn ping(client: &UdpSocket, to: SocketAddr, count: u32, wait: Duration) -> Vec<Duration> {
    client.set_read_timeout(Some(wait)).expect("set timeout");
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    for seq in 0..count {
        let sent = Instant::now();
        client.send_to(&seq.to_be_bytes(), to).expect("send ping");
        loop {
            match client.recv_from(&mut buf) {
                Ok((4, _)) if buf[..4] == seq.to_be_bytes() => {
                    rtts.push(sent.elapsed());
                    break;
                }
                Ok(_) => continue, // a late answer to an earlier ping
                Err(_) => break,   // lost: the wait is over
            }
        }
    }
    rtts
}

/// The median of some durations.
pub fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}
