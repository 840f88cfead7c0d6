//! The workq producer API: enqueue work for a fleet of workers, then observe or cancel it.
//! Work runs after the enqueuing process exits, survives worker crashes and Redis
//! restarts, can be delayed, retried with backoff and tagged.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use workq_producer::{Job, OneTimeWorkRequest, WorkManager};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Count {
//!     to: u32,
//! }
//! impl Job for Count {
//!     const KIND: &'static str = "count";
//! }
//!
//! # async fn run() -> Result<(), workq_producer::Error> {
//! let wm = WorkManager::connect("redis://127.0.0.1:6379").await?;
//! let req = OneTimeWorkRequest::builder(Count { to: 1000 })
//!     .initial_delay(Duration::from_secs(60))
//!     .tag("worker_test")
//!     .build()?;
//! let id = wm.enqueue(req).await?.id;
//! let info = wm.get_work_info(id).await?;
//! println!("{:?}", info.map(|i| i.state));
//! # Ok(())
//! # }
//! ```

mod admin;
mod cancel;
mod chains;
mod connection;
mod enqueue;
mod listing;
mod manager;
#[cfg(feature = "otel")]
mod otel;
mod periodic;
mod queries;
mod request;
mod stats;
mod watch;
mod workers;

pub use admin::{AdminStatus, BulkCursor};
pub use cancel::CancelSummary;
pub use chains::{ExistingWorkPolicy, WorkContinuation, WorkOutcome, MAX_CHAIN};
pub use enqueue::Enqueued;
pub use listing::{JobFilter, JobListing, JobPage, DEFAULT_PAGE, MAX_PAGE};
pub use manager::{WorkManager, WorkManagerBuilder, DEFAULT_MAX_PAYLOAD};
pub use periodic::ExistingPeriodicWorkPolicy;
pub use queries::WorkQuery;
pub use request::{
    InputMerger, OneTimeWorkRequest, OneTimeWorkRequestBuilder, PeriodicWorkRequest,
    PeriodicWorkRequestBuilder,
};
pub use stats::QueueStats;
pub use watch::{QueueWatch, WatchTarget, WorkEvent, WorkInfoStream};
pub use workers::WorkerInfo;
pub use workq_common::{AttemptError, LastRun};
pub use workq_common::{
    Backoff, BackoffPolicy, Data, Error, Job, Result, Schedule, WorkId, WorkInfo, WorkState,
    DEFAULT_QUEUE,
};
pub use workq_common::{CancelStatus, EnqueueStatus, GraphStatus, Retention};
pub use workq_common::{Durability, NotDurable, TlsConfig};
