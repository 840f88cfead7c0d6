//! A worker process running the demo's job kinds (`count`, `noop`), for
//! `deploy/local/demo.sh` and for trying workq out. Your own worker binary looks like this
//! with your own workers registered.
//!
//! ```text
//! workq-worker [--redis URL] [--queue NAME]... [--concurrency 64] [--lease-ms 30000]
//!              [--grace-ms 25000] [--claim-batch N] [--id NAME] [--http ADDR]
//!              [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
//! ```
//! For a `rediss://` URL, `--tls-ca` (`$WORKQ_TLS_CA`) is the CA file to trust instead of
//! the system's roots, and `--tls-cert`/`--tls-key` (`$WORKQ_TLS_CERT`, `$WORKQ_TLS_KEY`) a
//! client certificate and its key, all PEM.
//! `--http 0.0.0.0:9464` serves `/metrics`, `/healthz` and `/readyz` there (9464 is the
//! port this project documents for it; off unless given).
//! `--redis` defaults to `$REDIS_URL`, then `redis://127.0.0.1:6379`. Logs go to stdout;
//! `WORKQ_LOG` sets the filter (e.g. `info`, `workq_worker=debug`). Exit codes: 0 after a
//! graceful stop, 1 when the runtime stops with an error (a configuration error at
//! start: wrong password, missing ACL permission), 2 for a usage error. Built with the
//! `cli` feature (`cargo build -p workq-worker --features cli`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use workq_common::demo::{Count, Noop};
use workq_common::logs::{init_from_env, Output};
use workq_worker::{TlsConfig, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

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

/// A worker process running the demo's job kinds (count, noop).
#[derive(Debug, Parser)]
#[command(name = "workq-worker", version)]
#[command(help_template = "usage: {usage}\n\n{about-with-newline}\n{all-args}")]
struct Args {
    /// The Redis to serve (credentials in the URL are never printed).
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// A queue to serve; repeat for several (default: the `default` queue).
    #[arg(long = "queue", value_name = "NAME")]
    queues: Vec<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 64, value_name = "N")]
    concurrency: usize,
    /// Most jobs one claim asks for (default: half the concurrency, two claims in flight;
    /// the full concurrency takes less Redis CPU per chain or periodic job).
    #[arg(long, value_name = "N")]
    claim_batch: Option<usize>,
    /// How long a claimed job stays this worker's without a heartbeat.
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    lease_ms: u64,
    /// How long running jobs may take to finish after SIGTERM before they are handed back.
    #[arg(long, default_value_t = 25_000, value_name = "MS")]
    grace_ms: u64,
    /// The worker's id in Redis (default: host name and process id).
    #[arg(long, value_name = "NAME")]
    id: Option<String>,
    /// Serve /metrics, /healthz and /readyz at this address (e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// For rediss://: trust this CA file (PEM) instead of the system's roots.
    #[arg(long, env = "WORKQ_TLS_CA", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// For rediss://: present this client certificate (PEM); needs --tls-key.
    #[arg(
        long,
        env = "WORKQ_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM); needs --tls-cert.
    #[arg(
        long,
        env = "WORKQ_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<std::path::PathBuf>,
}

impl Args {
    /// The TLS settings, if any was given.
    fn tls(&self) -> Option<TlsConfig> {
        if self.tls_ca.is_none() && self.tls_cert.is_none() {
            return None;
        }
        let mut tls = TlsConfig::new();
        if let Some(ca) = &self.tls_ca {
            tls = tls.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            tls = tls.client_cert(cert, key);
        }
        Some(tls)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            // --help and --version print to stdout; a usage error to stderr.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_from_env("workq-worker", tracing::Level::INFO, Output::Stdout);
    let mut b = WorkerRuntime::builder(&args.redis)
        .concurrency(args.concurrency)
        .lease(Duration::from_millis(args.lease_ms))
        .grace_period(Duration::from_millis(args.grace_ms))
        .register(CountWorker)
        .register(NoopWorker);
    for q in &args.queues {
        b = b.queue(q.as_str());
    }
    if let Some(addr) = args.http {
        b = b.http(addr);
    }
    if let Some(tls) = args.tls() {
        b = b.tls(tls);
    }
    if let Some(id) = &args.id {
        b = b.worker_id(id.as_str());
    }
    if let Some(n) = args.claim_batch {
        b = b.claim_batch(n);
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
