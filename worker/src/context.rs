use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use workq_common::internal::scripts::scripts;
use workq_common::internal::QueueKeys;
use workq_common::{Data, Error, Result, WorkId};

/// What a running attempt knows about itself.
#[derive(Clone, Debug)]
pub struct WorkContext {
    pub(crate) id: WorkId,
    pub(crate) queue: Arc<str>,
    pub(crate) kind: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) enqueued_at: SystemTime,
    /// Fires once, when the attempt must stop (cancelled, or its job was lost).
    pub(crate) cancel: CancellationToken,
    pub(crate) progress: Arc<ProgressSink>,
}

/// Where an attempt's progress goes: the job's entry in the queue's `progress` hash,
/// written under the attempt's fencing token.
#[derive(Debug)]
pub(crate) struct ProgressSink {
    pub(crate) pool: workq_common::internal::Pool,
    pub(crate) keys: QueueKeys,
    pub(crate) token: u32,
    pub(crate) max: usize,
    /// `workq_redis_call_duration_seconds{script="progress"}`.
    pub(crate) timing: prometheus::Histogram,
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

    /// The request's metadata, as the producer set it (`OneTimeWorkRequestBuilder::metadata`;
    /// with the producer's `otel` feature, also `traceparent` and `tracestate`).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// When the job was enqueued (Redis time).
    pub fn enqueued_at(&self) -> SystemTime {
        self.enqueued_at
    }

    /// True once the work was cancelled (or this worker lost the job): stop soon.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Reports progress (WorkManager's `setProgress`): producers see it in
    /// `WorkInfo::progress` and in watch streams while the attempt runs. Refused (with
    /// [`Error::Fenced`]) when this attempt no longer holds the job, and with
    /// [`Error::PayloadTooLarge`] over the runtime's progress limit.
    pub async fn set_progress<T: Serialize + ?Sized>(&self, progress: &T) -> Result<()> {
        let data = Data::encode(progress)?;
        let sink = &self.progress;
        if data.len() > sink.max {
            return Err(Error::PayloadTooLarge {
                what: "progress".into(),
                size: data.len(),
                limit: sink.max,
            });
        }
        let mut con = sink.pool.get().await?;
        let id = self.id.to_string();
        let timer = sink.timing.start_timer();
        let stored = scripts()
            .progress(&mut *con, &sink.keys, &id, sink.token, data.as_bytes())
            .await;
        drop(timer);
        if stored? {
            Ok(())
        } else {
            Err(Error::Fenced(format!(
                "job {id}: attempt {} no longer holds it",
                sink.token
            )))
        }
    }

    /// Resolves when the work is cancelled. The attempt then has the runtime's cancel
    /// grace period to return before it is dropped.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}
