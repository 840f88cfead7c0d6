use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;
use workq_common::WorkId;

/// Fires once, when an attempt must stop (cancelled, or its job was lost).
#[derive(Debug, Default)]
pub(crate) struct CancelSignal {
    fired: AtomicBool,
    notify: Notify,
}

impl CancelSignal {
    pub(crate) fn fire(&self) {
        if !self.fired.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    pub(crate) async fn fired(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a fire in between is not missed.
            notified.as_mut().enable();
            if self.is_fired() {
                return;
            }
            notified.await;
        }
    }
}

/// What a running attempt knows about itself.
#[derive(Clone, Debug)]
pub struct WorkContext {
    pub(crate) id: WorkId,
    pub(crate) queue: Arc<str>,
    pub(crate) kind: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) tags: Vec<String>,
    pub(crate) enqueued_at: SystemTime,
    pub(crate) cancel: Arc<CancelSignal>,
}

impl WorkContext {
    /// The job's id.
    pub fn id(&self) -> WorkId {
        self.id
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Its kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// This attempt's number, from 1 (WorkManager's `runAttemptCount`, plus one).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The job's tags.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// When the job was enqueued (Redis time).
    pub fn enqueued_at(&self) -> SystemTime {
        self.enqueued_at
    }

    /// True once the work was cancelled (or this worker lost the job): stop soon.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_fired()
    }

    /// Resolves when the work is cancelled. The attempt then has the runtime's cancel
    /// grace period to return before it is dropped.
    pub async fn cancelled(&self) {
        self.cancel.fired().await;
    }
}
