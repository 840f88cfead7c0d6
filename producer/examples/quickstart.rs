//! The WorkManager chapter's scenario: a counting job with an initial delay and a tag,
//! run by a worker (here in the same process), observed until it succeeds.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example quickstart`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{Job, OneTimeWorkRequest, WatchTarget, WorkManager, WorkState};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Count {
    to: u32,
}
impl Job for Count {
    const KIND: &'static str = "example-count";
}

struct CountWorker;
impl Worker for CountWorker {
    type Job = Count;
    async fn do_work(&self, ctx: &WorkContext, job: Count) -> Result<WorkResult, WorkError> {
        for i in 1..=job.to {
            println!("  [worker] {} counts {i}", ctx.id());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(WorkResult::success_with(&job.to)?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = "example-quickstart";

    // Worker side: usually its own process, scaled to N replicas.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        WorkerRuntime::builder(&url)
            .queue(queue)
            .register(CountWorker)
            .build()?
            .run_until(async {
                let _ = stopped.await;
            }),
    );

    // Producer side: any service.
    let wm = WorkManager::connect(&url).await?;
    let req = OneTimeWorkRequest::builder(Count { to: 5 })
        .queue(queue)
        .initial_delay(Duration::from_secs(1))
        .tag("worker_test")
        .build()?;
    let mut changes = wm.watch_in(queue, WatchTarget::Id(req.id())).await?;
    let id = wm.enqueue(req).await?.id;
    println!("enqueued {id}, due in 1 s");
    while let Some(info) = changes.next_info().await {
        let info = info?;
        println!(
            "{id} is {} (attempt {})",
            info.state, info.run_attempt_count
        );
        if info.state.is_finished() {
            if info.state == WorkState::Succeeded {
                println!("output: {:?}", info.output_as::<u32>()?);
            }
            break;
        }
    }
    let _ = stop.send(());
    worker.await??;
    Ok(())
}
