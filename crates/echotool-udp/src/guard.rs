//! What the server refuses to echo: datagrams that could start a loop between two services,
//! and senders over their rate. [`judge`] is the whole decision for one datagram, a function
//! of its source, the limiter and the clock, so that the receive loop and the fuzz target
//! (`fuzz/`) run the same code.

use echotool_core::lock_ignoring_poison;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the server does with one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it back.
    Echo,
    /// Drop it: it came from one of the [`REFLECTION_PORTS`].
    Reflection,
    /// Drop it: its source address is over the rate limit.
    RateLimited,
}

/// Decides what to do with a datagram from `peer`. The reflection guard comes first, so a
/// datagram it drops spends none of its source's tokens; `now` is read only when there is a
/// limiter, which keeps the clock off the path of a server without one.
#[inline]
pub fn judge(
    peer: SocketAddr,
    limiter: Option<&RateLimiter>,
    now: impl FnOnce() -> Instant,
) -> Verdict {
    if is_reflection_port(peer.port()) {
        return Verdict::Reflection;
    }
    match limiter {
        Some(limiter) if !limiter.allow(peer.ip(), now()) => Verdict::RateLimited,
        _ => Verdict::Echo,
    }
}

/// Source ports whose datagrams are never answered: 0 (invalid), and echo (7), daytime (13),
/// quote of the day (17), chargen (19) and time (37), which answer anything they receive. An
/// echo to one of them would be answered, echoed again, and so on forever; a spoofed source
/// port there turns an echo server into a reflector.
pub const REFLECTION_PORTS: [u16; 6] = [0, 7, 13, 17, 19, 37];

/// Whether a datagram from `port` must be dropped.
pub fn is_reflection_port(port: u16) -> bool {
    REFLECTION_PORTS.contains(&port)
}

/// Bounds the table of senders so a flood of spoofed sources cannot grow memory without end.
pub const MAX_TRACKED_SOURCES: usize = 65_536;

/// How long a full table of senders waits between two sweeps for sources gone quiet, so that a
/// flood of new sources costs one sweep per pause rather than one per datagram.
const SWEEP_PAUSE: Duration = Duration::from_millis(100);

/// A per-source-address token bucket: each source may send `rate` datagrams a second, with
/// bursts of up to one second's worth.
///
/// At most `capacity` sources are remembered. When the table is full, sources quiet for a
/// second are forgotten (their buckets would be full again anyway); if none is, the table is
/// full of sources heard within the last second, a flood of distinct (likely spoofed)
/// addresses, and a new source's datagrams are dropped until there is room: the sources
/// already known keep their service, and memory stays bounded.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    /// The most source addresses remembered at once.
    capacity: usize,
    senders: Mutex<Senders>,
}

/// The remembered sources, and when the table may next be swept.
#[derive(Debug, Default)]
struct Senders {
    buckets: HashMap<IpAddr, Bucket>,
    next_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Senders {
    /// Makes room for one more source by forgetting those quiet for a second, at most once per
    /// [`SWEEP_PAUSE`]; whether there is room now.
    fn make_room(&mut self, capacity: usize, now: Instant) -> bool {
        if self.next_sweep.is_some_and(|next| now < next) {
            return false;
        }
        self.next_sweep = Some(now + SWEEP_PAUSE);
        self.buckets
            .retain(|_, b| now.duration_since(b.updated) < Duration::from_secs(1));
        self.buckets.len() < capacity
    }
}

impl RateLimiter {
    /// A limiter allowing `per_second` datagrams per source address.
    pub fn new(per_second: u32) -> Self {
        Self::with_capacity(per_second, MAX_TRACKED_SOURCES)
    }

    /// A limiter allowing `per_second` datagrams per source address that remembers at most
    /// `capacity` sources: [`MAX_TRACKED_SOURCES`] in the server, a few in the fuzz target so
    /// that its floods fill the table quickly.
    pub fn with_capacity(per_second: u32, capacity: usize) -> Self {
        RateLimiter {
            rate: f64::from(per_second.max(1)),
            capacity: capacity.max(1),
            senders: Mutex::new(Senders::default()),
        }
    }

    /// How many source addresses it remembers now.
    pub fn tracked(&self) -> usize {
        lock_ignoring_poison(&self.senders).buckets.len()
    }

    /// Whether a datagram from `source` arriving at `now` may be echoed.
    pub fn allow(&self, source: IpAddr, now: Instant) -> bool {
        let mut senders = lock_ignoring_poison(&self.senders);
        if senders.buckets.len() >= self.capacity
            && !senders.buckets.contains_key(&source)
            && !senders.make_room(self.capacity, now)
        {
            return false;
        }
        let bucket = senders.buckets.entry(source).or_insert(Bucket {
            tokens: self.rate,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.rate);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_exactly_the_looping_services() {
        for port in [0, 7, 13, 17, 19, 37] {
            assert!(is_reflection_port(port), "{port}");
        }
        for port in [1, 6, 8, 53, 123, 1024, 5555, 65535] {
            assert!(!is_reflection_port(port), "{port}");
        }
    }

    #[test]
    fn rate_limit_allows_a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        let allowed = (0..25).filter(|_| limiter.allow(a, t0)).count();
        assert_eq!(allowed, 10, "a one-second burst");
        assert!(limiter.allow(b, t0), "other sources are not affected");
        assert!(!limiter.allow(a, t0 + Duration::from_millis(50)));
        assert!(
            limiter.allow(a, t0 + Duration::from_millis(150)),
            "refilled at 10/s"
        );
    }

    /// Found by the udp_guard fuzz target (minimised: a rate of 2 684 354 090, a table of 159
    /// sources, one flood of 214 distinct ones at once): the table grew to 214, since a full
    /// table only forgot sources quiet for a second and then took the new one anyway; at the
    /// server's 65 536 it also swept the whole table for every new source of a flood.
    #[test]
    fn a_flood_of_new_sources_never_grows_the_table_past_its_bound() {
        let limiter = RateLimiter::with_capacity(2_684_354_090, 159);
        let source = |n: u32| IpAddr::from(std::net::Ipv6Addr::from(u128::from(n)));
        let t0 = Instant::now();
        let echoed = (0..214).filter(|&n| limiter.allow(source(n), t0)).count();
        assert_eq!((echoed, limiter.tracked()), (159, 159));
        let t1 = t0 + Duration::from_millis(500);
        assert!(
            limiter.allow(source(3), t1),
            "known sources keep their service"
        );
        assert!(
            !limiter.allow(source(500), t1),
            "all heard within a second: no room"
        );
        let later = t0 + Duration::from_millis(1100);
        assert!(
            limiter.allow(source(501), later),
            "quiet ones forgotten, room again"
        );
        assert_eq!(limiter.tracked(), 2, "source 3 was heard after the others");
    }
}
