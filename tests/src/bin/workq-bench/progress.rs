//! Progress: from `set_progress` in a worker to a watcher's stream item.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Job, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

#[derive(Serialize, Deserialize)]
pub(crate) struct Report {
    updates: u32,
}
impl Job for Report {
    const KIND: &'static str = "report";
}
#[derive(Serialize, Deserialize)]
pub(crate) struct Sent {
    at_us: u64,
}
pub(crate) struct ReportWorker;
impl Worker for ReportWorker {
    type Job = Report;
    async fn do_work(&self, ctx: &WorkContext, job: Report) -> Result<WorkResult, WorkError> {
        for _ in 0..job.updates {
            tokio::time::sleep(Duration::from_millis(2)).await;
            ctx.set_progress(&Sent { at_us: now_us() }).await?;
        }
        Ok(WorkResult::success())
    }
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Progress: from `set_progress` in a worker to a watcher's stream item (both through
/// Redis: the worker runtime and the producer share nothing but Redis here).
pub(crate) async fn progress(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("progress");
    let wm = WorkManager::connect(&a.redis).await?;
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .register(ReportWorker)
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(rt.run_until(async {
        let _ = stopped.await;
    }));
    let req = OneTimeWorkRequest::builder(Report {
        updates: a.progress_updates as u32,
    })
    .queue(&queue)
    .build()?;
    let mut items = wm
        .watch_in(&queue, workq_producer::WatchTarget::Id(req.id()))
        .await?;
    wm.enqueue(req).await?;
    let mut late_us: Vec<i64> = Vec::with_capacity(a.progress_updates);
    while let Some(info) = items.next_info().await {
        let info = info?;
        if let Some(p) = &info.progress {
            let sent: Sent = p.decode()?;
            late_us.push(now_us() as i64 - sent.at_us as i64);
        }
        if info.state.is_finished() {
            break;
        }
    }
    let _ = stop.send(());
    worker.await??;
    drop_queue(&a.redis, &queue).await?;
    late_us.sort_unstable();
    if late_us.is_empty() {
        return Err("no progress arrived".into());
    }
    let ms = |us: i64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    Ok(json!({
        "scenario": "progress",
        "updates": late_us.len(),
        "ms_p50": ms(pct(&late_us, 0.5)),
        "ms_p99": ms(pct(&late_us, 0.99)),
        "ms_max": ms(*late_us.last().unwrap_or(&0)),
    }))
}
