//! Latency: how late delayed jobs start.

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Job, Retention, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

#[derive(Serialize, Deserialize)]
pub(crate) struct Late {
    due: u64,
}
impl Job for Late {
    const KIND: &'static str = "late";
}

pub(crate) struct LateWorker {
    late: Arc<Mutex<Vec<i64>>>,
    target: usize,
    all_done: Arc<Notify>,
}
impl Worker for LateWorker {
    type Job = Late;
    async fn do_work(&self, _: &WorkContext, job: Late) -> Result<WorkResult, WorkError> {
        let late = now_ms() as i64 - job.due as i64;
        let mut v = self.late.lock().map_err(|_| "poisoned")?;
        v.push(late);
        if v.len() == self.target {
            self.all_done.notify_one();
        }
        Ok(WorkResult::success())
    }
}

pub(crate) async fn latency(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("lat");
    let wm = WorkManager::connect(&a.redis).await?;
    let late = Arc::new(Mutex::new(Vec::with_capacity(a.delayed)));
    let all_done = Arc::new(Notify::new());
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .concurrency(50)
        .retention(Retention::new(Duration::ZERO, Duration::from_secs(3600)))
        .register(LateWorker {
            late: Arc::clone(&late),
            target: a.delayed,
            all_done: Arc::clone(&all_done),
        })
        .build()?;
    let notified = Arc::clone(&all_done);
    let worker = tokio::spawn(rt.run_until(async move { notified.notified().await }));
    // The worker is idle and waiting, as in the peer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = now_ms();
    let mut rng = base;
    let reqs = (0..a.delayed)
        .map(|_| {
            // xorshift: no rand dependency for a uniform spread of delays
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let d = 200 + rng % 3000;
            // BullMQ stamps a delayed job with the client's clock when the job object is
            // made, so its due time is base + d; run_at gives workq the same due time.
            // (initial_delay would count from when Redis receives the batch instead.)
            OneTimeWorkRequest::builder(Late { due: base + d })
                .queue(&queue)
                .run_at(UNIX_EPOCH + Duration::from_millis(base + d))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    wm.enqueue_many(reqs).await?;
    worker.await??;
    let mut v = late.lock().map_err(|_| "poisoned")?.clone();
    v.sort_unstable();
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "latency",
        "delayed_jobs": a.delayed,
        "late_ms_p50": pct(&v, 0.5),
        "late_ms_p99": pct(&v, 0.99),
        "late_ms_max": v.last().copied().unwrap_or(0),
        "early": v.iter().filter(|l| **l < 0).count(),
    }))
}
