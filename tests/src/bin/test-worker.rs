//! A worker process for the fault tests: serves one queue with the test workers.
//! Usage: test-worker REDIS_URL QUEUE CONCURRENCY LEASE_MS [GRACE_MS]

use std::time::Duration;

use workq_tests::jobs::{FailWorker, NopWorker, SleepWorker};
use workq_worker::WorkerRuntime;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, queue, concurrency, lease_ms, rest @ ..] = args.as_slice() else {
        eprintln!("usage: test-worker REDIS_URL QUEUE CONCURRENCY LEASE_MS [GRACE_MS]");
        std::process::exit(2);
    };
    let num = |s: &str| -> u64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("not a number: {s}");
            std::process::exit(2)
        })
    };
    let filter: tracing_subscriber::filter::Targets = std::env::var("WORKQ_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::WARN));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
    let mut b = WorkerRuntime::builder(url)
        .queue(queue.as_str())
        .concurrency(num(concurrency) as usize)
        .lease(Duration::from_millis(num(lease_ms)))
        .cancel_grace(Duration::from_secs(5))
        .register(SleepWorker)
        .register(FailWorker)
        .register(NopWorker);
    if let Some(g) = rest.first() {
        b = b.grace_period(Duration::from_millis(num(g)));
    }
    let rt = match b.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("test-worker: {e}");
            std::process::exit(2);
        }
    };
    println!("WORKER {} {}", std::process::id(), rt.worker_id());
    if let Err(e) = rt.run().await {
        eprintln!("test-worker: {e}");
        std::process::exit(1);
    }
    println!("EXIT {}", std::process::id());
}
