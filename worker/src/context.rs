use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;
use workq_common::WorkId;

/// What a running attempt knows about itself.
#[derive(Clone, Debug)]
pub struct WorkContext {
    pub(crate) id: WorkId,
    pub(crate) queue: Arc<str>,
    pub(crate) kind: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) tags: Vec<String>,
    pub(crate) enqueued_at: SystemTime,
    pub(crate) cancel: watch::Receiver<bool>,
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
        *self.cancel.borrow()
    }

    /// Resolves when the work is cancelled. The attempt then has the runtime's cancel
    /// grace period to return before it is dropped.
    pub async fn cancelled(&self) {
        let mut rx = self.cancel.clone();
        // An Err means the runtime dropped the sender: the attempt is being torn down.
        let _ = rx.wait_for(|c| *c).await;
    }
}
