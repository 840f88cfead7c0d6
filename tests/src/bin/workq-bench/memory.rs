//! Memory: Redis bytes per scheduled job.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::Job;

use crate::common::*;
use crate::{Args, BoxError};

/// The same shape as BullMQ's memory job data: `{ pad: 'x' * 100 }`, under BullMQ's name.
#[derive(Serialize, Deserialize)]
pub(crate) struct Mem {
    pad: String,
}
impl Job for Mem {
    const KIND: &'static str = "mem";
}

pub(crate) async fn memory(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("mem");
    let wm = WorkManager::connect(&a.redis).await?;
    let pad = "x".repeat(100);
    let reqs = (0..a.memory_jobs)
        .map(|_| {
            OneTimeWorkRequest::builder(Mem { pad: pad.clone() })
                .queue(&queue)
                .initial_delay(Duration::from_secs(3600))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Register the queue first so the measured delta is the jobs alone.
    wm.enqueue_many(Vec::new()).await?;
    let before = info_field(&a.redis, "memory", "used_memory").await?;
    for chunk in reqs.chunks(1000) {
        wm.enqueue_many(chunk.to_vec()).await?;
    }
    let after = info_field(&a.redis, "memory", "used_memory").await?;
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "memory",
        "jobs": a.memory_jobs,
        "payload_bytes": 100,
        "bytes_per_scheduled_job": ((after as f64 - before as f64) / a.memory_jobs as f64).round(),
    }))
}
