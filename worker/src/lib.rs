//! The workq worker runtime: implement [`Worker`] for each kind of work, register the
//! workers with a [`WorkerRuntime`], and run as many processes as the load needs.
//!
//! # Quick start
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use workq_worker::{Job, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Count {
//!     to: u32,
//! }
//! impl Job for Count {
//!     const KIND: &'static str = "count";
//! }
//!
//! struct CountWorker;
//!
//! impl Worker for CountWorker {
//!     type Job = Count;
//!     async fn do_work(&self, ctx: &WorkContext, job: Count) -> Result<WorkResult, WorkError> {
//!         for i in 1..=job.to {
//!             if ctx.is_cancelled() {
//!                 break;
//!             }
//!             tracing::info!(i, "counting");
//!         }
//!         Ok(WorkResult::success_with(&job.to)?)
//!     }
//! }
//!
//! # async fn run() -> Result<(), workq_worker::Error> {
//! WorkerRuntime::builder("redis://127.0.0.1:6379")
//!     .register(CountWorker)
//!     .concurrency(64)
//!     .build()?
//!     .run() // until SIGTERM or SIGINT
//!     .await
//! # }
//! ```
//!
//! # What the runtime guarantees
//! - At-least-once: a job runs again if its worker dies (after the lease), if Redis loses
//!   the ack, or after a graceful shutdown hands it back. Make side effects idempotent.
//! - A stale worker (one whose lease ran out and whose job was claimed again) cannot
//!   complete or extend that job: every call carries the attempt number as a fencing token.
//! - Redis outages are waited out with capped backoff, logged once per outage.

mod context;
mod merge;
mod metrics;
#[cfg(feature = "otel")]
mod otel;
mod outage;
mod registry;
mod runtime;
mod worker;

pub use context::WorkContext;
pub use metrics::Metrics;
pub use runtime::{WorkerRuntime, WorkerRuntimeBuilder};
pub use worker::{WorkError, WorkResult, Worker};
pub use workq_common::{Data, Error, Job, Result, Schedule, WorkId, WorkInfo, WorkState};
pub use workq_common::{Durability, NotDurable, Retention, TlsConfig};

/// The `prometheus` crate, at the version whose [`Registry`](prometheus::Registry)
/// [`Metrics::registry`] returns: encode it with `prometheus::TextEncoder` without
/// adding (and matching) the dependency yourself.
pub use prometheus;
