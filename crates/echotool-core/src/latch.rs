//! A shutdown signal that costs its waiters nothing while they wait.
//!
//! Every connection waits for shutdown alongside its socket, so the wait is polled on every
//! wake-up of every connection. `CancellationToken` takes a mutex on each of those polls;
//! this signal takes one only when a waiter first registers (or moves to another thread) and
//! when it fires, so the steady state is an atomic load and a waker comparison.
//!
//! Registered wakers live in a [`Slab`], each under the index its future keeps: a slab entry
//! per waiting connection, not a slot in a hash map that doubles as connections arrive
//! (issue 19).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::poison::lock_ignoring_poison;
use crate::slab::Slab;
use tokio_util::sync::CancellationToken;

/// A one-shot broadcast: once fired, every [`Latch::fired`] future resolves.
#[derive(Clone, Default)]
pub struct Latch {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    fired: AtomicBool,
    /// The wakers of the waiters registered so far; emptied when the signal fires.
    waiters: Mutex<Slab<Waker>>,
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
        let mut waiters = std::mem::take(&mut *lock_ignoring_poison(&self.inner.waiters));
        for waker in waiters.take() {
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
            key: None,
            registered: None,
        }
    }
}

/// Resolves once its [`Latch`] has fired.
pub struct Fired {
    inner: Arc<Inner>,
    /// Where its waker is registered, once it is (a `u32`, as the slab's indices are, to keep
    /// the future as small as it was: every connection's task holds one).
    key: Option<u32>,
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
        let key = {
            let mut waiters = lock_ignoring_poison(&self.inner.waiters);
            // Checked again under the lock: `fire` may have emptied the slab just now.
            if self.inner.fired.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            match self.key.and_then(|key| waiters.get_mut(key as usize)) {
                Some(registered) => {
                    *registered = waker.clone();
                    self.key
                }
                None => Some(waiters.insert(waker.clone()) as u32),
            }
        };
        self.key = key;
        self.registered = Some(waker);
        Poll::Pending
    }
}

impl Drop for Fired {
    fn drop(&mut self) {
        // Once the signal has fired the slab is empty for good (nobody registers after that),
        // so the index cannot belong to another waiter by then.
        if let Some(key) = self.key {
            lock_ignoring_poison(&self.inner.waiters).remove(key as usize);
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
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 0);
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
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 0);
    }

    #[test]
    fn a_dropped_waiters_place_is_reused_and_fire_wakes_the_rest() {
        let signal = Latch::new();
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        let mut waiters: Vec<_> = (0..3).map(|_| Box::pin(signal.fired())).collect();
        for w in &mut waiters {
            assert!(w.as_mut().poll(&mut cx).is_pending());
        }
        let dropped = waiters.remove(1).key;
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 2);
        let mut late = Box::pin(signal.fired());
        assert!(late.as_mut().poll(&mut cx).is_pending());
        assert_eq!(late.key, dropped, "the freed place is taken again");
        assert_eq!(
            signal.inner.waiters.lock().unwrap().capacity(),
            crate::slab::CHUNK
        );
        signal.fire();
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 0);
        for w in waiters.iter_mut().chain([&mut late]) {
            assert!(w.as_mut().poll(&mut cx).is_ready());
        }
        // Dropping them after the fire touches nothing.
        drop((waiters, late));
        assert_eq!(signal.inner.waiters.lock().unwrap().len(), 0);
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }
}
