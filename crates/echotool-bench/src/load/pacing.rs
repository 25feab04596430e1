//! Pacing of datagram load: a fixed schedule (open loop), or slots that echoes free (closed
//! loop), each carrying the moment it counts from.
//!
//! A closed-loop message counts from when its slot freed, not from when the writer got round
//! to sending it: otherwise the client's own delay between an echo and the next send would
//! fall outside every round trip, and latency would stop agreeing with throughput
//! (Little's law: connections x depth = messages/s x mean round trip).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Drive, SPIN, Window};

/// The sender's side of pacing.
pub(super) struct Schedule {
    freed: mpsc::UnboundedReceiver<Instant>,
    interval: Option<Duration>,
    next: Instant,
    rate: Option<f64>,
    /// Open loop: messages due in the window that were never sent.
    pub(super) unsent: u64,
}

/// The receiver's side of pacing: frees slots as echoes arrive (closed loop only).
pub(super) struct Slots {
    freed: mpsc::UnboundedSender<Instant>,
    closed_loop: bool,
}

/// The two sides of one connection's pacing.
pub(super) fn pacing(drive: &Drive) -> (Schedule, Slots) {
    let (tx, rx) = mpsc::unbounded_channel();
    let now = Instant::now();
    let closed_loop = drive.rate.is_none();
    if closed_loop {
        for _ in 0..drive.depth.max(1) {
            let _ = tx.send(now);
        }
    }
    (
        Schedule {
            freed: rx,
            interval: drive.rate.map(crate::send_interval),
            next: now,
            rate: drive.rate,
            unsent: 0,
        },
        Slots {
            freed: tx,
            closed_loop,
        },
    )
}

impl Schedule {
    /// Waits for the next send; returns the time the message counts from, or `None` once the
    /// window has closed. In open loop, a schedule still behind when the window closes leaves
    /// the rest of the window's messages unsent, and counts them.
    pub(super) async fn next(&mut self, window: &Window) -> Option<Instant> {
        let stamp = match self.interval {
            Some(interval) => {
                let at = self.next;
                self.next += interval;
                // Only wait when ahead of schedule; behind it, catch up at once. The timer has
                // millisecond granularity, so the last stretch is spun (see `SPIN`).
                if at > Instant::now() + SPIN {
                    tokio::time::sleep_until(at - SPIN).await;
                }
                while at > Instant::now() {
                    tokio::task::yield_now().await;
                }
                at
            }
            None => self.freed.recv().await?,
        };
        if stamp >= window.end || Instant::now() >= window.end {
            if let Some(rate) = self.rate {
                self.unsent = window.unsent_from(stamp, rate);
            }
            return None;
        }
        Some(stamp)
    }
}

impl Slots {
    /// Frees `n` slots (closed loop).
    pub(super) fn release(&self, n: usize) {
        if self.closed_loop {
            let now = Instant::now();
            for _ in 0..n {
                let _ = self.freed.send(now);
            }
        }
    }
}
