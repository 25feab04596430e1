//! Stopping a run early from outside (Ctrl-C, SIGTERM): the run finishes the rows it can,
//! abandons the measurement under way, and still reports everything it measured.

use std::sync::{Arc, Mutex};

use echotool_core::CancellationToken;
use echotool_core::lock_ignoring_poison;

/// A request to stop a benchmark run early, shared between whoever catches the signal and
/// the run.
#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Interrupt {
    /// An interrupt that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run; `reason` (e.g. `SIGINT`) goes into the report. Only the first reason
    /// is kept.
    pub fn trigger(&self, reason: &str) {
        let mut kept = lock_ignoring_poison(&self.reason);
        kept.get_or_insert_with(|| reason.to_string());
        self.token.cancel();
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        lock_ignoring_poison(&self.reason).clone()
    }

    /// Whether the run was stopped.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the run is stopped.
    pub(crate) async fn triggered(&self) {
        self.token.cancelled().await;
    }
}
