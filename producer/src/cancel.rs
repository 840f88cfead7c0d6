//! Cancelling work by id, by tag or by unique name (`cancel.lua`), and pruning finished
//! work (`prune.lua`).

use workq_common::internal::scripts::{scripts, CancelStatus};
use workq_common::internal::QueueKeys;
use workq_common::{Result, WorkId};

use crate::queries::ID_CHUNK;
use crate::WorkManager;

/// Jobs pruned per script call by [`WorkManager::prune_work`].
const PRUNE_BATCH: usize = 1000;

/// Totals of a cancel by tag or by unique name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelSummary {
    /// Waiting jobs now CANCELLED (jobs cancelled with an ancestor in the same call too).
    pub cancelled: usize,
    /// Running jobs whose workers were asked to stop.
    pub requested: usize,
    /// Jobs that had finished before the call.
    pub already_finished: usize,
}

impl std::ops::AddAssign for CancelSummary {
    fn add_assign(&mut self, o: Self) {
        self.cancelled += o.cancelled;
        self.requested += o.requested;
        self.already_finished += o.already_finished;
    }
}

impl WorkManager {
    /// Cancels one unit of work. Waiting work becomes CANCELLED at once; running work is
    /// stopped by its worker within one heartbeat and ends CANCELLED with no retry.
    pub async fn cancel_work_by_id(&self, id: WorkId) -> Result<CancelStatus> {
        let Some(info) = self.get_work_info(id).await? else {
            return Ok(CancelStatus::NotFound);
        };
        let keys = QueueKeys::new(&info.queue)?;
        let st = self
            .cancel_call(&keys, "cancelled by request", &[id.to_string()])
            .await?;
        Ok(st.first().copied().unwrap_or(CancelStatus::NotFound))
    }

    /// Cancels all work carrying `tag`, in every queue.
    pub async fn cancel_all_work_by_tag(&self, tag: &str) -> Result<CancelSummary> {
        let mut sum = CancelSummary::default();
        let reason = format!("cancelled by tag '{tag}'");
        for q in self.queue_keys().await? {
            let ids = self.tag_members(&q, tag).await?;
            sum += self.cancel_ids(&q, &ids, &reason).await?;
        }
        Ok(sum)
    }

    /// Cancels the unfinished work of a unique name (WorkManager's `cancelUniqueWork`).
    pub async fn cancel_unique_work(&self, name: &str) -> Result<CancelSummary> {
        let mut sum = CancelSummary::default();
        let reason = format!("unique work '{name}' cancelled");
        for q in self.queue_keys().await? {
            let ids: Vec<String> = self
                .unique_ids(&q, &[name.to_owned()])
                .await?
                .iter()
                .map(WorkId::to_string)
                .collect();
            // One call per queue: the name's work is cancelled all at once.
            sum += self.cancel_ids(&q, &ids, &reason).await?;
        }
        Ok(sum)
    }

    /// Cancels these jobs of one queue, `ID_CHUNK` per script call.
    async fn cancel_ids(
        &self,
        q: &QueueKeys,
        ids: &[String],
        reason: &str,
    ) -> Result<CancelSummary> {
        let mut sum = CancelSummary::default();
        for chunk in ids.chunks(ID_CHUNK) {
            for st in self.cancel_call(q, reason, chunk).await? {
                match st {
                    CancelStatus::Cancelled => sum.cancelled += 1,
                    CancelStatus::Requested => sum.requested += 1,
                    CancelStatus::AlreadyFinished => sum.already_finished += 1,
                    // NotFound, and whatever a later version may add.
                    _ => {}
                }
            }
        }
        Ok(sum)
    }

    /// One call of `cancel.lua`: these jobs of one queue, with this reason.
    async fn cancel_call(
        &self,
        q: &QueueKeys,
        reason: &str,
        ids: &[String],
    ) -> Result<Vec<CancelStatus>> {
        let keep_failed = self.keep_failed();
        let durability = self.durability();
        self.redis()
            .run(|mut con| async move {
                let out = scripts()
                    .cancel(&mut con, q, keep_failed, reason, ids)
                    .await?;
                durability.confirm(&mut con, q.prefix(), "cancel").await?;
                Ok(out)
            })
            .await
    }

    /// Prunes every finished job now, whatever its retention (WorkManager's `pruneWork`);
    /// returns how many.
    pub async fn prune_work(&self) -> Result<usize> {
        let mut total = 0;
        for name in self.queues().await? {
            total += self.prune_work_in(&name).await?;
        }
        Ok(total)
    }

    /// Like [`prune_work`](Self::prune_work), in one queue only: the finished jobs of
    /// other queues stay until their retention ends.
    pub async fn prune_work_in(&self, queue: &str) -> Result<usize> {
        let keys = &QueueKeys::new(queue)?;
        let mut total = 0;
        loop {
            let n = self
                .redis()
                .run(|mut con| async move { scripts().prune(&mut con, keys, PRUNE_BATCH).await })
                .await?;
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}
