//! The link's own cost, as figures: what a round trip costs through the link at `delay=0`
//! compared with two sockets in one namespace, how late the forwarder delivers against its
//! schedule at `delay=1ms`, and how many packets per second it forwards.
//!
//! `cargo run --release -p echotool-link --example link_cost` (as root). The crate docs
//! record this machine's figures.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use echotool_link::{Link, LinkOptions, LinkSpec, Side};

const PINGS: usize = 5000;

fn main() {
    if let Err(err) = echotool_link::unprivileged_setup() {
        eprintln!("error: {err}");
        std::process::exit(1);
    }
    let link = |spec: &str| {
        let spec = LinkSpec::parse(spec).unwrap_or_else(|e| fail(e));
        Link::start(&spec, LinkOptions::default()).unwrap_or_else(|e| fail(e))
    };
    let direct = link("none");
    let server = direct.server();
    let (a, b) = (bind(server, server.v4()), bind(server, server.v4()));
    report("one namespace, loopback", &rtts(&a, &b), Duration::ZERO);
    let (c, s) = (
        bind(direct.client(), direct.client().v4()),
        bind(server, server.v4()),
    );
    let through = rtts(&c, &s);
    report("through the link, delay=0", &through, Duration::ZERO);
    drop((a, b, c, s, direct));

    let delayed = link("delay=1ms");
    let (c, s) = (
        bind(delayed.client(), delayed.client().v4()),
        bind(delayed.server(), delayed.server().v4()),
    );
    report(
        "through the link, delay=1ms",
        &rtts(&c, &s),
        Duration::from_millis(2),
    );
    let late = delayed.stats().lateness;
    println!(
        "forwarder lateness at delay=1ms   p50 {:?}  p99 {:?}  max {:?}  ({} packets)",
        late.quantile(0.5),
        late.quantile(0.99),
        late.max(),
        late.count()
    );
    drop((c, s, delayed));

    let flood = link("none");
    for size in [64, 1400] {
        forwarding_rate(&flood, size);
    }
}

fn fail(err: impl std::fmt::Display) -> ! {
    eprintln!("error: {err}");
    std::process::exit(1)
}

fn bind(side: &Side, ip: impl Into<std::net::IpAddr>) -> UdpSocket {
    let _inside = side.enter().unwrap_or_else(|e| fail(e));
    assert!(side.contains_current_thread());
    let socket = UdpSocket::bind(SocketAddr::new(ip.into(), 0)).unwrap_or_else(|e| fail(e));
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap_or_else(|e| fail(e));
    socket
}

/// Round trips of `PINGS` sequential pings from `client` to an echo on `server`.
fn rtts(client: &UdpSocket, server: &UdpSocket) -> Vec<Duration> {
    let server = server.try_clone().unwrap_or_else(|e| fail(e));
    let to = server.local_addr().unwrap_or_else(|e| fail(e));
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..PINGS + 100 {
            match server.recv_from(&mut buf) {
                Ok((n, from)) => drop(server.send_to(&buf[..n], from)),
                Err(_) => break,
            }
        }
    });
    let mut out = Vec::with_capacity(PINGS);
    let mut buf = [0u8; 64];
    for i in 0..PINGS + 100 {
        let sent = Instant::now();
        client.send_to(&[1; 32], to).unwrap_or_else(|e| fail(e));
        if client.recv_from(&mut buf).is_ok() && i >= 100 {
            out.push(sent.elapsed()); // the first 100 warm up
        }
    }
    let _ = echo.join();
    out
}

fn report(what: &str, rtts: &[Duration], floor: Duration) {
    let mut sorted = rtts.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if floor.is_zero() {
        println!(
            "{what:32} rtt p50 {:7.1} µs  p99 {:7.1} µs  ({} pings)",
            us(at(0.5)),
            us(at(0.99)),
            sorted.len()
        );
    } else {
        println!(
            "{what:32} rtt p50 {:7.1} µs  p99 {:7.1} µs  above 2 x delay: p50 {:5.1} µs, \
             p99 {:5.1} µs, min {:5.1} µs",
            us(at(0.5)),
            us(at(0.99)),
            us(at(0.5) - floor),
            us(at(0.99) - floor),
            us(sorted[0].saturating_sub(floor))
        );
    }
}

/// Floods the link client to server with `size`-byte datagrams for two seconds and counts
/// what arrives.
fn forwarding_rate(link: &Link, size: usize) {
    let receiver = bind(link.server(), link.server().v4());
    let to = receiver.local_addr().unwrap_or_else(|e| fail(e));
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap_or_else(|e| fail(e));
    let sender = bind(link.client(), link.client().v4());
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let payload = vec![7u8; size];
            while !stop.load(Ordering::Relaxed) {
                let _ = sender.send_to(&payload, to);
            }
        })
    };
    let mut buf = vec![0u8; 2048];
    let start = Instant::now();
    let mut received = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        if receiver.recv_from(&mut buf).is_ok() {
            received += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = flood.join();
    let pps = received as f64 / secs;
    let mbit = pps * (size + 28) as f64 * 8.0 / 1e6;
    println!(
        "forwarding, {size:4}-byte payloads        {:9.0} packets/s  {:7.0} Mbit/s of IP",
        pps, mbit
    );
}
