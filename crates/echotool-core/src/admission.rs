//! Who gets in, who is thrown out, and who is waited for at shutdown: the connection limit of
//! a listener, the idle timeout of its connections (the sweep of [`crate::idle`]), their tasks,
//! and the drain. Shared by every connection-oriented server (the stream listener for TCP and
//! TLS, and QUIC).
//!
//! Every connection holds its slot under the limit for as long as it runs, so the drain waits
//! for all slots to come back rather than keeping a handle per task: under a sweep, the
//! sweep's own entry is the only thing kept per connection (issue 19: a `JoinSet` entry was
//! another allocation for every idle connection).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub(crate) use crate::idle::Activity;
use crate::idle::IdleSweep;
use crate::{EchoStats, Limits, OnLimit};

/// The connection limit and the connection tasks of one listener.
pub struct Admission {
    /// One permit per connection that may be open; each connection holds its own until it
    /// ends, so all of them back means every connection has ended.
    permits: Arc<Semaphore>,
    /// How many permits there are.
    max_conns: usize,
    /// What happens beyond the limit.
    on_limit: OnLimit,
    /// How long connections may finish at shutdown.
    drain_timeout: Duration,
    /// Without an idle sweep, every connection's task, to abort after the drain timeout.
    /// (Aborting costs a connection nothing while it runs, unlike a cancellation future
    /// polled beside it on every wake-up.) With a sweep, the sweep's entries do this.
    tasks: JoinSet<()>,
    /// The idle sweep, when there is an idle timeout.
    idle: Option<IdleSweep>,
}

/// A slot held from before `accept`; empty unless the policy is to wait.
pub struct Reserved(Option<OwnedSemaphorePermit>);

/// A connection's place under the limit, released when dropped.
pub type Slot = OwnedSemaphorePermit;

impl Admission {
    /// Admission under `limits`; with an idle timeout, starts the sweeper (needs a runtime).
    pub fn new(limits: &Limits) -> Self {
        let max_conns = limits.max_conns.max(1);
        Admission {
            permits: Arc::new(Semaphore::new(max_conns)),
            max_conns,
            on_limit: limits.on_limit,
            drain_timeout: limits.drain_timeout,
            tasks: JoinSet::new(),
            idle: limits.idle_timeout.map(IdleSweep::start),
        }
    }

    /// Call before accepting. When the policy is to wait, waits for a free slot, so that
    /// clients beyond the limit wait in the kernel's (or QUIC endpoint's) queue instead of
    /// being accepted. `None` when shutdown comes first.
    pub async fn reserve(&self, shutdown: &CancellationToken) -> Option<Reserved> {
        match self.on_limit {
            OnLimit::Refuse => Some(Reserved(None)),
            OnLimit::Wait => tokio::select! {
                permit = self.permits.clone().acquire_owned() => permit.ok().map(|p| Reserved(Some(p))),
                () = shutdown.cancelled() => None,
            },
        }
    }

    /// Call after accepting: the connection's slot, or `None` (counted as refused in `stats`)
    /// when the policy is to refuse and the listener is full; the caller then closes it.
    pub fn admit(&self, reserved: Reserved, stats: &EchoStats) -> Option<Slot> {
        if let Some(permit) = reserved.0 {
            return Some(permit);
        }
        let permit = self.permits.clone().try_acquire_owned().ok();
        if permit.is_none() {
            stats.refused.fetch_add(1, Relaxed);
        }
        permit
    }

    /// Runs a connection until it ends, the idle sweep ends it, or the drain is cut. The
    /// connection gets its slot, which it must hold for as long as it runs (the drain waits
    /// for every slot), and its [`Activity`] mark to touch after each message.
    pub fn spawn<F>(&mut self, slot: Slot, connection: impl FnOnce(Slot, Activity) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(idle) = &self.idle else {
            // Finished connections leave their (empty) results behind; collect them as we go.
            while self.tasks.try_join_next().is_some() {}
            self.tasks.spawn(connection(slot, Activity::unwatched()));
            return;
        };
        // Not joined: the drain waits for the slot, and the sweep can abort it.
        idle.watch(|activity| tokio::spawn(connection(slot, activity)).abort_handle());
    }

