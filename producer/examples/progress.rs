//! Progress: a worker reports how far it got; a producer follows it live
//! (WorkManager's setProgress and getWorkInfoByIdFlow).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example progress`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{Job, OneTimeWorkRequest, WatchTarget, WorkManager};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Upload {
    parts: u32,
}
impl Job for Upload {
    const KIND: &'static str = "example-upload";
}
#[derive(Serialize, Deserialize, Debug)]
struct Done {
    percent: u32,
}

struct UploadWorker;
impl Worker for UploadWorker {
    type Job = Upload;
    async fn do_work(&self, ctx: &WorkContext, job: Upload) -> Result<WorkResult, WorkError> {
        for part in 1..=job.parts {
            tokio::time::sleep(Duration::from_millis(200)).await;
            ctx.set_progress(&Done {
                percent: part * 100 / job.parts,
            })
            .await?;
        }
        Ok(WorkResult::success())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = "example-progress";
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        WorkerRuntime::builder(&url)
            .queue(queue)
            .register(UploadWorker)
            .build()?
            .run_until(async {
                let _ = stopped.await;
            }),
    );
    let wm = WorkManager::connect(&url).await?;
    let req = OneTimeWorkRequest::builder(Upload { parts: 4 })
        .queue(queue)
        .build()?;
    let mut changes = wm.watch_in(queue, WatchTarget::Id(req.id())).await?;
    wm.enqueue(req).await?;
    while let Some(info) = changes.next_info().await {
        let info = info?;
        match info.progress_as::<Done>()? {
            Some(p) => println!("{}: {p:?}", info.state),
            None => println!("{}", info.state),
        }
        if info.state.is_finished() {
            break;
        }
    }
    let _ = stop.send(());
    worker.await??;
    Ok(())
}
