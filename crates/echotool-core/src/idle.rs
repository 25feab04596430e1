//! The idle sweep of one listener: one sweeper task ends the connections that have been idle
//! for the idle timeout, instead of a timer per connection (with a timer per connection,
//! tokio's timer wheel is processed on every park of the runtime, which cost more than the
//! rest of the echo's own work per message).
//!
//! Each connection has an idle mark, a count of sweeper ticks since its last message: the
//! connection sets it to zero after each message (a relaxed load, and a relaxed store only
//! when it was not zero already, at most once per tick), the sweeper adds one per tick and
//! ends the connection once the count passes the limit (closed within two ticks of it).
//! Connections live in a [`Slab`] under one lock, their marks in chunks beside it under the
//! same indices, so an idle connection costs a slab entry and four bytes, not a hash-map slot
//! and an allocation of its own (issue 19).
//!
//! The entry is only the handle that ends the connection's task, not who the connection is:
//! the sweeper sets the mark of a connection it ends to [`TIMED_OUT`] before aborting it, and
//! the connection, which knows its peer, logs the idle timeout as its task is dropped
//! ([`Activity::timed_out`]). The entry stays until the task has gone, so that its place (and
//! its mark) is not handed to a new connection while the old one may still read it.

use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle};

use crate::poison::lock_ignoring_poison;
use crate::slab::{CHUNK, Slab};

/// The idle sweep of one listener; the sweeper runs until [`IdleSweep::stop`].
pub(crate) struct IdleSweep {
    /// The connections watched.
    watched: Arc<Mutex<Watched>>,
    /// The sweeper's task.
    sweeper: JoinHandle<()>,
}

/// The connections under watch: an entry and an idle mark per connection, by the same index.
#[derive(Default)]
struct Watched {
    /// How to end each connection.
    connections: Slab<Watchee>,
    /// The idle marks: connection `i`'s is `marks[i / CHUNK].0[i % CHUNK]`, one chunk of marks
    /// per chunk of the slab. Shared with the connections, which set theirs without the lock.
    marks: Vec<Arc<Marks>>,
}

/// One connection under watch: what ends its task; `None` only while [`IdleSweep::watch`]
/// spawns it (under the lock). Who the connection is stays with the connection (issue 19: the
/// peer made the entry 40 bytes, this is 16).
type Watchee = Option<AbortHandle>;

/// Idle marks of one chunk of connections: sweeper ticks since each one's last message, or
/// [`TIMED_OUT`].
struct Marks([AtomicU32; CHUNK]);

/// The mark of a connection the sweeper has ended; it stays until the connection's place is
/// handed out again. Idle counts stop short of it.
const TIMED_OUT: u32 = u32::MAX;

// A mark's place in its chunk is a `u8`, so that indexing a chunk needs no bounds check.
const _: () = assert!(CHUNK == u8::MAX as usize + 1);

/// A connection's idle mark: [`Activity::touch`] after each message.
#[derive(Clone, Default)]
pub struct Activity {
    /// Its chunk of marks and its place there; none without a sweep.
    mark: Option<(Arc<Marks>, u8)>,
}

impl Activity {
    /// An activity mark nobody watches (no idle timeout).
    pub fn unwatched() -> Self {
        Activity::default()
    }

    /// Records activity now; the idle period starts again.
    pub fn touch(&self) {
        if let Some((marks, place)) = &self.mark {
            let mark = &marks.0[usize::from(*place)];
            // Read first: between two ticks the mark is already 0, and a store every message
            // would take the cache line (16 connections' marks) from the other threads that
            // touch theirs. A tick that lands just after this read counts one idle tick, as
            // it would just after a store. A compare-and-swap, not a store: a connection the
            // sweeper has just ended keeps its TIMED_OUT mark for its last log line.
            let _ = mark.fetch_update(Relaxed, Relaxed, |idle| {
                (idle != 0 && idle != TIMED_OUT).then_some(0)
            });
        }
    }

    /// Whether the sweep ended this connection for being idle: the connection's task reads it
    /// as it is dropped, to log the idle timeout with its peer.
    pub fn timed_out(&self) -> bool {
        self.mark
            .as_ref()
            .is_some_and(|(marks, place)| marks.0[usize::from(*place)].load(Relaxed) == TIMED_OUT)
    }
}