    /// Connections open now.
    fn open(&self) -> usize {
        self.max_conns
            .saturating_sub(self.permits.available_permits())
    }

    /// Admits no more and waits for the connections to finish; after the drain timeout, cuts
    /// the rest. `url` names the listener in the warning.
    pub async fn drain(mut self, url: &str) {
        if let Some(idle) = &self.idle {
            idle.stop();
        }
        let permits = self.permits.clone();
        let max_conns = self.max_conns;
        if tokio::time::timeout(self.drain_timeout, all_back(&permits, max_conns))
            .await
            .is_err()
        {
            warn!(listener = %url, open = self.open(), "drain timeout passed; closing the rest");
            self.tasks.abort_all();
            if let Some(idle) = &self.idle {
                idle.abort_all();
            }
            all_back(&permits, max_conns).await;
        }
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Waits until all `max_conns` slots are back: every connection has ended (an aborted one
/// gives its slot back as its task drops it).
async fn all_back(permits: &Semaphore, max_conns: usize) {
    let mut held = Vec::new();
    let mut left = max_conns;
    while left > 0 {
        let n = u32::try_from(left).unwrap_or(u32::MAX);
        match permits.acquire_many(n).await {
            Ok(permit) => held.push(permit),
            // Closed: nobody can hold a slot any more.
            Err(_) => return,
        }
        left -= n as usize;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_sweep_ends_idle_connections_and_spares_busy_ones() {
        let limits = Limits {
            idle_timeout: Some(Duration::from_secs(1)),
            ..Limits::default()
        };
        let mut admission = Admission::new(&limits);
        let (shutdown, stats) = (CancellationToken::new(), EchoStats::default());
        let (idle_done, busy_done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let flag = idle_done.clone();
        let reserved = admission.reserve(&shutdown).await.expect("a slot");
        let slot = admission.admit(reserved, &stats).expect("admitted");
        admission.spawn(slot, move |slot, _activity| async move {
            let _slot = slot;
            // Never touches its activity mark.
            std::future::pending::<()>().await;
            flag.store(1, Relaxed);
        });
        let flag = busy_done.clone();
        let reserved = admission.reserve(&shutdown).await.expect("a slot");
        let slot = admission.admit(reserved, &stats).expect("admitted");
        admission.spawn(slot, move |slot, activity| async move {
            let _slot = slot;
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                activity.touch();
            }
            flag.store(1, Relaxed);
        });
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(
            admission.open(),
            1,
            "the idle one was ended, the busy one runs"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(busy_done.load(Relaxed), 1, "the busy one ran to its end");
        assert_eq!(
            idle_done.load(Relaxed),
            0,
            "the idle one never finished by itself"
        );
        assert_eq!(admission.open(), 0);
        tokio::time::timeout(Duration::from_secs(1), admission.drain("test://"))
            .await
            .expect("nothing left to drain");
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_waits_then_cuts_with_and_without_a_sweep() {
        for idle_timeout in [Some(Duration::from_secs(3600)), None] {
            let limits = Limits {
                idle_timeout,
                drain_timeout: Duration::from_secs(2),
                ..Limits::default()
            };
            let mut admission = Admission::new(&limits);
            let (shutdown, stats) = (CancellationToken::new(), EchoStats::default());
            for _ in 0..2 {
                let reserved = admission.reserve(&shutdown).await.expect("a slot");
                let slot = admission.admit(reserved, &stats).expect("admitted");
                admission.spawn(slot, |slot, _| async move {
                    let _slot = slot;
                    std::future::pending::<()>().await;
                });
            }
            let start = tokio::time::Instant::now();
            tokio::time::timeout(Duration::from_secs(10), admission.drain("test://"))
                .await
                .expect("the drain cuts what is left");
            assert_eq!(start.elapsed(), Duration::from_secs(2), "{idle_timeout:?}");
        }
    }
}
