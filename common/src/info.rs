use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::de::DeserializeOwned;

use crate::record::Record;
use crate::{system_time, Data, Millis, Result, WorkId, WorkState};

/// What a producer can learn about a unit of work (WorkManager's `WorkInfo`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkInfo {
    /// The job's id.
    pub id: WorkId,
    /// Its kind.
    pub kind: String,
    /// The queue it lives in.
    pub queue: String,
    /// Its state.
    pub state: WorkState,
    /// Attempts started so far (WorkManager's `runAttemptCount`).
    pub run_attempt_count: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Its tags.
    pub tags: Vec<String>,
    /// The input it was enqueued with.
    pub input: Data,
    /// The output of a finished job, if its worker returned one.
    pub output: Option<Data>,
    /// The last error, or the stop reason of a cancelled job.
    pub last_error: Option<String>,
    /// When it was enqueued (Redis time).
    pub enqueued_at: SystemTime,
    /// When its latest attempt started.
    pub started_at: Option<SystemTime>,
    /// When it finished.
    pub finished_at: Option<SystemTime>,
    /// When it is due, while ENQUEUED.
    pub next_due_at: Option<SystemTime>,
    /// The worker holding its lease while RUNNING; afterwards, the worker of its latest
    /// attempt.
    pub worker: Option<String>,
    /// True when cancellation was requested while it was running.
    pub cancel_requested: bool,
    /// The latest progress its running attempt reported.
    pub progress: Option<Data>,
    /// The unique work name it was enqueued under.
    pub unique_name: Option<String>,
    /// The jobs it waits for in a chain.
    pub parents: Vec<WorkId>,
    /// The jobs that wait for it.
    pub children: Vec<WorkId>,
    /// Labels a worker needs to run it.
    pub required_labels: Vec<String>,
    /// Claimed ahead of normal work.
    pub expedited: bool,
    /// The schedule of periodic work.
    pub schedule: Option<Schedule>,
    /// The errors of its latest failed attempts, oldest first (at most
    /// [`limits::ERROR_HISTORY`](crate::limits::ERROR_HISTORY); `last_error` is the latest
    /// error or stop reason).
    pub errors: Vec<AttemptError>,
    /// Periodic work: how its latest period's run ended.
    pub last_run: Option<LastRun>,
    /// The request's metadata (with the producer's `otel` feature, the trace context it
    /// was enqueued in: `traceparent`, `tracestate`).
    pub metadata: BTreeMap<String, String>,
}

/// One failed attempt in a job's error history ([`WorkInfo::errors`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptError {
    /// The attempt's number, 1 for the job's first (periodic work counts on over its
    /// periods).
    pub attempt: u32,
    /// When it ended (Redis time).
    pub at: SystemTime,
    /// The error.
    pub message: String,
}

/// How a periodic job's latest period ended ([`WorkInfo::last_run`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastRun {
    /// [`WorkState::Succeeded`] or [`WorkState::Failed`] (out of attempts).
    pub outcome: WorkState,
    /// When it ended (Redis time).
    pub at: SystemTime,
}

/// When periodic work runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schedule {
    /// Once per `interval`, in the last `flex` of it.
    Interval {
        /// The period.
        interval: std::time::Duration,
        /// The window at the end of each period in which it runs.
        flex: std::time::Duration,
    },
    /// At the times a cron expression (UTC) names.
    Cron(String),
}

impl WorkInfo {
    /// Builds the info from a stored record, its due time (while ENQUEUED), and for a
    /// RUNNING job the stop reason (if asked to stop) and latest progress.
    pub fn from_record(
        id: WorkId,
        queue: &str,
        rec: &Record,
        due_ms: Option<Millis>,
        cancel_reason: Option<String>,
        progress: Option<Vec<u8>>,
    ) -> Self {
        let h = &rec.header;
        let attempt = rec.attempt.as_ref();
        let cancel_reason = cancel_reason.filter(|_| h.state == WorkState::Running);
        WorkInfo {
            id,
            kind: h.kind.clone(),
            queue: queue.to_owned(),
            state: h.state,
            run_attempt_count: h.attempts.saturating_sub(h.ext.period_base.unwrap_or(0)),
            max_attempts: h.ext.max_attempts(),
            tags: h.ext.tags.clone(),
            input: Data::from_bytes(rec.input().to_vec()),
            output: rec.output().map(|o| Data::from_bytes(o.to_vec())),
            cancel_requested: cancel_reason.is_some(),
            last_error: cancel_reason.or_else(|| h.ext.error.clone()),
            enqueued_at: system_time(h.enqueued_ms),
            started_at: attempt
                .map(|a| a.started_ms)
                .or(h.ext.started_ms)
                .map(system_time),
            finished_at: h.ext.finished_ms.map(system_time),
            next_due_at: due_ms
                .filter(|_| h.state == WorkState::Enqueued)
                .map(system_time),
            worker: attempt
                .map(|a| a.worker.clone())
                .or_else(|| h.ext.worker.clone()),
            progress: progress
                .filter(|_| h.state == WorkState::Running)
                .map(Data::from_bytes),
            unique_name: h.ext.unique_name.clone(),
            parents: h
                .ext
                .parents
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            children: h
                .ext
                .children
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            required_labels: h.ext.labels.clone(),
            expedited: h.ext.expedited.unwrap_or(false),
            schedule: match (&h.ext.cron, h.ext.interval_ms) {
                (Some(c), _) => Some(Schedule::Cron(c.clone())),
                (None, Some(i)) => Some(Schedule::Interval {
                    interval: crate::time::duration(i),
                    flex: crate::time::duration(h.ext.flex_ms.unwrap_or(i)),
                }),
                (None, None) => None,
            },
            errors: h
                .ext
                .errors
                .iter()
                .map(|(attempt, at, message)| AttemptError {
                    attempt: *attempt,
                    at: system_time(*at),
                    message: message.clone(),
                })
                .collect(),
            last_run: h.ext.last_run.and_then(|(code, at)| {
                Some(LastRun {
                    outcome: WorkState::from_code(code)?,
                    at: system_time(at),
                })
            }),
            metadata: h.ext.metadata.clone(),
        }
    }

    /// Decodes the output as `T`; `None` when the job has no output.
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.output.as_ref().map(Data::decode).transpose()
    }

    /// Decodes the latest progress as `T`; `None` when the job has reported none (or has
    /// finished: progress is kept only while a job runs).
    pub fn progress_as<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        self.progress.as_ref().map(Data::decode).transpose()
    }
}
