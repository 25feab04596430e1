//! The fate of each packet in one direction of the link, as pure logic over a clock the caller
//! supplies, so it can be tested with a fake clock and a seeded random generator.
//!
//! The model, in the order a packet meets it:
//!
//! 1. **MTU**: a packet larger than `mtu` is dropped (the sending TUN device has that MTU too,
//!    so the kernel only hands us larger packets when something bypasses it).
//! 2. **Loss**: each packet is dropped with probability `loss`, independently (Bernoulli), on
//!    entry, as netem does: a lost packet takes no room in the queue and no time on the link.
//! 3. **Duplication**: with probability `dup` a second copy follows the first through the
//!    queue and the serializer (so duplicates, like real ones, cost link time).
//! 4. **Queue and serializer**: packets leave a FIFO at `rate`, each occupying the link for
//!    `size × 8 / rate` (size is the IP packet, as TUN carries no link header). Packets that
//!    must wait for the link are the queue; one that would push the waiting bytes above `queue`
//!    is dropped (drop-tail). No rate means no queue and no serialisation time.
//! 5. **Propagation**: a packet arrives `delay ± jitter` after it left the serializer (uniform
//!    jitter, never below zero), but never before the packet ahead of it: jitter spreads
//!    arrivals without reordering them, which shifts the mean delay up a little when the jitter
//!    exceeds the gap between packets.
//! 6. **Reordering**: with probability `reorder` a packet is held back an extra
//!    [`REORDER_HOLD`] beyond its arrival time and does not hold back the packets after it, so
//!    any that arrive within that time overtake it. A reordered packet is counted whether or not
//!    anything overtook it.
//!
//! Time is nanoseconds since the link started ([`Nanos`]); the forwarder feeds the real
//! monotonic clock, tests feed numbers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::spec::{Impairments, Percent, REORDER_HOLD};

/// Nanoseconds since the link started.
pub type Nanos = u64;

/// Which way a packet crosses the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

impl Direction {
    /// An arrow for timelines: → up, ← down.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::Up => "→",
            Direction::Down => "←",
        }
    }
}

/// Why a packet did not cross.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Random loss (`loss`).
    Loss,
    /// The queue in front of the serializer was full (`queue`).
    Queue,
    /// Larger than the MTU (`mtu`).
    Mtu,
}

impl DropReason {
    /// A word for traces and capture comments.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Queue => "queue full",
            DropReason::Mtu => "over MTU",
        }
    }
}

/// A packet that did not cross, handed back for the trace and the capture.
#[derive(Debug)]
pub struct Dropped {
    /// Why.
    pub reason: DropReason,
    /// The packet.
    pub packet: Vec<u8>,
}

/// Counters of one direction since the link started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionStats {
    /// Packets offered to the link.
    pub packets_in: u64,
    /// Bytes (IP packets) offered to the link.
    pub bytes_in: u64,
    /// Packets delivered to the other side, duplicates included.
    pub delivered: u64,
    /// Bytes delivered to the other side, duplicates included.
    pub bytes_delivered: u64,
    /// Packets dropped by random loss.
    pub dropped_loss: u64,
    /// Packets dropped because the queue was full.
    pub dropped_queue: u64,
    /// Packets dropped for exceeding the MTU.
    pub dropped_mtu: u64,
    /// Extra copies made by `dup`.
    pub duplicated: u64,
    /// Packets held back by `reorder`.
    pub reordered: u64,
}

impl DirectionStats {
    /// All drops together.
    pub fn dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_queue + self.dropped_mtu
    }
}

/// A small seedable generator (SplitMix64): the same seed gives the same packet fates on every
/// platform and every version of this crate, which no general-purpose RNG crate promises.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`; draws nothing when `p` is zero, so adding one impairment
    /// does not change the fates another one deals.
    pub fn chance(&mut self, p: Percent) -> bool {
        !p.is_zero() && self.next_u64() % u64::from(Percent::PPM_ALL) < u64::from(p.ppm())
    }

    /// A uniform offset in `-spread..=spread`.
    pub fn spread(&mut self, spread: u64) -> i64 {
        if spread == 0 {
            return 0;
        }
        let width = spread.saturating_mul(2).saturating_add(1);
        (self.next_u64() % width) as i64 - spread as i64
    }
}

/// A packet on its way: delivered at `due`, ties broken by arrival order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    due: Nanos,
    seq: u64,
    packet: Vec<u8>,
}

