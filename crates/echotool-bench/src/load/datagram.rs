//! Load over one datagram socket: a writer on a schedule, a reader matching echoes to what was
//! sent by sequence number.
//!
//! Datagrams are unreliable, so an echo that does not come within the timeout is counted lost;
//! one that comes later is *late*, one that comes twice is a *duplicate*: neither is an altered
//! echo. Only a payload that differs from what its sequence number says was sent is a
//! mismatch.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use echotool_core::DatagramSocket;
use tokio::time::Instant;

use super::pacing::pacing;
use super::{Drive, Window};
use crate::payload::{Payload, SEQ_BYTES};
use crate::tally::Tally;
use echotool_core::lock_ignoring_poison;

/// A datagram sent and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sent {
    /// The moment its latency counts from.
    stamp: Instant,
    /// The moment it left; its timeout counts from here.
    left: Instant,
}

/// What an arriving echo is, by its sequence number.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    /// The awaited echo of this datagram.
    Awaited(Sent),
    /// A second echo of a datagram already answered.
    Duplicate,
    /// The echo of a datagram already counted lost.
    Late,
    /// No datagram with that number was sent.
    Unknown,
}

/// Every datagram's fate, by sequence number.
#[derive(Default)]
struct Ledger {
    pending: BTreeMap<u64, Sent>,
    /// One bit per sequence number: its echo has come.
    echoed: Vec<u64>,
    /// One bit per sequence number: it was counted lost.
    expired: Vec<u64>,
    /// Datagrams sent so far (the next sequence number).
    sent: u64,
}

fn bit(bits: &[u64], n: u64) -> bool {
    bits.get((n / 64) as usize)
        .is_some_and(|w| w & (1 << (n % 64)) != 0)
}

fn set_bit(bits: &mut Vec<u64>, n: u64) {
    let word = (n / 64) as usize;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (n % 64);
}

impl Ledger {
    /// Records datagram `seq` as sent (before it goes out, so its echo always finds it).
    fn send(&mut self, seq: u64, sent: Sent) {
        self.pending.insert(seq, sent);
        self.sent = self.sent.max(seq + 1);
    }

    /// Classifies an echo claiming to be datagram `seq`.
    fn arrive(&mut self, seq: u64) -> Arrival {
        if let Some(sent) = self.pending.remove(&seq) {
            set_bit(&mut self.echoed, seq);
            return Arrival::Awaited(sent);
        }
        if seq >= self.sent {
            return Arrival::Unknown;
        }
        if bit(&self.echoed, seq) {
            return Arrival::Duplicate;
        }
        if bit(&self.expired, seq) {
            // A second copy of it would be a duplicate.
            set_bit(&mut self.echoed, seq);
            return Arrival::Late;
        }
        Arrival::Unknown
    }

    /// When the oldest unanswered datagram left.
    fn oldest(&self) -> Option<Instant> {
        self.pending.values().next().map(|s| s.left)
    }

    /// Counts lost every datagram that left before `cutoff`; returns their stamps.
    fn expire(&mut self, cutoff: Instant) -> Vec<Instant> {
        let mut gone = Vec::new();
        // Departure times grow with sequence numbers, so the expired are a prefix.
        while let Some(entry) = self.pending.first_entry() {
            if entry.get().left > cutoff {
                break;
            }
            let (seq, sent) = entry.remove_entry();
            set_bit(&mut self.expired, seq);
            gone.push(sent.stamp);
        }
        gone
    }
}

