//! Periodic work: a job every 2 seconds, run by whichever worker is free, exactly once per
//! period; then cancelled (WorkManager's PeriodicWorkRequest).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example periodic`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{Job, PeriodicWorkRequest, WatchTarget, WorkManager, WorkState};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Report;
impl Job for Report {
    const KIND: &'static str = "example-report";
}

struct ReportWorker;
impl Worker for ReportWorker {
    type Job = Report;
    async fn do_work(&self, ctx: &WorkContext, _: Report) -> Result<WorkResult, WorkError> {
        println!("  [worker] report run by {}", ctx.id());
        Ok(WorkResult::success())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = "example-periodic";
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        WorkerRuntime::builder(&url)
            .queue(queue)
            .register(ReportWorker)
            .build()?
            .run_until(async {
                let _ = stopped.await;
            }),
    );
    let wm = WorkManager::connect(&url).await?;
    let req = PeriodicWorkRequest::builder(Report, Duration::from_secs(2))
        .queue(queue)
        .build()?;
    let id = req.id();
    let mut changes = wm.watch_in(queue, WatchTarget::Id(id)).await?;
    wm.enqueue_periodic(req).await?;
    let mut runs = 0;
    while let Some(info) = changes.next_info().await {
        let info = info?;
        if info.state == WorkState::Enqueued && runs > 0 {
            println!("run {runs} done; next due at {:?}", info.next_due_at);
        }
        if info.state == WorkState::Running {
            runs += 1;
        }
        if runs == 3 && info.state == WorkState::Enqueued {
            break;
        }
    }
    println!("cancel: {:?}", wm.cancel_work_by_id(id).await?);
    let _ = stop.send(());
    worker.await??;
    Ok(())
}
