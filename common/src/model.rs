use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type of work: its input type, and the name (`KIND`) that routes a stored job to the
/// [`Worker`](https://docs.rs/workq-worker) registered for it. Producers and workers share
/// these types, usually through a small crate of their own.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name stored with each job. Renaming it strands jobs already queued.
    const KIND: &'static str;
}

/// Where a unit of work is in its life. Finished states are terminal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum WorkState {
    /// Waiting for its due time, or due and waiting for a worker.
    Enqueued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully: a terminal failure, or out of attempts.
    Failed,
    /// Cancelled before it could finish.
    Cancelled,
    /// Waiting for prerequisite work (chains). Reserved in the format.
    Blocked,
}

impl WorkState {
    /// Every state, in code order.
    pub const ALL: [WorkState; 6] = [
        WorkState::Enqueued,
        WorkState::Running,
        WorkState::Succeeded,
        WorkState::Failed,
        WorkState::Cancelled,
        WorkState::Blocked,
    ];

    /// The number stored in records and scripts.
    pub fn code(self) -> u8 {
        match self {
            WorkState::Enqueued => 0,
            WorkState::Running => 1,
            WorkState::Succeeded => 2,
            WorkState::Failed => 3,
            WorkState::Cancelled => 4,
            WorkState::Blocked => 5,
        }
    }

    /// The state stored as `code`, if there is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// True for SUCCEEDED, FAILED and CANCELLED.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            WorkState::Succeeded | WorkState::Failed | WorkState::Cancelled
        )
    }

    /// Upper-case name, as WorkManager prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Enqueued => "ENQUEUED",
            WorkState::Running => "RUNNING",
            WorkState::Succeeded => "SUCCEEDED",
            WorkState::Failed => "FAILED",
            WorkState::Cancelled => "CANCELLED",
            WorkState::Blocked => "BLOCKED",
        }
    }
}

impl fmt::Display for WorkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the delay before a retry grows with the number of attempts made (WorkManager's
/// `BackoffPolicy`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum BackoffPolicy {
    /// `initial * attempts`.
    Linear,
    /// `initial * 2^(attempts - 1)`.
    Exponential,
}

/// Retry delay: a policy, the first delay, and a cap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct Backoff {
    /// How the delay grows.
    pub policy: BackoffPolicy,
    /// The delay after the first failed attempt.
    pub initial: Duration,
    /// No delay is longer than this.
    pub max: Duration,
}

impl Backoff {
    /// A backoff growing by `policy` from `initial`, capped at `max`.
    pub const fn new(policy: BackoffPolicy, initial: Duration, max: Duration) -> Self {
        Backoff {
            policy,
            initial,
            max,
        }
    }

    /// The delay before the next attempt once `attempts` attempts have failed (the same
    /// formula the scripts apply; `attempts` counts from 1).
    pub fn delay(&self, attempts: u32) -> Duration {
        let initial = self.initial.as_millis() as f64;
        let n = f64::from(attempts.max(1));
        let ms = match self.policy {
            BackoffPolicy::Linear => initial * n,
            BackoffPolicy::Exponential => initial * 2f64.powf((n - 1.0).min(61.0)),
        };
        Duration::from_millis(ms.min(self.max.as_millis() as f64) as u64)
    }
}

/// WorkManager's default: exponential from 30 s, capped at 5 hours.
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    policy: BackoffPolicy::Exponential,
    initial: Duration::from_secs(30),
    max: Duration::from_secs(5 * 3600),
};

/// Attempts a job gets unless its request says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// The largest `max_attempts` a request may ask for (attempt numbers are fencing tokens
/// and must stay exact).
pub const MAX_ATTEMPTS_LIMIT: u32 = 1_000_000;

/// The queue used when a request names none.
pub const DEFAULT_QUEUE: &str = "default";

/// How long finished jobs stay queryable before they are pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// For SUCCEEDED jobs. Zero deletes them as they finish.
    pub succeeded: Duration,
    /// For FAILED and CANCELLED jobs.
    pub failed: Duration,
}

impl Retention {
    /// Successes kept for `succeeded`, failures and cancellations for `failed`.
    pub const fn new(succeeded: Duration, failed: Duration) -> Self {
        Retention { succeeded, failed }
    }
}

impl Default for Retention {
    /// One hour for successes, seven days for failures and cancellations.
    fn default() -> Self {
        Retention {
            succeeded: Duration::from_secs(3600),
            failed: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What enqueue did with one job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnqueueStatus {
    /// Stored, ENQUEUED (the same name as [`GraphStatus::Enqueued`]).
    Enqueued,
    /// A job with this id exists already; nothing changed.
    Existed,
}

/// What enqueuing a chain, unique or periodic work did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GraphStatus {
    /// The graph was stored; the ids are its jobs.
    Enqueued,
    /// Unique work under the name was unfinished and the policy kept it; the ids are its.
    Kept,
    /// The graph had been stored before (a retry); nothing changed.
    Existed,
    /// The unique periodic work was updated in place; the id is its.
    Updated,
}

/// What cancel did with one id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelStatus {
    /// No such job in this queue.
    NotFound,
    /// It was waiting and is now CANCELLED.
    Cancelled,
    /// It is running; its worker will stop it at the next heartbeat.
    Requested,
    /// It had already finished.
    AlreadyFinished,
}

impl From<EnqueueStatus> for GraphStatus {
    /// A single job enqueued on its own, reported as a graph of one.
    fn from(s: EnqueueStatus) -> Self {
        match s {
            EnqueueStatus::Enqueued => GraphStatus::Enqueued,
            EnqueueStatus::Existed => GraphStatus::Existed,
        }
    }
}