/// One direction of the link.
#[derive(Debug)]
pub struct Shaper {
    /// What this direction does; replaced by [`Shaper::reconfigure`].
    imp: Impairments,
    /// Decides loss, duplication, jitter and reordering.
    rng: SplitMix64,
    /// When the serializer finishes the last admitted packet.
    link_free: Nanos,
    /// Start times and sizes of admitted packets still waiting for the serializer: the queue.
    waiting: VecDeque<(Nanos, u64)>,
    /// The sum of the sizes in `waiting`.
    waiting_bytes: u64,
    /// Packets between the serializer and the far end, soonest first.
    in_flight: BinaryHeap<Reverse<InFlight>>,
    /// Arrival time of the last packet that was not reordered: jitter never goes below it.
    last_due: Nanos,
    /// Arrival order, to keep packets due at the same nanosecond in order.
    seq: u64,
    /// The counters.
    stats: DirectionStats,
}

impl Shaper {
    /// A direction with these impairments and a random generator from `seed`.
    pub fn new(imp: Impairments, seed: u64) -> Self {
        Shaper {
            imp,
            rng: SplitMix64::new(seed),
            link_free: 0,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            in_flight: BinaryHeap::new(),
            last_due: 0,
            seq: 0,
            stats: DirectionStats::default(),
        }
    }

    /// New impairments from now on; packets already in flight keep the fate they were dealt.
    pub fn reconfigure(&mut self, imp: Impairments) {
        self.imp = imp;
    }

    /// The impairments in force.
    pub fn impairments(&self) -> &Impairments {
        &self.imp
    }

    /// The counters so far.
    pub fn stats(&self) -> DirectionStats {
        self.stats
    }

    /// Packets admitted and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// A packet enters the link at `now`: it is scheduled for delivery, or handed back dropped.
    pub fn offer(&mut self, now: Nanos, packet: Vec<u8>) -> Result<(), Dropped> {
        let len = packet.len() as u64;
        self.stats.packets_in += 1;
        self.stats.bytes_in += len;
        if len > u64::from(self.imp.effective_mtu()) {
            self.stats.dropped_mtu += 1;
            return Err(Dropped {
                reason: DropReason::Mtu,
                packet,
            });
        }
        if self.rng.chance(self.imp.loss) {
            self.stats.dropped_loss += 1;
            return Err(Dropped {
                reason: DropReason::Loss,
                packet,
            });
        }
        let copy = self.rng.chance(self.imp.dup).then(|| packet.clone());
        let fate = self.admit(now, packet);
        if let Some(copy) = copy {
            self.stats.duplicated += 1;
            // The copy's fate is its own (the queue may drop it, which the counters show);
            // the original's is what the caller hears about.
            let _ = self.admit(now, copy);
        }
        fate
    }

    /// Queue, serializer, propagation and reordering for one packet that survived loss.
    fn admit(&mut self, now: Nanos, packet: Vec<u8>) -> Result<(), Dropped> {
        let len = packet.len() as u64;
        while self.waiting.front().is_some_and(|(start, _)| *start <= now) {
            if let Some((_, size)) = self.waiting.pop_front() {
                self.waiting_bytes -= size;
            }
        }
        let start = self.link_free.max(now);
        let must_wait = start > now;
        if must_wait && self.imp.queue.is_some_and(|q| self.waiting_bytes + len > q) {
            self.stats.dropped_queue += 1;
            return Err(Dropped {
                reason: DropReason::Queue,
                packet,
            });
        }
        let finish = start + self.imp.rate.map_or(0, |rate| transmit_nanos(len, rate));
        if self.imp.rate.is_some() {
            self.link_free = finish;
        }
        if must_wait {
            self.waiting.push_back((start, len));
            self.waiting_bytes += len;
        }
        let delay = self.imp.delay.as_nanos() as i128;
        let offset = self.rng.spread(self.imp.jitter.as_nanos() as u64);
        let mut due = finish + (delay + i128::from(offset)).max(0) as u64;
        if self.rng.chance(self.imp.reorder) {
            self.stats.reordered += 1;
            due += REORDER_HOLD.as_nanos() as u64;
        } else {
            due = due.max(self.last_due);
            self.last_due = due;
        }
        self.seq += 1;
        self.in_flight.push(Reverse(InFlight {
            due,
            seq: self.seq,
            packet,
        }));
        Ok(())
    }

    /// When the next packet is due at the far end, if any is on its way.
    pub fn next_due(&self) -> Option<Nanos> {
        self.in_flight.peek().map(|Reverse(p)| p.due)
    }

    /// The next packet due at or before `now`, with the time it was due.
    pub fn pop_due(&mut self, now: Nanos) -> Option<(Nanos, Vec<u8>)> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse(p) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.bytes_delivered += p.packet.len() as u64;
        Some((p.due, p.packet))
    }
}

/// How long `len` bytes occupy a link of `rate` bits per second, rounded up.
pub fn transmit_nanos(len: u64, rate: u64) -> Nanos {
    let bits = u128::from(len) * 8 * 1_000_000_000;
    bits.div_ceil(u128::from(rate.max(1))) as u64
}

#[cfg(test)]
mod tests;
