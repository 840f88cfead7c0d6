//! Watching work (WorkManager's `getWorkInfo...Flow`): [`WorkManager::watch`] follows a
//! job, a tag or a unique name as a stream of `WorkInfo` (`stream.rs`), built on
//! [`WorkManager::watch_queue`], one queue's events (`queue.rs`).

use tokio::sync::mpsc;
use workq_common::internal::keys::WATCHING;
use workq_common::internal::QueueKeys;
use workq_common::{Result, WorkId, WorkInfo};

use crate::WorkManager;
use stream::{discover, follow};

mod queue;
mod stream;

pub use queue::{QueueWatch, WorkEvent};
pub(crate) use queue::{WATCH_REFRESH, WATCH_TTL};
pub use stream::WorkInfoStream;

/// What a watch follows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchTarget {
    /// One job.
    Id(WorkId),
    /// Every job with the tag.
    Tag(String),
    /// The work of a unique name.
    UniqueName(String),
}

impl WorkManager {
    /// A stream of the target's `WorkInfo`, one item per state change (and per progress
    /// report) that happens after this call returns, in order, from any process. Each
    /// item has the state and attempt of that change; the other fields are read when the
    /// change arrives. A dropped Redis connection is re-established and the stream resumes
    /// after the last change it delivered.
    ///
    /// For an id already enqueued it follows that job's queue. Otherwise it follows every
    /// queue, and also queues that appear later (looked for every second, and read from
    /// the moment this call was made, so their first changes are not missed); to follow
    /// just one queue, use [`watch_in`](Self::watch_in).
    pub async fn watch(&self, target: WatchTarget) -> Result<WorkInfoStream> {
        if let WatchTarget::Id(id) = &target {
            if let Some(info) = self.get_work_info(*id).await? {
                return Ok(self.watch_queues(vec![info.queue], target).await?.0);
            }
        }
        // Announce the watch before listing the queues: a producer that adds a queue after
        // the listing sees the announcement and marks the queue watched before enqueueing.
        let since = self.announce_watching().await?;
        let mut queues = self.queues().await?;
        if !queues.iter().any(|q| q == workq_common::DEFAULT_QUEUE) {
            queues.push(workq_common::DEFAULT_QUEUE.to_owned());
        }
        let (mut stream, tx) = self.watch_queues(queues.clone(), target.clone()).await?;
        let wm = self.clone();
        stream.tasks.push(tokio::spawn(async move {
            discover(wm, queues.into_iter().collect(), since, target, tx).await;
        }));
        Ok(stream)
    }

    /// Sets `workq:watching` and returns Redis's present time in ms.
    async fn announce_watching(&self) -> Result<u64> {
        self.redis()
            .run(|mut con| async move {
                let ttl = workq_common::time::ms(WATCH_TTL);
                let ((), (secs, micros)): ((), (u64, u64)) = redis::pipe()
                    .pset_ex(WATCHING, 1, ttl)
                    .cmd("TIME")
                    .query_async(&mut con)
                    .await?;
                Ok(secs * 1000 + micros / 1000)
            })
            .await
    }

    /// Like [`watch`](Self::watch), in one queue, which need not hold any work yet.
    pub async fn watch_in(&self, queue: &str, target: WatchTarget) -> Result<WorkInfoStream> {
        Ok(self.watch_queues(vec![queue.to_owned()], target).await?.0)
    }

    async fn watch_queues(
        &self,
        queues: Vec<String>,
        target: WatchTarget,
    ) -> Result<(WorkInfoStream, mpsc::Sender<Result<WorkInfo>>)> {
        let (tx, rx) = mpsc::channel(1024);
        let mut tasks = Vec::new();
        for q in queues {
            let w = self.watch_queue(&q).await?;
            tasks.push(tokio::spawn(follow(
                self.clone(),
                w,
                target.clone(),
                tx.clone(),
            )));
        }
        // The stream ends when every task holding a sender has ended.
        Ok((WorkInfoStream { rx, tasks }, tx))
    }

    /// Starts watching a queue's state changes. Events that happen after this call returns
    /// are delivered in order; see [`QueueWatch`].
    pub async fn watch_queue(&self, queue: &str) -> Result<QueueWatch> {
        self.watch_queue_from(QueueKeys::new(queue)?, None).await
    }

    /// Like [`watch_queue`](Self::watch_queue), reading from `from_ms` (Redis time) when
    /// given.
    async fn watch_queue_from(&self, keys: QueueKeys, from_ms: Option<u64>) -> Result<QueueWatch> {
        QueueWatch::start(self.redis().dedicated(), keys, from_ms).await
    }
}