impl IdleSweep {
    /// Starts the sweeper: it ticks a few times per idle period (at least every 10 ms, at most
    /// every second) and ends connections whose last activity is a whole period old.
    pub(crate) fn start(limit: Duration) -> IdleSweep {
        let tick = (limit / 8).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let limit_ticks = (limit.as_nanos() / tick.as_nanos()).max(1) as u64;
        let watched: Arc<Mutex<Watched>> = Arc::default();
        let swept = watched.clone();
        let sweeper = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(tick);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                lock_ignoring_poison(&swept).sweep(limit_ticks);
            }
        });
        IdleSweep { watched, sweeper }
    }

    /// Watches a new connection: `spawn` starts its task with the connection's [`Activity`]
    /// and returns how to end it. The task logs its own idle timeout
    /// ([`Activity::timed_out`]).
    pub(crate) fn watch(&self, spawn: impl FnOnce(Activity) -> AbortHandle) {
        let mut watched = lock_ignoring_poison(&self.watched);
        let Watched { connections, marks } = &mut *watched;
        let key = connections.insert(None);
        while marks.len() * CHUNK < connections.capacity() {
            marks.push(Arc::new(Marks(std::array::from_fn(|_| AtomicU32::new(0)))));
        }
        let chunk = marks[key / CHUNK].clone();
        let place = (key % CHUNK) as u8;
        // A reused index: its last connection has ended, and this one starts idle for 0 ticks.
        chunk.0[usize::from(place)].store(0, Relaxed);
        let abort = spawn(Activity {
            mark: Some((chunk, place)),
        });
        if let Some(watchee) = connections.get_mut(key) {
            *watchee = Some(abort);
        }
    }

    /// Stops the sweeper; the connections run on.
    pub(crate) fn stop(&self) {
        self.sweeper.abort();
    }

    /// Ends every connection still watched.
    pub(crate) fn abort_all(&self) {
        let mut watched = lock_ignoring_poison(&self.watched);
        watched.connections.retain(|_, watchee| {
            if let Some(abort) = watchee {
                abort.abort();
            }
            false
        });
    }

    /// Connections watched now (ended ones stay until the next tick).
    #[cfg(test)]
    fn watched(&self) -> usize {
        lock_ignoring_poison(&self.watched).connections.len()
    }
}

impl Watched {
    /// One tick: forgets connections that have ended and ends those idle for more than
    /// `limit_ticks` ticks (each logs its own end).
    fn sweep(&mut self, limit_ticks: u64) {
        let Watched { connections, marks } = self;
        connections.retain(|key, watchee| {
            let Some(abort) = watchee else {
                return true;
            };
            if abort.is_finished() {
                return false;
            }
            // One atomic step, so that a message arriving meanwhile either saves the
            // connection or finds it already ended, never both.
            let mark = &marks[key / CHUNK].0[key % CHUNK];
            let ticked = mark.fetch_update(Relaxed, Relaxed, |idle| match idle {
                TIMED_OUT => None,
                idle if u64::from(idle) >= limit_ticks => Some(TIMED_OUT),
                idle => Some((idle + 1).min(TIMED_OUT - 1)),
            });
            if ticked.is_ok_and(|idle| u64::from(idle) >= limit_ticks) {
                abort.abort();
            }
            // Kept until its task has gone: see the module's docs.
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Watches `n` tasks that never end by themselves; returns their activity marks.
    fn watch_pending(sweep: &IdleSweep, n: usize) -> Vec<Activity> {
        let mut marks = Vec::new();
        for _ in 0..n {
            sweep.watch(|activity| {
                marks.push(activity);
                tokio::spawn(std::future::pending::<()>()).abort_handle()
            });
        }
        marks
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_end_idle_connections_spare_touched_ones_and_reuse_their_places() {
        let sweep = IdleSweep::start(Duration::from_secs(1));
        let marks = watch_pending(&sweep, CHUNK + 2);
        // The limit is 8 ticks of 125 ms (the first at once): at 0.9 s everything is there.
        for _ in 0..9 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            marks[1].touch();
            marks[CHUNK + 1].touch();
        }
        assert_eq!(sweep.watched(), CHUNK + 2);
        assert!(!marks[0].timed_out());
        // At 1 s the untouched ones are ended; their entries stay until their tasks have gone.
        tokio::time::sleep(Duration::from_millis(200)).await;
        marks[1].touch();
        marks[CHUNK + 1].touch();
        assert!(marks[0].timed_out() && marks[CHUNK].timed_out());
        assert!(!marks[1].timed_out() && !marks[CHUNK + 1].timed_out());
        // A message after the end does not undo it: the task logs its idle timeout.
        marks[0].touch();
        assert!(marks[0].timed_out());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(sweep.watched(), 2, "only the two touched ones are left");
        // The freed places are handed out again: no new chunk of marks.
        let again = watch_pending(&sweep, CHUNK);
        assert_eq!(sweep.watched(), CHUNK + 2);
        let chunks = lock_ignoring_poison(&sweep.watched).marks.len();
        assert_eq!(chunks, 2);
        // A reused place starts at zero ticks, not where its last connection left it.
        let (chunk, place) = again[0].mark.clone().expect("watched");
        assert_eq!(chunk.0[usize::from(place)].load(Relaxed), 0);
        sweep.abort_all();
        assert_eq!(sweep.watched(), 0);
        sweep.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn ended_connections_are_forgotten_at_the_next_tick() {
        let sweep = IdleSweep::start(Duration::from_secs(3600));
        sweep.watch(|_| tokio::spawn(async {}).abort_handle());
        assert_eq!(sweep.watched(), 1);
        // Long enough for the task to end and for a tick (every second) to pass.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(sweep.watched(), 0);
        sweep.stop();
    }

    #[test]
    fn an_unwatched_mark_can_be_touched() {
        Activity::unwatched().touch();
    }
}
