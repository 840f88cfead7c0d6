//! Periodic work (WorkManager's `enqueue(PeriodicWorkRequest)` and
//! `enqueueUniquePeriodicWork`). A periodic job is stored like one-time work
//! (`enqueue.lua`), or as unique work (`enqueue_graph.lua`); its schedule is in its options.

use workq_common::internal::scripts::UniquePolicy;
use workq_common::{Error, Millis, Result};

use crate::{PeriodicWorkRequest, WorkManager, WorkOutcome};

/// What to do when unique periodic work of the same name exists (WorkManager's
/// `ExistingPeriodicWorkPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExistingPeriodicWorkPolicy {
    /// Keep the existing periodic work.
    Keep,
    /// Keep its id and schedule, take the new kind, input and options (a run in progress
    /// finishes with the old ones).
    Update,
    /// Cancel it and enqueue the new one.
    CancelAndReenqueue,
}

impl ExistingPeriodicWorkPolicy {
    fn script_policy(self) -> UniquePolicy {
        match self {
            ExistingPeriodicWorkPolicy::Keep => UniquePolicy::Keep,
            ExistingPeriodicWorkPolicy::Update => UniquePolicy::Update,
            ExistingPeriodicWorkPolicy::CancelAndReenqueue => UniquePolicy::CancelAndReenqueue,
        }
    }
}

impl WorkManager {
    /// Enqueues periodic work.
    pub async fn enqueue_periodic(&self, req: PeriodicWorkRequest) -> Result<WorkOutcome> {
        self.enqueue_periodic_as(None, req).await
    }

    /// Enqueues periodic work as unique work `name` (WorkManager's
    /// `enqueueUniquePeriodicWork`).
    pub async fn enqueue_unique_periodic_work(
        &self,
        name: &str,
        policy: ExistingPeriodicWorkPolicy,
        req: PeriodicWorkRequest,
    ) -> Result<WorkOutcome> {
        self.enqueue_periodic_as(Some((name, policy.script_policy())), req)
            .await
    }

    async fn enqueue_periodic_as(
        &self,
        unique: Option<(&str, UniquePolicy)>,
        req: PeriodicWorkRequest,
    ) -> Result<WorkOutcome> {
        let PeriodicWorkRequest { mut req, cron } = req;
        if let Some(cron) = cron {
            // Cron times are absolute: count them from Redis' clock, not this machine's.
            let now = self.redis_now().await?;
            let first = cron.next_after(now).ok_or_else(|| {
                Error::invalid("cron", format!("cron '{}' never fires", cron.as_str()))
            })?;
            req.at = Some(workq_common::time::system_time(first));
            req.ext.next_period_ms = cron.next_after(first);
        }
        match unique {
            None => {
                let out = self.enqueue(req).await?;
                Ok(WorkOutcome {
                    status: out.status.into(),
                    ids: vec![out.id],
                })
            }
            Some((name, policy)) => {
                self.begin_with([req])
                    .store(Some((name.to_owned(), policy)))
                    .await
            }
        }
    }

    /// Redis' present time.
    pub(crate) async fn redis_now(&self) -> Result<Millis> {
        self.redis()
            .run(|mut con| async move {
                let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await?;
                Ok(s * 1000 + us / 1000)
            })
            .await
    }
}
