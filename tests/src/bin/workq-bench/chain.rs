//! Chain: 3-step chains of no-op jobs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Job, Retention, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

/// No-op steps of a chain, counting the last steps.
pub(crate) struct StepWorker {
    done: Arc<AtomicU64>,
    target: u64,
    all_done: Arc<Notify>,
}
#[derive(Serialize, Deserialize)]
pub(crate) struct Step {
    last: bool,
}
impl Job for Step {
    const KIND: &'static str = "step";
}
impl Worker for StepWorker {
    type Job = Step;
    async fn do_work(&self, _: &WorkContext, job: Step) -> Result<WorkResult, WorkError> {
        if job.last && self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.all_done.notify_one();
        }
        Ok(WorkResult::success())
    }
}

/// 3-step chains (a -> b -> c) of no-op jobs: how fast they drain, in jobs per second, to
/// set beside the one-step drain rate.
pub(crate) async fn chain(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("chain");
    let wm = WorkManager::connect(&a.redis).await?;
    let step = |last: bool| {
        OneTimeWorkRequest::builder(Step { last })
            .queue(&queue)
            .build()
    };
    let mut chains = Vec::with_capacity(a.chains);
    for _ in 0..a.chains {
        chains.push(
            wm.begin_with([step(false)?])
                .then([step(false)?])
                .then([step(true)?]),
        );
    }
    let cpu0 = redis_cpu_us(&a.redis).await?;
    let t0 = Instant::now();
    futures_util::stream::iter(chains)
        .map(|c| c.enqueue())
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let enq = t0.elapsed();
    let cpu1 = redis_cpu_us(&a.redis).await?;
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let rt = with_claims(WorkerRuntime::builder(&a.redis), a)
        .queue(&queue)
        .concurrency(a.concurrency)
        .retention(Retention::new(Duration::ZERO, Duration::from_secs(3600)))
        .register(StepWorker {
            done: Arc::clone(&done),
            target: a.chains as u64,
            all_done: Arc::clone(&all_done),
        })
        .build()?;
    let t0 = Instant::now();
    let notified = Arc::clone(&all_done);
    rt.run_until(async move { notified.notified().await })
        .await?;
    let drain = t0.elapsed();
    let cpu2 = redis_cpu_us(&a.redis).await?;
    drop_queue(&a.redis, &queue).await?;
    let jobs = 3 * a.chains;
    Ok(json!({
        "scenario": "chain",
        "chains": a.chains,
        "steps": 3,
        "concurrency": a.concurrency,
        "chains_enqueued_per_s": (a.chains as f64 / enq.as_secs_f64()).round(),
        "chain_jobs_per_s": (jobs as f64 / drain.as_secs_f64()).round(),
        // Redis CPU (INFO cpu) per job over the enqueue and over the drain.
        "redis_cpu_us_per_job_enqueue": ((cpu1 - cpu0) / jobs as f64 * 10.0).round() / 10.0,
        "redis_cpu_us_per_job_drain": ((cpu2 - cpu1) / jobs as f64 * 10.0).round() / 10.0,
    }))
}
