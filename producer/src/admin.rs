//! An operator's actions (`admin.lua`): pause and resume a queue, retry, run now, delete
//! and purge jobs (the listings are in `listing.rs`, the workers in `workers.rs`). Every
//! call is bounded: by the ids it is given, or by a page (at most [`MAX_PAGE`] entries of
//! the queue's `done` index looked at); the whole-queue operations ([`WorkManager::retry_all_failed`],
//! [`WorkManager::purge`]) are loops of such calls, which may be interrupted between any
//! two of them without harm.

use std::collections::HashMap;

use redis::AsyncCommands;
use workq_common::internal::scripts::{scripts, AdminOp, PurgeStep};
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result, WorkId, WorkInfo, WorkState};

pub use workq_common::internal::scripts::AdminStatus;

use crate::queries::{read_infos, ID_CHUNK};
use crate::{WorkManager, MAX_PAGE};

/// Where a whole-queue operation has got to: pass the same one to each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BulkCursor {
    start: u64,
    done: bool,
    /// Jobs the operation has changed so far.
    pub changed: u64,
}

impl BulkCursor {
    /// A new operation, from the start.
    pub fn new() -> Self {
        Self::default()
    }
    /// Whether the operation has gone through the whole queue.
    pub fn finished(&self) -> bool {
        self.done
    }
}

impl WorkManager {
    /// Pauses a queue: from their next claim, workers take nothing from it; attempts
    /// running finish, producers keep enqueueing, and maintenance (expired leases,
    /// pruning) goes on. Whether it was running before.
    pub async fn pause_queue(&self, queue: &str) -> Result<bool> {
        self.pause_flag(queue, AdminOp::Pause).await
    }

