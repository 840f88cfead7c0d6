//! A chain: two jobs in parallel, then one that gets both outputs merged into its input
//! (WorkManager's beginWith/then and input mergers).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example chain`

use serde::{Deserialize, Serialize};
use workq_producer::{InputMerger, Job, OneTimeWorkRequest, WatchTarget, WorkManager, WorkState};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

/// Downloads a "file" and outputs its size under `sizes`.
#[derive(Serialize, Deserialize)]
struct Fetch {
    url: String,
}
impl Job for Fetch {
    const KIND: &'static str = "example-fetch";
}
#[derive(Serialize, Deserialize)]
struct Fetched {
    sizes: u64,
}

/// Adds up the sizes its parents found (array-creating merger: `sizes` becomes a list).
#[derive(Serialize, Deserialize, Default)]
struct Total {
    #[serde(default)]
    sizes: Vec<u64>,
}
impl Job for Total {
    const KIND: &'static str = "example-total";
}

struct FetchWorker;
impl Worker for FetchWorker {
    type Job = Fetch;
    async fn do_work(&self, _: &WorkContext, job: Fetch) -> Result<WorkResult, WorkError> {
        Ok(WorkResult::success_with(&Fetched {
            sizes: job.url.len() as u64 * 100,
        })?)
    }
}

struct TotalWorker;
impl Worker for TotalWorker {
    type Job = Total;
    async fn do_work(&self, _: &WorkContext, job: Total) -> Result<WorkResult, WorkError> {
        Ok(WorkResult::success_with(&job.sizes.iter().sum::<u64>())?)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let queue = "example-chain";
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        WorkerRuntime::builder(&url)
            .queue(queue)
            .register(FetchWorker)
            .register(TotalWorker)
            .build()?
            .run_until(async {
                let _ = stopped.await;
            }),
    );

    let wm = WorkManager::connect(&url).await?;
    let fetch = |u: &str| {
        OneTimeWorkRequest::builder(Fetch { url: u.into() })
            .queue(queue)
            .build()
    };
    let total = OneTimeWorkRequest::builder(Total::default())
        .queue(queue)
        .input_merger(InputMerger::ArrayCreating)
        .build()?;
    let total_id = total.id();
    let mut changes = wm.watch_in(queue, WatchTarget::Id(total_id)).await?;
    let out = wm
        .begin_with([fetch("https://a.example")?, fetch("https://bb.example")?])
        .then([total])
        .enqueue()
        .await?;
    println!("enqueued the chain: {:?}", out.ids);
    while let Some(info) = changes.next_info().await {
        let info = info?;
        println!("total is {}", info.state);
        if info.state.is_finished() {
            if info.state == WorkState::Succeeded {
                println!("sum of sizes: {:?}", info.output_as::<u64>()?);
            }
            break;
        }
    }
    let _ = stop.send(());
    worker.await??;
    Ok(())
}
