//! What the process keeps per served queue: its keys and name, its metric handles, the
//! jobs it holds there, and the signals that wake its claim loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use workq_common::internal::QueueKeys;

use super::held::HeldJobs;
use crate::metrics::QueueMetrics;

/// One served queue's state, shared by the loops (`Shared::queues`, indexed like the
/// queues were given to the builder).
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) keys: QueueKeys,
    /// The queue's name, shared with every attempt's context.
    pub(crate) name: Arc<str>,
    /// Metric handles, resolved once.
    pub(crate) metrics: QueueMetrics,
    /// The jobs this process holds in the queue.
    pub(crate) held: HeldJobs,
    /// A slot was freed (wakes a claim loop that had none).
    pub(crate) slot_freed: Notify,
    /// A producer published new work.
    pub(crate) wake: Notify,
    /// Redis' time in the latest claim reply (jobs claimed well before it are known to
    /// this process, unless their reply was lost).
    last_reply_ms: AtomicU64,
}

impl Queue {
    pub(crate) fn new(keys: QueueKeys, metrics: QueueMetrics) -> Self {
        Queue {
            name: Arc::from(keys.name()),
            keys,
            metrics,
            held: HeldJobs::default(),
            slot_freed: Notify::new(),
            wake: Notify::new(),
            last_reply_ms: AtomicU64::new(0),
        }
    }

    /// Records Redis' time in a claim reply.
    pub(crate) fn claim_replied(&self, now_ms: u64) {
        self.last_reply_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Redis' time up to which every claim reply has arrived, unless lost: a reply can be
    /// in flight at most for `in_flight`, counted back from the latest one.
    pub(crate) fn known_until(&self, in_flight: Duration) -> u64 {
        self.last_reply_ms
            .load(Ordering::Relaxed)
            .saturating_sub(workq_common::time::ms(in_flight))
    }
}
