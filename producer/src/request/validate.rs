//! The checks a one-time request passes when it is built. The enqueue scripts check the
//! same rules (docs/wire-format.md); here a bad request fails before anything is sent,
//! with its reason.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workq_common::{Error, Result, MAX_ATTEMPTS_LIMIT};

use super::OneTimeWorkRequestBuilder;

/// Longest tag or label accepted.
pub(super) const MAX_TAG_LEN: usize = workq_common::limits::MAX_TAG_BYTES;

impl OneTimeWorkRequestBuilder {
    /// Checks the settings (all but the input and the queue name), in this order; returns
    /// the required labels sorted and without repeats.
    pub(super) fn check(&self) -> Result<Vec<String>> {
        let invalid = |field: &'static str, msg: String| Err(Error::invalid(field, msg));
        if let Some(p) = workq_common::limits::kind_problem(&self.kind) {
            return invalid("kind", p);
        }
        let ahead = Duration::from_millis(workq_common::limits::MAX_AHEAD_MS);
        if self.delay > ahead {
            return invalid(
                "initial_delay",
                format!(
                    "initial_delay {:?} is more than 100 years: a job due then never runs",
                    self.delay
                ),
            );
        }
        if self.at.is_some_and(|at| {
            at.duration_since(SystemTime::now())
                .is_ok_and(|d| d > ahead)
        }) {
            return invalid(
                "run_at",
                "run_at is more than 100 years from now: a job due then never runs".into(),
            );
        }
        for t in &self.tags {
            if t.is_empty() || t.len() > MAX_TAG_LEN {
                return invalid("tag", format!("tag '{t}' must be 1 to {MAX_TAG_LEN} bytes"));
            }
        }
        if let Some(n) = self.max_attempts {
            if n == 0 || n > MAX_ATTEMPTS_LIMIT {
                return invalid(
                    "max_attempts",
                    format!("max_attempts is {n}; it must be 1 to {MAX_ATTEMPTS_LIMIT}"),
                );
            }
        }
        if let Some(b) = self.backoff {
            if b.initial.is_zero() || b.max < b.initial {
                return invalid(
                    "backoff",
                    format!(
                        "backoff initial delay {:?} must be above zero and at most the cap {:?}",
                        b.initial, b.max
                    ),
                );
            }
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            return invalid("timeout", "timeout must be above zero".into());
        }
        if let Some(p) = workq_common::limits::metadata_problem(
            self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ) {
            return invalid("metadata", p);
        }
        if let Some(at) = self.at {
            if at.duration_since(UNIX_EPOCH).is_err() {
                return invalid("run_at", "run_at is before 1970".into());
            }
        }
        let mut labels = self.labels.clone();
        labels.sort();
        labels.dedup();
        for l in &labels {
            let bad = |c: char| {
                c == ',' || c == '@' || c == '#' || c == '{' || c == '}' || c.is_whitespace()
            };
            if l.is_empty() || l.len() > MAX_TAG_LEN || l.contains(bad) {
                return invalid(
                    "label",
                    format!(
                    "label '{l}' must be 1 to {MAX_TAG_LEN} bytes without commas, '@', '#', braces or spaces"
                ));
            }
        }
        Ok(labels)
    }
}

/// Checks the window of interval work: an interval of at least 100 ms, a flex above zero
/// and at most the interval.
pub(super) fn check_window(interval: Duration, flex: Duration) -> Result<()> {
    if interval < Duration::from_millis(100) {
        return Err(Error::invalid(
            "interval",
            format!("periodic interval {interval:?} is under 100 ms"),
        ));
    }
    if flex.is_zero() || flex > interval {
        return Err(Error::invalid(
            "flex",
            format!("flex {flex:?} must be above zero and at most the interval {interval:?}"),
        ));
    }
    Ok(())
}
