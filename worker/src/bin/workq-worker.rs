//! A worker process running the demo's job kinds (`count`, `noop`), for
//! `deploy/local/demo.sh` and for trying workq out. Your own worker binary looks like this
//! with your own workers registered.
//!
//! ```text
//! workq-worker --redis redis://127.0.0.1:6379 [--queue default]... [--concurrency 64]
//!              [--lease-ms 30000] [--grace-ms 25000] [--id NAME]
//! ```
//! Logs go to stdout; `WORKQ_LOG` sets the filter (e.g. `info`, `workq_worker=debug`).

use std::process::ExitCode;
use std::time::Duration;

use workq_common::demo::{Count, Noop};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

/// Counts from 1 to `to`, one step every `step_ms`, logging each step.
struct CountWorker;

impl Worker for CountWorker {
    type Job = Count;

    async fn do_work(&self, ctx: &WorkContext, job: Count) -> Result<WorkResult, WorkError> {
        for i in 1..=job.to {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(job.step_ms)) => {}
                _ = ctx.cancelled() => return Ok(WorkResult::failure(format!("cancelled at {}", i - 1))),
            }
            tracing::info!(id = %ctx.id(), attempt = ctx.attempt(), "count {i}/{}", job.to);
        }
        Ok(WorkResult::success_with(&job.to)?)
    }
}

/// Does nothing.
struct NoopWorker;

impl Worker for NoopWorker {
    type Job = Noop;

    async fn do_work(&self, _: &WorkContext, _: Noop) -> Result<WorkResult, WorkError> {
        Ok(WorkResult::success())
    }
}

struct Args {
    redis: String,
    queues: Vec<String>,
    concurrency: usize,
    lease_ms: u64,
    grace_ms: u64,
    id: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        redis: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        queues: Vec::new(),
        concurrency: 64,
        lease_ms: 30_000,
        grace_ms: 25_000,
        id: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--redis" => a.redis = value()?,
            "--queue" => a.queues.push(value()?),
            "--concurrency" => a.concurrency = number(value()?)? as usize,
            "--lease-ms" => a.lease_ms = number(value()?)?,
            "--grace-ms" => a.grace_ms = number(value()?)?,
            "--id" => a.id = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: workq-worker [--redis URL] [--queue NAME]... [--concurrency N] \
                    [--lease-ms MS] [--grace-ms MS] [--id NAME]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> ExitCode {
    // A filter that does not parse is reported, and the default used instead.
    let default = || tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO);
    let (filter, bad_filter) = match std::env::var("WORKQ_LOG") {
        Err(std::env::VarError::NotPresent) => (default(), None),
        Err(e) => (default(), Some(format!("WORKQ_LOG is unusable ({e})"))),
        Ok(s) => match s.parse::<tracing_subscriber::filter::Targets>() {
            Ok(f) => (f, None),
            Err(e) => (
                default(),
                Some(format!("WORKQ_LOG '{s}' does not parse ({e})")),
            ),
        },
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(false))
        .with(filter)
        .init();
    if let Some(bad) = bad_filter {
        eprintln!("workq-worker: {bad}; logging at info and above instead");
    }

    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut b = WorkerRuntime::builder(&args.redis)
        .concurrency(args.concurrency)
        .lease(Duration::from_millis(args.lease_ms))
        .grace_period(Duration::from_millis(args.grace_ms))
        .register(CountWorker)
        .register(NoopWorker);
    for q in &args.queues {
        b = b.queue(q.as_str());
    }
    if let Some(id) = &args.id {
        b = b.worker_id(id.as_str());
    }
    let runtime = match b.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("workq-worker: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workq-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
