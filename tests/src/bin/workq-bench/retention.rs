//! Retention: memory through a million jobs kept 1 s.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Retention, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

/// Retention: a million no-op jobs through one runtime that keeps successes for 1 s;
/// Redis memory before, at the end of the drain, and once pruning is done.
pub(crate) async fn retention(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("retention");
    let wm = WorkManager::connect(&a.redis).await?;
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let rt = with_claims(WorkerRuntime::builder(&a.redis), a)
        .queue(&queue)
        .concurrency(a.concurrency)
        .retention(Retention::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
        ))
        .register(NoopWorker {
            done: Arc::clone(&done),
            target: a.retention_jobs as u64,
            all_done: Arc::clone(&all_done),
            yields: false,
        })
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(rt.run_until(async {
        let _ = stopped.await;
    }));
    // Baseline: the worker is up and the queue exists (its first enqueue registered it).
    wm.enqueue_many(Vec::new()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = info_field(&a.redis, "memory", "used_memory").await?;
    let cpu0 = redis_cpu_us(&a.redis).await?;
    let t0 = Instant::now();
    let mut peak = baseline;
    for start in (0..a.retention_jobs).step_by(10_000) {
        let reqs = (start..(start + 10_000).min(a.retention_jobs))
            .map(|i| {
                OneTimeWorkRequest::builder(Noop { i: i as u64 })
                    .queue(&queue)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        wm.enqueue_many(reqs).await?;
        peak = peak.max(info_field(&a.redis, "memory", "used_memory").await?);
    }
    all_done.notified().await;
    let drained = t0.elapsed();
    let cpu1 = redis_cpu_us(&a.redis).await?;
    let at_drain = info_field(&a.redis, "memory", "used_memory").await?;
    // Pruning is the worker's job: wait until it has removed every finished job.
    loop {
        let s = wm.queue_stats(&queue).await?;
        if s.finished == 0 && s.enqueued == 0 && s.running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pruned_after = t0.elapsed();
    let after = info_field(&a.redis, "memory", "used_memory").await?;
    let _ = stop.send(());
    worker.await??;
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "retention",
        "jobs": a.retention_jobs,
        "retention_s": 1,
        "baseline_bytes": baseline,
        "peak_bytes": peak.max(at_drain),
        "after_prune_bytes": after,
        "after_minus_baseline_bytes": after as i64 - baseline as i64,
        "drained_s": (drained.as_secs_f64() * 10.0).round() / 10.0,
        "pruned_by_s": (pruned_after.as_secs_f64() * 10.0).round() / 10.0,
        // Redis CPU (INFO cpu) per job from the first enqueue to the end of the drain:
        // enqueue, claim and the ack that keeps the success (pruning mostly later).
        "redis_cpu_us_per_job": ((cpu1 - cpu0) / a.retention_jobs as f64 * 10.0).round() / 10.0,
    }))
}
