//! The UDP server's decision for each datagram it receives: echo it, drop it because its
//! source port is a reflection port, or drop it because its source is over
//! `--udp-rate-limit` ([`echotool_udp::guard::judge`], the very function the receive loop
//! calls). The fuzzer plays datagrams from chosen or spoofed sources at chosen times, floods
//! of distinct sources included.
//!
//! Beyond "no panic": reflection ports are always dropped and nothing else is without a
//! limiter; a source never gets more echoes than its token bucket allows (a second's worth,
//! then the rate); a source quiet for a second gets its next datagram echoed; the table of
//! sources never grows beyond its bound (made small here, so that floods fill it).

#![no_main]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use echotool_udp::guard::{RateLimiter, Verdict, is_reflection_port, judge};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Session {
    /// `--udp-rate-limit`, when set (0 means none).
    rate: u32,
    /// How many sources the limiter remembers (the server's 65 536 would make every flood
    /// slow; the bound is the same code at any size).
    capacity: u8,
    events: Vec<Event>,
}

#[derive(Arbitrary, Debug)]
enum Event {
    /// One datagram, from one of a few sources or any address, some time after the last.
    Datagram {
        source: Source,
        port: u16,
        after_us: u32,
    },
    /// The clock of another worker thread, slightly behind: `Instant::now()` read before
    /// another worker took the lock.
    Behind { us: u16 },
    /// Datagrams from this many distinct spoofed sources at once.
    Flood { sources: u32 },
}

#[derive(Arbitrary, Debug)]
enum Source {
    Few(u8),
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Source {
    fn ip(&self) -> IpAddr {
        match self {
            Source::Few(n) => IpAddr::V4(Ipv4Addr::new(127, 0, 0, n % 4)),
            Source::V4(b) => IpAddr::V4(Ipv4Addr::from(*b)),
            Source::V6(b) => {
                let ip = Ipv6Addr::from(*b);
                // Clear of the floods' prefix, whose datagrams the model below does not count.
                match ip.segments()[..3] == FLOOD_PREFIX {
                    true => IpAddr::V6(Ipv6Addr::from(u128::from(ip) ^ (1 << 127))),
                    false => IpAddr::V6(ip),
                }
            }
        }
    }
}

/// Where flooding sources come from: fd00:f100:d::/48.
const FLOOD_PREFIX: [u16; 3] = [0xfd00, 0xf100, 0x000d];

/// The `n`th source of flood number `flood`.
fn flooding(flood: u32, n: u32) -> IpAddr {
    let [a, b, c] = FLOOD_PREFIX.map(u128::from);
    let bits = (a << 112) | (b << 96) | (c << 80) | (u128::from(flood) << 32) | u128::from(n);
    IpAddr::V6(Ipv6Addr::from(bits))
}

/// What a source has had echoed since it was first seen.
struct Seen {
    first: Instant,
    last: Instant,
    echoed: u64,
}

/// The most sources one flood sends from: enough to fill the table past its bound.
const MAX_FLOOD: u32 = 512;

fuzz_target!(|session: Session| {
    let capacity = usize::from(session.capacity).max(1);
    let limiter = (session.rate > 0).then(|| RateLimiter::with_capacity(session.rate, capacity));
    let rate = f64::from(session.rate);
    let start = Instant::now();
    let mut now = start;
    let mut seen: HashMap<IpAddr, Seen> = HashMap::new();
    let mut floods = 0u32;
    for event in session.events {
        match event {
            Event::Datagram {
                source,
                port,
                after_us,
            } => {
                now += Duration::from_micros(u64::from(after_us));
                let peer = SocketAddr::new(source.ip(), port);
                let room = limiter.as_ref().is_none_or(|l| l.tracked() < capacity);
                let verdict = judge(peer, limiter.as_ref(), || now);
                let judged = Judged {
                    verdict,
                    peer,
                    now,
                    room,
                };
                check(judged, rate, limiter.is_some(), &mut seen);
            }
            Event::Behind { us } => {
                let at = now
                    .checked_sub(Duration::from_micros(u64::from(us)))
                    .unwrap_or(now);
                let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5555);
                let _ = judge(peer, limiter.as_ref(), || at);
                seen.remove(&peer.ip());
            }
            Event::Flood { sources } => {
                for n in 0..sources.min(MAX_FLOOD) {
                    let peer = SocketAddr::new(flooding(floods, n), 4444);
                    let _ = judge(peer, limiter.as_ref(), || now);
                }
                floods += 1;
            }
        }
        if let Some(limiter) = &limiter {
            let tracked = limiter.tracked();
            assert!(
                tracked <= capacity,
                "{tracked} sources tracked, at most {capacity}"
            );
        }
    }
});

/// One datagram and what became of it.
struct Judged {
    verdict: Verdict,
    peer: SocketAddr,
    now: Instant,
    /// The limiter had room for another source: none is refused for lack of it.
    room: bool,
}

fn check(judged: Judged, rate: f64, limited: bool, seen: &mut HashMap<IpAddr, Seen>) {
    let Judged {
        verdict,
        peer,
        now,
        room,
    } = judged;
    if is_reflection_port(peer.port()) {
        assert_eq!(verdict, Verdict::Reflection, "{peer}");
        return;
    }
    if !limited {
        assert_eq!(verdict, Verdict::Echo, "{peer}");
        return;
    }
    let entry = seen.entry(peer.ip()).or_insert(Seen {
        first: now,
        last: now,
        echoed: 0,
    });
    if room && now.duration_since(entry.last) >= Duration::from_secs(1) {
        assert_eq!(verdict, Verdict::Echo, "{peer} quiet for a second");
    }
    entry.last = now;
    if verdict == Verdict::Echo {
        entry.echoed += 1;
        // A full bucket, then the rate; one more for the rounding of f64 tokens.
        let allowed = rate + rate * now.duration_since(entry.first).as_secs_f64() + 1.0;
        assert!(
            entry.echoed as f64 <= allowed,
            "{peer}: {} echoes in {:?} at {rate}/s",
            entry.echoed,
            now.duration_since(entry.first)
        );
    }
}
