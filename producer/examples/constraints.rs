//! Constraints and priority: work that needs a GPU goes only to workers that have one;
//! expedited work is claimed ahead of normal work (WorkManager's setConstraints and
//! setExpedited).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example constraints`

use serde::{Deserialize, Serialize};
use workq_producer::{Job, OneTimeWorkRequest, WatchTarget, WorkManager, WorkState};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Render {
    frame: u32,
}
impl Job for Render {
    const KIND: &'static str = "example-render";
}

struct RenderWorker(&'static str);
impl Worker for RenderWorker {
    type Job = Render;
    async fn do_work(&self, _: &WorkContext, job: Render) -> Result<WorkResult, WorkError> {
        println!("  [{}] renders frame {}", self.0, job.frame);
        Ok(WorkResult::success())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = "example-constraints";
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for (name, labels) in [("cpu-worker", vec![]), ("gpu-worker", vec!["gpu"])] {
        let mut stopped = stopped.clone();
        workers.push(tokio::spawn(
            WorkerRuntime::builder(&url)
                .queue(queue)
                .labels(labels)
                .register(RenderWorker(name))
                .build()?
                .run_until(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }),
        ));
    }
    let wm = WorkManager::connect(&url).await?;
    let gpu = OneTimeWorkRequest::builder(Render { frame: 1 })
        .queue(queue)
        .require_label("gpu")
        .expedited()
        .build()?;
    let mut changes = wm.watch_in(queue, WatchTarget::Id(gpu.id())).await?;
    wm.enqueue(gpu).await?;
    wm.enqueue(
        OneTimeWorkRequest::builder(Render { frame: 2 })
            .queue(queue)
            .build()?,
    )
    .await?;
    while let Some(info) = changes.next_info().await {
        let info = info?;
        println!("gpu frame: {}", info.state);
        if info.state == WorkState::Succeeded {
            break;
        }
    }
    let _ = stop.send(true);
    for w in workers {
        w.await??;
    }
    Ok(())
}
