//! Locks that outlive a panic.
//!
//! Every mutex in echotool guards counters, caches or waiter lists that stay consistent even if
//! a holder panicked (each update is a single insert, remove or assignment), so a poisoned lock
//! is used as it is instead of spreading one task's panic to every other.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning (see the module documentation for why that is safe here).
pub fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
