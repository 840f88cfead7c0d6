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

use workq_common::time::ms;
