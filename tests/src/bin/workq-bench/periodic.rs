//! Periodic: many periodic works with a short interval, run for a fixed window: the
//! periods run per second and Redis' CPU per run (each run's ack reschedules the next).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Value};
use workq_producer::{PeriodicWorkRequest, WorkManager};
use workq_worker::{Job, Retention, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

/// The periodic job's input.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Tick {
    i: u64,
}
impl Job for Tick {
    const KIND: &'static str = "tick";
}

/// Counts the periods run.
pub(crate) struct TickWorker {
    runs: Arc<AtomicU64>,
}
impl Worker for TickWorker {
    type Job = Tick;
    async fn do_work(&self, _: &WorkContext, _: Tick) -> Result<WorkResult, WorkError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        Ok(WorkResult::success())
    }
}

/// `a.periodic` periodic works every 100 ms on one queue (more runs due than one runtime
/// finishes), drained by one runtime for `a.periodic_secs`.
pub(crate) async fn periodic(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("periodic");
    let wm = WorkManager::connect(&a.redis).await?;
    let reqs = (0..a.periodic as u64)
        .map(|i| {
            PeriodicWorkRequest::builder(Tick { i }, Duration::from_millis(100))
                .queue(&queue)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    futures_util::stream::iter(reqs)
        .map(|r| wm.enqueue_periodic(r))
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let runs = Arc::new(AtomicU64::new(0));
    let rt = with_claims(WorkerRuntime::builder(&a.redis), a)
        .queue(&queue)
        .concurrency(a.concurrency)
        .retention(Retention::new(Duration::ZERO, Duration::from_secs(3600)))
        .register(TickWorker {
            runs: Arc::clone(&runs),
        })
        .build()?;
    let window = Duration::from_secs(a.periodic_secs);
    let cpu0 = redis_cpu_us(&a.redis).await?;
    let t0 = Instant::now();
    rt.run_until(tokio::time::sleep(window)).await?;
    let took = t0.elapsed();
    let cpu1 = redis_cpu_us(&a.redis).await?;
    let n = runs.load(Ordering::Relaxed);
    drop_queue(&a.redis, &queue).await?;
    if n == 0 {
        return Err("no periodic run finished".into());
    }
    Ok(json!({
        "scenario": "periodic",
        "works": a.periodic,
        "interval_ms": 100,
        "concurrency": a.concurrency,
        "runs_per_s": (n as f64 / took.as_secs_f64()).round(),
        "redis_cpu_us_per_run": ((cpu1 - cpu0) / n as f64 * 10.0).round() / 10.0,
    }))
}
