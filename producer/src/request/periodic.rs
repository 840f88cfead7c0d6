//! Periodic work: [`PeriodicWorkRequest`] and its builder.

use std::time::Duration;

use workq_common::cron::CronSchedule;
use workq_common::{BackoffPolicy, Error, Job, Result, WorkId};

use super::ms;
use super::validate::check_window;
use super::{OneTimeWorkRequest, OneTimeWorkRequestBuilder};

/// Work that runs again and again (WorkManager's `PeriodicWorkRequest`): once per
/// interval, in a flex window at the end of each interval, or at the times of a cron
/// expression. It is never SUCCEEDED or FAILED: after each run it waits for the next
/// period, until it is cancelled. A failing run retries with its backoff within the period
/// without moving the schedule, and periods missed while no worker ran are run once, not
/// once each.
#[derive(Clone, Debug)]
pub struct PeriodicWorkRequest {
    pub(crate) req: OneTimeWorkRequest,
    pub(crate) cron: Option<CronSchedule>,
}

impl PeriodicWorkRequest {
    /// Runs `input` once per `interval` (at least 100 ms), by default as soon as each
    /// interval begins; see [`PeriodicWorkRequestBuilder::flex`].
    pub fn builder<J: Job>(input: J, interval: Duration) -> PeriodicWorkRequestBuilder {
        PeriodicWorkRequestBuilder::new(OneTimeWorkRequest::builder(input), Some(interval), None)
    }

    /// Runs `input` at the times of a cron expression (five fields, UTC; `@hourly`,
    /// `@daily` and the like too).
    pub fn cron<J: Job>(input: J, expr: &str) -> PeriodicWorkRequestBuilder {
        PeriodicWorkRequestBuilder::new(
            OneTimeWorkRequest::builder(input),
            None,
            Some(expr.to_owned()),
        )
    }

    /// The id the work will have.
    pub fn id(&self) -> WorkId {
        self.req.id
    }
}

/// Builder for [`PeriodicWorkRequest`].
#[derive(Debug)]
#[must_use = "call build() to get the request"]
pub struct PeriodicWorkRequestBuilder {
    inner: OneTimeWorkRequestBuilder,
    interval: Option<Duration>,
    flex: Option<Duration>,
    cron: Option<String>,
}

impl PeriodicWorkRequestBuilder {
    fn new(
        inner: OneTimeWorkRequestBuilder,
        interval: Option<Duration>,
        cron: Option<String>,
    ) -> Self {
        PeriodicWorkRequestBuilder {
            inner,
            interval,
            flex: None,
            cron,
        }
    }

    /// Runs within the last `flex` of each interval rather than at its start (WorkManager's
    /// flex interval). Default: the whole interval.
    pub fn flex(mut self, flex: Duration) -> Self {
        self.flex = Some(flex);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::id`].
    pub fn id(mut self, id: WorkId) -> Self {
        self.inner = self.inner.id(id);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::queue`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.inner = self.inner.queue(queue);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::tag`].
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.inner = self.inner.tag(tag);
        self
    }

    /// Retries of a failing run, within its period. See
    /// [`OneTimeWorkRequestBuilder::backoff`].
    pub fn backoff(mut self, policy: BackoffPolicy, initial: Duration) -> Self {
        self.inner = self.inner.backoff(policy, initial);
        self
    }

    /// Attempts per run (default 10); past them the run is over and the work waits for
    /// its next period.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.inner = self.inner.max_attempts(n);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.inner = self.inner.timeout(timeout);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::require_label`].
    pub fn require_label(mut self, label: impl Into<String>) -> Self {
        self.inner = self.inner.require_label(label);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::metadata`]. Every run of the work sees it (with
    /// the `otel` feature, each run's attempt continues the trace it was enqueued in).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner = self.inner.metadata(key, value);
        self
    }

    /// See [`OneTimeWorkRequestBuilder::metadata_map`].
    pub fn metadata_map<K: Into<String>, V: Into<String>>(
        mut self,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.inner = self.inner.metadata_map(entries);
        self
    }

    /// Checks the settings and encodes the input.
    pub fn build(self) -> Result<PeriodicWorkRequest> {
        let mut req = self.inner.build()?;
        let cron = match (self.interval, self.cron) {
            (Some(interval), None) => {
                let flex = self.flex.unwrap_or(interval);
                check_window(interval, flex)?;
                req.ext.interval_ms = Some(ms(interval));
                req.ext.flex_ms = Some(ms(flex));
                // The first run: at the start of the first flex window, counted on Redis'
                // clock from when Redis receives the request.
                req.delay = interval - flex;
                None
            }
            (None, Some(expr)) => {
                let schedule = CronSchedule::parse(&expr)
                    .map_err(|e| Error::InvalidRequest(workq_common::InvalidRequest::cron(e)))?;
                req.ext.cron = Some(schedule.as_str().to_owned());
                Some(schedule)
            }
            _ => {
                return Err(Error::invalid(
                    "schedule",
                    "a periodic request needs an interval or a cron expression",
                ))
            }
        };
        Ok(PeriodicWorkRequest { req, cron })
    }
}
