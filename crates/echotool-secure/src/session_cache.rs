//! The QUIC server's session cache (resumption and 0-RTT), grown as sessions are stored.
//!
//! rustls's own `ServerSessionMemoryCache::new(n)` reserves room for all `n` sessions when
//! the server starts: 2 MB for echotool's 16 384, a quarter of an idle QUIC server's memory,
//! paid by every server whether or not a client ever resumes (issue 19). This cache keeps
//! the same bound and the same eviction (oldest first) but allocates only for what it holds.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;

use rustls::server::StoresServerSessions;

/// A bounded in-memory store of server sessions that starts empty and grows on demand; at
/// its bound, storing a new session forgets the oldest.
///
/// Every operation is O(1) (amortized): a session taken for a resumption leaves its key in the
/// line of stored keys, marked stale by a sequence number, and is dropped from the line when
/// it comes to the front. (rustls's own cache searches the line at every take: with thousands
/// of sessions held, a QUIC server spent 4 % of its CPU in that search during a 0-RTT set-up
/// benchmark.)
pub struct SessionCache {
    /// Most sessions held at once.
    max: usize,
    /// The sessions, and their keys oldest first.
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// Each session with the sequence number it was stored under.
    sessions: HashMap<Vec<u8>, (u64, Vec<u8>)>,
    /// Keys in the order they were stored, each with its sequence number; a key whose session
    /// was taken or stored again since is stale, and skipped when it reaches the front.
    oldest: VecDeque<(u64, Vec<u8>)>,
    /// The sequence number of the next session stored.
    next: u64,
}

impl Held {
    /// Drops keys from the front of the line while more sessions are held than `max`, or the
    /// line (live and stale keys) is longer than twice that: the oldest session is forgotten
    /// first, and stale keys never outnumber the bound.
    fn trim(&mut self, max: usize) {
        while self.sessions.len() > max || self.oldest.len() > 2 * max {
            let Some((seq, key)) = self.oldest.pop_front() else {
                return;
            };
            if self
                .sessions
                .get(&key)
                .is_some_and(|(held, _)| *held == seq)
            {
                self.sessions.remove(&key);
            }
        }
    }
}

impl SessionCache {
    /// An empty cache for at most `max` sessions (at least one).
    pub fn new(max: usize) -> Self {
        SessionCache {
            max: max.max(1),
            held: Mutex::default(),
        }
    }

    /// The sessions; a panic elsewhere while holding the lock leaves them consistent (each
    /// change is one insert or remove), so poisoning is ignored.
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        echotool_core::lock_ignoring_poison(&self.held)
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut held = self.lock();
        let seq = held.next;
        held.next += 1;
        held.sessions.insert(key.clone(), (seq, value));
        held.oldest.push_back((seq, key));
        held.trim(self.max);
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock()
            .sessions
            .get(key)
            .map(|(_, value)| value.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().sessions.remove(key).map(|(_, value)| value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCache")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> Vec<u8> {
        vec![i; 4]
    }

    #[test]
    fn starts_empty_and_allocates_nothing_up_front() {
        let cache = SessionCache::new(16 * 1024);
        let held = cache.lock();
        assert_eq!((held.sessions.capacity(), held.oldest.capacity()), (0, 0));
    }

    #[test]
    fn stores_takes_and_forgets_the_oldest_at_its_bound() {
        let cache = SessionCache::new(2);
        assert!(cache.put(key(1), b"one".to_vec()));
        assert!(cache.put(key(2), b"two".to_vec()));
        assert_eq!(cache.get(&key(1)).as_deref(), Some(&b"one"[..]));
        assert!(cache.put(key(3), b"three".to_vec()));
        assert_eq!(cache.lock().sessions.len(), 2);
        assert_eq!(cache.get(&key(1)), None, "the oldest went");
        assert_eq!(cache.take(&key(2)).as_deref(), Some(&b"two"[..]));
        assert_eq!(cache.take(&key(2)), None, "a session is taken once");
        // Storing a session again replaces it and moves it to the back of the line.
        assert!(cache.put(key(3), b"again".to_vec()));
        assert!(cache.put(key(4), b"four".to_vec()));
        assert_eq!(cache.lock().sessions.len(), 2);
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"again"[..]));
        assert!(cache.put(key(5), b"five".to_vec()));
        assert_eq!(cache.get(&key(3)), None, "the second 3 was older than 4");
        assert_eq!(cache.get(&key(4)).as_deref(), Some(&b"four"[..]));
    }

    #[test]
    fn taken_sessions_leave_no_more_than_the_bound_behind() {
        let cache = SessionCache::new(3);
        for round in 0..100u8 {
            assert!(cache.put(key(round), vec![round]));
            assert!(cache.put(key(round.wrapping_add(128)), vec![round]));
            // Every other session is resumed (taken) at once, as a client reconnecting does.
            assert_eq!(cache.take(&key(round)), Some(vec![round]));
            let held = cache.lock();
            assert!(held.sessions.len() <= 3, "round {round}");
            assert!(
                held.oldest.len() <= 6,
                "round {round}: {}",
                held.oldest.len()
            );
        }
        // The newest untaken sessions are still there; older ones were forgotten when a fourth
        // was held (the last round's first session, before it was taken).
        for round in 98..100u8 {
            assert_eq!(cache.get(&key(round.wrapping_add(128))), Some(vec![round]));
        }
        assert_eq!(cache.get(&key(97u8.wrapping_add(128))), None);
    }
}
