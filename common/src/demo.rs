//! Job types of the demo and the benchmark, shared by the `workq` CLI (producer side) and
//! the `workq-worker` binary, the way a service would share its own job types.

use serde::{Deserialize, Serialize};

use crate::Job;

/// Counts from 1 to `to`, one step every `step_ms`, logging each step (the WorkManager
/// chapter's example).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Count {
    /// Last number.
    pub to: u32,
    /// Pause between steps.
    pub step_ms: u64,
}

impl Job for Count {
    const KIND: &'static str = "count";
}

/// Does nothing; for throughput runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Noop {
    /// A number, so jobs differ.
    pub i: u64,
}

impl Job for Noop {
    const KIND: &'static str = "noop";
}
