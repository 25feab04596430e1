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
pub struct SessionCache {
    /// Most sessions held at once.
    max: usize,
    /// The sessions, and their keys oldest first.
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    sessions: HashMap<Vec<u8>, Vec<u8>>,
    oldest: VecDeque<Vec<u8>>,
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
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut held = self.lock();
        if held.sessions.insert(key.clone(), value).is_none() {
            held.oldest.push_back(key);
            if held.oldest.len() > self.max
                && let Some(oldest) = held.oldest.pop_front()
            {
                held.sessions.remove(&oldest);
            }
        }
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().sessions.get(key).cloned()
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut held = self.lock();
        let value = held.sessions.remove(key)?;
        if let Some(at) = held.oldest.iter().position(|k| k == key) {
            held.oldest.remove(at);
        }
        Some(value)
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
        // Replacing a session keeps one entry and its place in line.
        assert!(cache.put(key(3), b"again".to_vec()));
        assert!(cache.put(key(4), b"four".to_vec()));
        assert_eq!(cache.lock().sessions.len(), 2);
        assert_eq!(cache.get(&key(3)).as_deref(), Some(&b"again"[..]));
    }
}
