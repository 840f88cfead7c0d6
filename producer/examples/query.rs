//! Observation: query work by tag and state, cancel by tag, prune the finished work of
//! its own queue (WorkManager's WorkQuery, cancelAllWorkByTag and pruneWork).
//!
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run -p workq-producer --example query`

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workq_producer::{Job, OneTimeWorkRequest, WorkManager, WorkQuery, WorkState};

#[derive(Serialize, Deserialize)]
struct Email {
    to: String,
}
impl Job for Email {
    const KIND: &'static str = "example-email";
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let wm = WorkManager::connect(&url).await?;
    let tag = format!("newsletter-{}", workq_producer::WorkId::new());
    let reqs = (0..5)
        .map(|i| {
            OneTimeWorkRequest::builder(Email {
                to: format!("user{i}@example.com"),
            })
            .queue("example-query")
            .tag(tag.as_str())
            .initial_delay(Duration::from_secs(3600))
            .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    wm.enqueue_many(reqs).await?;
    let waiting = wm
        .get_work_infos_by_query(
            &WorkQuery::from_tags([tag.as_str()]).states([WorkState::Enqueued]),
        )
        .await?;
    println!("{} waiting with tag {tag}", waiting.len());
    let summary = wm.cancel_all_work_by_tag(&tag).await?;
    println!("cancelled: {summary:?}");
    // Only this example's queue: other work in this Redis is not the example's to delete.
    let pruned = wm.prune_work_in("example-query").await?;
    println!("pruned {pruned} finished jobs of queue example-query");
    Ok(())
}
