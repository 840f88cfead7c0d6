//! A worker process for the fault tests: serves one queue with the test workers.
//! Usage: test-worker REDIS_URL QUEUE CONCURRENCY LEASE_MS \[GRACE_MS\]
//!    or: test-worker enqueue REDIS_URL COUNT DELAY_MS SLEEP_MS   (a producer process)
//! `WORKQ_TEST_HTTP=<addr>` serves the worker's HTTP endpoint there.
//! It prints `WORKER <pid> <worker id> <its clock in ms>` once started, and on a graceful
//! exit `FENCED <n>` (its `workq_acks_refused_total`), then `EXIT <pid>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workq_common::logs::{init_from_env, Output};
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_tests::jobs::{
    EchoWorker, EmitWorker, FailOnceWorker, FailWorker, NopWorker, ProbeWorker, ProgressWorker,
    Sleep, SleepWorker,
};
use workq_worker::WorkerRuntime;

fn clock_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Enqueues COUNT sleep jobs and prints `ENQUEUED <id>` for each, then `CLOCK <ms>`.
async fn enqueue(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let [url, count, delay_ms, sleep_ms] = args else {
        return Err("usage: test-worker enqueue REDIS_URL COUNT DELAY_MS SLEEP_MS".into());
    };
    let wm = WorkManager::connect(url).await?;
    let reqs = (0..count.parse::<usize>()?)
        .map(|_| {
            OneTimeWorkRequest::builder(Sleep::ms(sleep_ms.parse()?))
                .initial_delay(Duration::from_millis(delay_ms.parse()?))
                .build()
                .map_err(Into::into)
        })
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    for e in wm.enqueue_many(reqs).await? {
        println!("ENQUEUED {}", e.id);
    }
    println!("CLOCK {}", clock_ms());
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("enqueue") {
        if let Err(e) = enqueue(&args[1..]).await {
            eprintln!("test-worker enqueue: {e}");
            std::process::exit(1);
        }
        return;
    }
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
    // A filter that does not parse is reported, and the default used instead.
    init_from_env("test-worker", tracing::Level::ERROR, Output::Stderr);
    let mut b = WorkerRuntime::builder(url)
        .queue(queue.as_str())
        .concurrency(num(concurrency) as usize)
        .lease(Duration::from_millis(num(lease_ms)))
        .cancel_grace(Duration::from_secs(5))
        .register(SleepWorker)
        .register(FailWorker)
        .register(FailOnceWorker)
        .register(NopWorker)
        .register(EmitWorker)
        .register(EchoWorker)
        .register(ProbeWorker)
        .register(ProgressWorker);
    if let Some(g) = rest.first() {
        b = b.grace_period(Duration::from_millis(num(g)));
    }
    // WORKQ_TEST_HTTP=<addr>: serve /metrics, /healthz and /readyz there.
    if let Ok(addr) = std::env::var("WORKQ_TEST_HTTP") {
        match addr.parse() {
            Ok(addr) => b = b.http(addr),
            Err(e) => {
                eprintln!("test-worker: WORKQ_TEST_HTTP {addr}: {e}");
                std::process::exit(2);
            }
        }
    }
    let rt = match b.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("test-worker: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "WORKER {} {} {}",
        std::process::id(),
        rt.worker_id(),
        clock_ms()
    );
    let metrics = rt.metrics().clone();
    if let Err(e) = rt.run().await {
        eprintln!("test-worker: {e}");
        std::process::exit(1);
    }
    let fenced: f64 = metrics
        .registry()
        .gather()
        .iter()
        .filter(|f| f.name() == "workq_acks_refused_total")
        .flat_map(|f| f.get_metric())
        .map(|m| m.get_counter().get_value())
        .sum();
    println!("FENCED {fenced}");
    println!("EXIT {}", std::process::id());
}