    /// Resumes a paused queue, waking its workers. Whether it was paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool> {
        self.pause_flag(queue, AdminOp::Resume).await
    }

    /// Pause or resume: whether it changed anything.
    async fn pause_flag(&self, queue: &str, op: AdminOp<'static>) -> Result<bool> {
        let keys = QueueKeys::new(queue)?;
        let (keys, op) = (&keys, &op);
        self.redis()
            .run(|mut con| async move { scripts().admin_flag(&mut con, keys, op).await })
            .await
    }

    /// Retries FAILED or CANCELLED jobs: each back to ENQUEUED and due now (BLOCKED if a
    /// parent in its chain has not succeeded), with its attempts counted from zero again
    /// for `max_attempts` and backoff (the attempt number, its fencing token, keeps
    /// growing, and the last error stays until the next attempt); the descendants that
    /// ended because it failed or was cancelled come back BLOCKED. Per id, in order.
    pub async fn retry_work(&self, ids: &[WorkId]) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::Retry(ids)).await
    }

    /// Makes ENQUEUED jobs that are due later (delayed, backing off, a periodic job's
    /// next run) due now. Per id: [`AdminStatus::AlreadyDue`] for one due already,
    /// [`AdminStatus::WrongState`] for one not ENQUEUED.
    pub async fn run_work_now(&self, ids: &[WorkId]) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::RunNow(ids)).await
    }

    /// Deletes jobs: the record and every index entry, as if never enqueued (a unique
    /// name forgets them). A RUNNING job is left alone ([`AdminStatus::WrongState`])
    /// unless `force`: then its worker's next heartbeat finds the lease lost and its
    /// result is refused. The descendants in a chain of a job that had not finished end
    /// CANCELLED ("parent <id> was cancelled"). No event is written for a deleted job.
    pub async fn delete_work(&self, ids: &[WorkId], force: bool) -> Result<Vec<AdminStatus>> {
        self.per_queue(ids, |ids| AdminOp::Delete { force, ids })
            .await
    }

    /// Runs `op` on the ids, grouped by the queue each is in, `ID_CHUNK` per call.
    async fn per_queue(
        &self,
        ids: &[WorkId],
        op: impl for<'a> Fn(&'a [String]) -> AdminOp<'a>,
    ) -> Result<Vec<AdminStatus>> {
        let mut out = vec![AdminStatus::NotFound; ids.len()];
        let mut queues: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, info) in self.get_work_infos(ids).await?.into_iter().enumerate() {
            if let Some(info) = info {
                queues.entry(info.queue).or_default().push(i);
            }
        }
        let keep_failed = self.keep_failed();
        for (queue, at) in queues {
            let keys = QueueKeys::new(&queue)?;
            for chunk in at.chunks(ID_CHUNK) {
                let names: Vec<String> = chunk.iter().map(|&i| ids[i].to_string()).collect();
                let keys = &keys;
                let op = op(&names);
                let op = &op;
                let st =
                    self.redis()
                        .run(|mut con| async move {
                            scripts().admin(&mut con, keys, keep_failed, op).await
                        })
                        .await?;
                for (&i, s) in chunk.iter().zip(st) {
                    out[i] = s;
                }
            }
        }
        Ok(out)
    }

    /// One step of retrying every FAILED job of a queue: looks at up to [`MAX_PAGE`]
    /// entries of the queue's finished jobs, retries the FAILED ones among them, and
    /// moves `cursor` on; returns how many it retried. Call until
    /// [`BulkCursor::finished`]; [`retry_all_failed`](Self::retry_all_failed) does.
    pub async fn retry_failed_step(&self, queue: &str, cursor: &mut BulkCursor) -> Result<u64> {
        if cursor.done {
            return Ok(0);
        }
        let keys = QueueKeys::new(queue)?;
        let start = cursor.start;
        let (ids, more): (Vec<String>, bool) = {
            let keys = &keys;
            self.redis()
                .run(|mut con| async move {
                    let end = start + MAX_PAGE as u64 - 1;
                    let ids: Vec<String> = con
                        .zrange(keys.done(), start as isize, end as isize)
                        .await?;
                    let total: u64 = con.zcard(keys.done()).await?;
                    Ok((ids, total > end + 1))
                })
                .await?
        };
        let infos = self.infos_in(&keys, &ids).await?;
        let failed: Vec<String> = infos
            .iter()
            .flatten()
            .filter(|i| i.state == WorkState::Failed)
            .map(|i| i.id.to_string())
            .collect();
        let mut retried = 0u64;
        if !failed.is_empty() {
            let keep_failed = self.keep_failed();
            let keys = &keys;
            let op = &AdminOp::Retry(&failed);
            let st = self
                .redis()
                .run(
                    |mut con| async move { scripts().admin(&mut con, keys, keep_failed, op).await },
                )
                .await?;
            retried = st.iter().filter(|s| **s == AdminStatus::Done).count() as u64;
        }
        // Retried jobs left `done`: the ones looked at and kept are before the next start.
        cursor.start = start + ids.len() as u64 - retried;
        cursor.changed += retried;
        cursor.done = !more;
        Ok(retried)
    }

    /// Retries every FAILED job of a queue ([`retry_work`](Self::retry_work)), in bounded
    /// steps; how many.
    pub async fn retry_all_failed(&self, queue: &str) -> Result<u64> {
        let mut cursor = BulkCursor::new();
        while !cursor.finished() {
            self.retry_failed_step(queue, &mut cursor).await?;
        }
        Ok(cursor.changed)
    }

    /// One step of purging a queue's finished jobs in `state` (SUCCEEDED, FAILED or
    /// CANCELLED; None for all three): deletes those among up to [`MAX_PAGE`] entries of
    /// its finished jobs and moves `cursor` on; returns how many it deleted.
    pub async fn purge_step(
        &self,
        queue: &str,
        state: Option<WorkState>,
        cursor: &mut BulkCursor,
    ) -> Result<u64> {
        if let Some(s) = state.filter(|s| !s.is_finished()) {
            return Err(Error::invalid(
                "state",
                format!(
                    "only finished jobs are purged (succeeded, failed, cancelled), not {}",
                    s.as_str()
                ),
            ));
        }
        if cursor.done {
            return Ok(0);
        }
        let keys = QueueKeys::new(queue)?;
        let op = AdminOp::Purge {
            state,
            start: cursor.start,
            count: MAX_PAGE as u64,
        };
        let (keys, op) = (&keys, &op);
        let step: PurgeStep = self
            .redis()
            .run(|mut con| async move { scripts().purge_step(&mut con, keys, op).await })
            .await?;
        cursor.start = step.next;
        cursor.changed += step.deleted;
        cursor.done = !step.more;
        Ok(step.deleted)
    }

    /// Purges a queue's finished jobs in `state` (None: all finished jobs) now, whatever
    /// their retention, in bounded steps; how many.
    pub async fn purge(&self, queue: &str, state: Option<WorkState>) -> Result<u64> {
        let mut cursor = BulkCursor::new();
        while !cursor.finished() {
            self.purge_step(queue, state, &mut cursor).await?;
        }
        Ok(cursor.changed)
    }

    /// The jobs of one queue with these ids (None for an id not there or not a job id).
    pub(crate) async fn infos_in(
        &self,
        keys: &QueueKeys,
        ids: &[String],
    ) -> Result<Vec<Option<WorkInfo>>> {
        let parsed: Vec<WorkId> = ids.iter().filter_map(|i| i.parse().ok()).collect();
        let (keys, parsed) = (std::slice::from_ref(keys), &parsed);
        self.redis()
            .run(|con| async move { read_infos(con, keys, parsed).await })
            .await
    }
}
