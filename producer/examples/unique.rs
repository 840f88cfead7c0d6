//! Unique work: one sync job per account, however many times it is asked for
//! (WorkManager's enqueueUniqueWork with KEEP, then APPEND).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example unique`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{ExistingWorkPolicy, Job, OneTimeWorkRequest, WorkManager};

#[derive(Serialize, Deserialize)]
struct Sync {
    account: u32,
}
impl Job for Sync {
    const KIND: &'static str = "example-sync";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let wm = WorkManager::connect(&url).await?;
    let name = format!("sync-account-7-{}", workq_producer::WorkId::new());
    let req = || {
        OneTimeWorkRequest::builder(Sync { account: 7 })
            .queue("example-unique")
            .initial_delay(Duration::from_secs(3600))
            .build()
    };
    for _ in 0..3 {
        let out = wm
            .enqueue_unique_work(&name, ExistingWorkPolicy::Keep, req()?)
            .await?;
        println!("KEEP: {:?} {:?}", out.status, out.ids);
    }
    let out = wm
        .enqueue_unique_work(&name, ExistingWorkPolicy::Append, req()?)
        .await?;
    println!(
        "APPEND: {:?} {:?} (runs after the first)",
        out.status, out.ids
    );
    for info in wm.get_work_infos_for_unique_work(&name).await? {
        println!("{} {} parents={:?}", info.id, info.state, info.parents);
    }
    // Clean up the example's work.
    let cancelled = wm.cancel_unique_work(&name).await?;
    println!("cancelled {} job(s)", cancelled.cancelled);
    Ok(())
}
