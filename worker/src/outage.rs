use std::time::{Duration, Instant};

use prometheus::IntCounterVec;
use workq_common::internal::retry::RetryDelay;
use workq_common::Error;

use crate::Metrics;

const FIRST: Duration = Duration::from_millis(50);
const CAP: Duration = Duration::from_secs(5);

/// Tracks one loop's view of Redis availability: logs once when an outage starts and once
/// when it ends, and hands out capped, jittered exponential backoff in between, so a
/// missing Redis costs neither a hot loop nor a flood of log lines. It also counts each
/// failure in `workq_redis_errors_total` under its loop's label, when told to.
#[derive(Debug)]
pub(crate) struct Outage {
    what: &'static str,
    since: Option<Instant>,
    delay: RetryDelay,
    /// Where failures are counted, and under which `loop` label.
    errors: Option<(IntCounterVec, &'static str)>,
}

impl Outage {
    /// A tracker for the loop `what` (as logs name it), counting nothing.
    pub(crate) fn new(what: &'static str) -> Self {
        Outage {
            what,
            since: None,
            delay: RetryDelay::new(FIRST, CAP),
            errors: None,
        }
    }

    /// Counts every failure in `workq_redis_errors_total{loop="<label>"}` (the series
    /// appears with the first failure).
    pub(crate) fn counting(mut self, metrics: &Metrics, label: &'static str) -> Self {
        self.errors = Some((metrics.redis_errors.clone(), label));
        self
    }

    /// Records a failure; returns how long to wait before trying again.
    pub(crate) fn failed(&mut self, err: &Error) -> Duration {
        if let Some((errors, label)) = &self.errors {
            errors.with_label_values(&[*label]).inc();
        }
        if self.since.is_none() {
            self.since = Some(Instant::now());
            if err.is_transient() {
                tracing::warn!(loop_ = self.what, error = %err, "Redis unavailable; retrying with backoff (up to {CAP:?})");
            } else if let Some(fix) = err.config_hint() {
                tracing::error!(loop_ = self.what, error = %err, "Redis refused workq, which waiting will not fix: {fix}; retrying with backoff (up to {CAP:?})");
            } else {
                tracing::error!(loop_ = self.what, error = %err, "Redis call failed; retrying with backoff");
            }
        } else {
            tracing::debug!(loop_ = self.what, error = %err, "still failing");
        }
        self.delay.next_delay()
    }

    /// Records a success.
    pub(crate) fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(loop_ = self.what, after = ?since.elapsed(), "Redis reachable again");
        }
        self.delay.reset();
    }
}