/// Echo over one datagram socket until the window closes; unanswered datagrams are lost after
/// the echo timeout.
pub async fn datagram_echo(socket: Box<dyn DatagramSocket>, drive: Drive, window: Window) -> Tally {
    let payload = Payload::new(drive.size.max(SEQ_BYTES));
    let socket: Arc<dyn DatagramSocket> = Arc::from(socket);
    let ledger = Mutex::new(Ledger::default());
    let (mut schedule, slots) = pacing(&drive);
    let done = AtomicBool::new(false);
    let writer = async {
        let mut failed = Tally::default();
        let mut buf = vec![0u8; payload.len()];
        let mut seq = 0u64;
        while let Some(stamp) = schedule.next(&window).await {
            payload.fill(seq, &mut buf);
            let left = Instant::now();
            lock_ignoring_poison(&ledger).send(seq, Sent { stamp, left });
            if let Err(e) = socket.send(&buf).await {
                // Refused means an ICMP error came back for an earlier datagram: that one is
                // lost, which the timeout will count; anything else is an error.
                if e.kind() != io::ErrorKind::ConnectionRefused {
                    failed.error(&e);
                }
            }
            seq += 1;
        }
        done.store(true, Ordering::Release);
        failed.unsent = schedule.unsent;
        failed
    };
    let reader = read_echoes(&*socket, &payload, &ledger, &done, &slots, drive, window);
    let (sending, mut tally) = tokio::join!(writer, reader);
    tally.merge(&sending);
    if let Some(rate) = drive.rate {
        tally.scheduled = window.scheduled(rate);
    }
    tally
}

/// The reader: matches echoes to the ledger until the writer is done and nothing is pending.
async fn read_echoes(
    socket: &dyn DatagramSocket,
    payload: &Payload,
    ledger: &Mutex<Ledger>,
    done: &AtomicBool,
    slots: &super::pacing::Slots,
    drive: Drive,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let oldest = lock_ignoring_poison(ledger).oldest();
        if oldest.is_none() && done.load(Ordering::Acquire) {
            return tally;
        }
        let deadline = match oldest {
            Some(left) => left + drive.echo_timeout,
            None => Instant::now() + Duration::from_millis(20),
        };
        match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let now = Instant::now();
                let echo = &buf[..n];
                let seq = Payload::seq_of(echo);
                let arrival = seq.map_or(Arrival::Unknown, |seq| {
                    lock_ignoring_poison(ledger).arrive(seq)
                });
                let intact = seq.is_some_and(|seq| payload.matches(seq, echo));
                match arrival {
                    Arrival::Awaited(sent) => {
                        slots.release(1);
                        if !intact {
                            tally.mismatch(&payload.make(seq.unwrap_or(0)), echo);
                        } else if window.contains(sent.stamp) {
                            tally.record(now - sent.stamp, n);
                        }
                    }
                    Arrival::Duplicate if intact => tally.duplicated += 1,
                    Arrival::Late if intact => tally.late += 1,
                    _ => tally.mismatch(&payload.make(seq.unwrap_or(0)), echo),
                }
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                // Nothing listening: the datagrams will time out as lost. Pause briefly
                // so a stream of ICMP errors does not spin.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(Err(e)) => tally.error(&e),
            Err(_) => {
                let cutoff = Instant::now() - drive.echo_timeout;
                let expired = lock_ignoring_poison(ledger).expire(cutoff);
                tally.lost += expired.iter().filter(|s| window.contains(**s)).count() as u64;
                slots.release(expired.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_duplicate_and_unknown_echoes_are_told_apart() {
        let mut ledger = Ledger::default();
        let t = Instant::now();
        let sent = |ms| Sent {
            stamp: t,
            left: t + Duration::from_millis(ms),
        };
        for seq in 0..3 {
            ledger.send(seq, sent(seq));
        }
        assert_eq!(ledger.arrive(1), Arrival::Awaited(sent(1)));
        assert_eq!(ledger.arrive(1), Arrival::Duplicate);
        assert_eq!(
            ledger.expire(t + Duration::from_millis(1)).len(),
            1,
            "only #0"
        );
        assert_eq!(ledger.oldest(), Some(t + Duration::from_millis(2)));
        assert_eq!(ledger.arrive(0), Arrival::Late);
        assert_eq!(ledger.arrive(0), Arrival::Duplicate, "a late one twice");
        assert_eq!(ledger.arrive(7), Arrival::Unknown, "never sent");
        assert_eq!(ledger.arrive(2), Arrival::Awaited(sent(2)));
        assert_eq!(ledger.oldest(), None);
    }
}
