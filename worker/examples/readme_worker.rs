//! The README's worker ("Use it"), which the README quotes from its first `use` on (a test
//! checks that they agree). Its `Count` is the demo's, so it runs the README producer's
//! jobs and `workq demo-enqueue`'s.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-worker --example readme_worker`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_worker::{Job, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

#[derive(Serialize, Deserialize)]
struct Count {
    to: u32,
    step_ms: u64,
}

impl Job for Count {
    const KIND: &'static str = "count";
}

struct CountWorker;

impl Worker for CountWorker {
    type Job = Count;

    async fn do_work(&self, ctx: &WorkContext, job: Count) -> Result<WorkResult, WorkError> {
        for i in 1..=job.to {
            if ctx.is_cancelled() {
                return Ok(WorkResult::failure(format!("cancelled at {i}")));
            }
            tracing::info!(attempt = ctx.attempt(), "count {i}");
            tokio::time::sleep(Duration::from_millis(job.step_ms)).await;
        }
        // Ok(WorkResult::retry()), an Err(..) or a panic retry with backoff;
        // Ok(WorkResult::failure(..)) fails for good.
        Ok(WorkResult::success_with(&job.to)?)
    }
}

#[tokio::main]
async fn main() -> Result<(), workq_worker::Error> {
    // Prints the runtime's logs and the worker's own (info and above) on stdout.
    tracing_subscriber::fmt().init();
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    WorkerRuntime::builder(&url)
        .register(CountWorker)
        .concurrency(64)
        .build()?
        .run()
        .await
}
