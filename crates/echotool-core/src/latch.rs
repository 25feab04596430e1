//! A shutdown signal that costs its waiters nothing while they wait.
//!
//! Every connection waits for shutdown alongside its socket, so the wait is polled on every
//! wake-up of every connection. `CancellationToken` takes a mutex on each of those polls;
//! this signal takes one only when a waiter first registers (or moves to another thread) and
//! when it fires, so the steady state is an atomic load and a waker comparison.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::poison::lock_ignoring_poison;
use tokio_util::sync::CancellationToken;

/// A one-shot broadcast: once fired, every [`Latch::fired`] future resolves.
#[derive(Clone, Default)]
pub struct Latch {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    fired: AtomicBool,
    next_key: AtomicU64,
    waiters: Mutex<HashMap<u64, Waker>>,
}

impl Latch {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal that fires when `token` is cancelled (needs a tokio runtime).
    pub fn following(token: &CancellationToken) -> Self {
        let signal = Latch::new();
        let (token, fire) = (token.clone(), signal.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            fire.fire();
        });
        signal
    }

    /// Fires the signal, waking every waiter.
    pub fn fire(&self) {
        self.inner.fired.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *lock_ignoring_poison(&self.inner.waiters));
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// Whether it has fired.
    #[cfg(test)]
    fn is_fired(&self) -> bool {
        self.inner.fired.load(Ordering::Acquire)
    }

    /// A future that resolves once the signal has fired.
    pub fn fired(&self) -> Fired {
        Fired {
            inner: self.inner.clone(),
            key: self.inner.next_key.fetch_add(1, Ordering::Relaxed),
            registered: None,
        }
    }
}

/// Resolves once its [`Latch`] has fired.
pub struct Fired {
    inner: Arc<Inner>,
    key: u64,
    /// The waker last registered, so re-polls from the same task need no lock.
    registered: Option<Waker>,
}

impl Future for Fired {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let waker = cx.waker().clone();
        {
            let mut waiters = lock_ignoring_poison(&self.inner.waiters);
            // Checked again under the lock: `fire` may have emptied the map just now.
            if self.inner.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            waiters.insert(self.key, waker.clone());
        }
        self.registered = Some(waker);
        Poll::Pending
    }
}

impl Drop for Fired {
    fn drop(&mut self) {
        if self.registered.is_some() {
            lock_ignoring_poison(&self.inner.waiters).remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_every_waiter_and_late_ones_resolve_at_once() {
        let signal = Latch::new();
        let waiters: Vec<_> = (0..10).map(|_| tokio::spawn(signal.fired())).collect();
        tokio::task::yield_now().await;
        assert!(!signal.is_fired());
        signal.fire();
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("woken")
                .unwrap();
        }
        signal.fired().await;
        assert!(signal.inner.waiters.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn dropped_waiters_unregister() {
        let signal = Latch::new();
        let mut fut = Box::pin(signal.fired());
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 1);
        assert!(
            fut.as_mut().poll(&mut cx).is_pending(),
            "re-poll, no new entry"
        );
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 1);
        drop(fut);
        assert!(signal.inner.waiters.lock().unwrap().is_empty());
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }
}
