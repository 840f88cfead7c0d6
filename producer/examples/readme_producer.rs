//! The README's producer ("Use it"), which the README quotes from its first `use` on (a
//! test checks that they agree). Its `Count` is the demo's: `workq-worker` runs it.
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example readme_producer`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{BackoffPolicy, Job, OneTimeWorkRequest, WorkManager, WorkState};

#[derive(Serialize, Deserialize)]
struct Count {
    to: u32,
    step_ms: u64,
}

impl Job for Count {
    const KIND: &'static str = "count";
}

#[tokio::main]
async fn main() -> Result<(), workq_producer::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let wm = WorkManager::connect(&url).await?;
    let request = OneTimeWorkRequest::builder(Count {
        to: 20,
        step_ms: 250,
    })
    .initial_delay(Duration::from_secs(60))
    .tag("worker_test")
    .backoff(BackoffPolicy::Exponential, Duration::from_secs(10))
    .max_attempts(5)
    .build()?;
    let id = wm.enqueue(request).await?.id;

    // Later, from any process:
    if let Some(info) = wm.get_work_info(id).await? {
        println!(
            "{} is {} after {} attempts",
            info.id, info.state, info.run_attempt_count
        );
        if info.state == WorkState::Succeeded {
            let counted: Option<u32> = info.output_as()?;
            println!("output: {counted:?}");
        }
    }
    // This example cancels the job it made (and nothing else) before it runs.
    println!("cancel: {:?}", wm.cancel_work_by_id(id).await?);
    Ok(())
}
