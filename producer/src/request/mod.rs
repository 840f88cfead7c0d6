//! Requests: what to run, where and how, checked when built. One-time work
//! (`one_time.rs`), periodic work (`periodic.rs`), and the rules both are checked against
//! (`validate.rs`).

mod one_time;
mod periodic;
#[cfg(test)]
mod tests;
mod validate;

pub use one_time::{InputMerger, OneTimeWorkRequest, OneTimeWorkRequestBuilder};
pub use periodic::{PeriodicWorkRequest, PeriodicWorkRequestBuilder};

/// A duration in whole milliseconds, as stored (saturating: no request lasts that long).
fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
