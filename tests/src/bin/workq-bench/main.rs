//! The workq benchmark: the scenarios of `../shared/peers/bullmq`, on the same terms, one
//! JSON object per line. With `--bullmq DIR` it also runs the BullMQ peer scripts from DIR
//! (where `npm install` has been run) against the same Redis in the same run, and prints
//! the ratios.
//!
//! ```text
//! cargo run --release -p workq-tests --bin workq-bench -- --redis redis://127.0.0.1:6379 --json
//! ```

use std::process::ExitCode;

use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

mod chain;
mod cluster_scale;
mod common;
mod idle;
mod latency;
mod memory;
mod peer;
mod periodic;
mod progress;
mod retention;
mod throughput;

use chain::chain;
use cluster_scale::cluster_scale;
use idle::idle;
use latency::latency;
use memory::memory;
use peer::{median, ratio, redis_port, run_peer, run_rust_peer};
use periodic::periodic;
use progress::progress;
use retention::retention;
use throughput::throughput;

struct Args {
    redis: String,
    json: bool,
    jobs: usize,
    concurrency: usize,
    delayed: usize,
    memory_jobs: usize,
    idle_secs: u64,
    chains: usize,
    /// Periodic works of the periodic scenario, and how long it runs them.
    periodic: usize,
    periodic_secs: u64,
    /// Throughput's worker keeps successes an hour (the default retention) instead of
    /// deleting them at once (the peers' removeOnComplete).
    retain: bool,
    /// The worker runtimes' claim size (`claim_batch`); None: the default.
    claim_batch: Option<usize>,
    progress_updates: usize,
    retention_jobs: usize,
    only: Option<String>,
    bullmq: Option<String>,
    /// The bullmq-rs peer (`../shared/peers/bullmq-rs`, built with `cargo build --release`
    /// in this directory): run beside workq in each throughput round, and its latency.
    bullmq_rs: Option<String>,
    /// Throughput rounds: with `--bullmq`, each workq run is followed at once by BullMQ's,
    /// and the ratios are the medians of the rounds' ratios.
    rounds: usize,
    /// Throughput drains with the worker's HTTP endpoint on, scraped once a second.
    http: bool,
    /// Queues of the cluster-scale scenario.
    queues: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        redis: "redis://127.0.0.1:6379".into(),
        json: false,
        jobs: 50_000,
        concurrency: 50,
        delayed: 2000,
        memory_jobs: 100_000,
        idle_secs: 60,
        chains: 10_000,
        periodic: 10_000,
        periodic_secs: 10,
        retain: false,
        claim_batch: None,
        progress_updates: 500,
        retention_jobs: 1_000_000,
        only: None,
        bullmq: None,
        bullmq_rs: None,
        rounds: 1,
        http: false,
        queues: 12,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--redis" => a.redis = val()?,
            "--json" => a.json = true,
            "--jobs" => a.jobs = num(val()?)?,
            "--concurrency" => a.concurrency = num(val()?)?,
            "--delayed" => a.delayed = num(val()?)?,
            "--memory-jobs" => a.memory_jobs = num(val()?)?,
            "--idle-secs" => a.idle_secs = num(val()?)? as u64,
            "--chains" => a.chains = num(val()?)?,
            "--periodic" => a.periodic = num(val()?)?,
            "--periodic-secs" => a.periodic_secs = num(val()?)? as u64,
            "--retain" => a.retain = true,
            "--claim-batch" => a.claim_batch = Some(num(val()?)?),
            "--progress-updates" => a.progress_updates = num(val()?)?,
            "--retention-jobs" => a.retention_jobs = num(val()?)?,
            "--only" => a.only = Some(val()?),
            "--bullmq" => a.bullmq = Some(val()?),
            "--bullmq-rs" => a.bullmq_rs = Some(val()?),
            "--rounds" => a.rounds = num(val()?)?.max(1),
            "--http" => a.http = true,
            "--queues" => a.queues = num(val()?)?.max(1),
            "--help" | "-h" => {
                return Err(
                    "usage: workq-bench [--redis URL] [--json] [--jobs N] [--concurrency N] \
                    [--delayed N] [--memory-jobs N] [--idle-secs N] [--chains N] \
                    [--periodic N] [--periodic-secs N] [--retain] [--claim-batch N] \
                    [--progress-updates N] [--retention-jobs N] \
                    [--only throughput,latency,memory,idle,chain,periodic,progress,retention] \
                    [--bullmq DIR] [--bullmq-rs DIR] [--rounds N] [--http] [--queues N]\n\
                    (--only cluster-scale, with a redis+cluster:// URL naming every primary, \
                    runs only when asked for)"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

async fn run(a: &Args) -> Result<(), BoxError> {
    let mut results = Vec::new();
    let want = |s: &str| {
        a.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|x| x == s))
    };
    let emit = |v: &Value| {
        if a.json {
            println!("{v}");
        } else {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        }
    };
    let port = a
        .bullmq
        .as_ref()
        .or(a.bullmq_rs.as_ref())
        .map(|_| redis_port(&a.redis))
        .transpose()?;
    // Cluster scaling runs only when asked for by name.
    if a.only
        .as_deref()
        .is_some_and(|o| o.split(',').any(|x| x == "cluster-scale"))
    {
        for round in 1..=a.rounds {
            let mut v = cluster_scale(a).await?;
            v["round"] = json!(round);
            emit(&v);
        }
    }
    // Throughput rounds, each workq run next to BullMQ's (when it runs).
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    let mut rust_pairs: Vec<(Value, Value)> = Vec::new();
    for name in [
        "throughput",
        "latency",
        "memory",
        "idle",
        "chain",
        "periodic",
        "progress",
        "retention",
    ] {
        if !want(name) {
            continue;
        }
        if name == "throughput" {
            for round in 1..=a.rounds {
                let mut v = throughput(a).await?;
                if a.rounds > 1 {
                    v["round"] = json!(round);
                }
                emit(&v);
                if let (Some(dir), Some(port)) = (&a.bullmq, &port) {
                    let mut p = run_peer(
                        dir,
                        "bench.js",
                        &[a.jobs.to_string(), a.concurrency.to_string(), port.clone()],
                    )?;
                    if a.rounds > 1 {
                        p["round"] = json!(round);
                    }
                    emit(&p);
                    pairs.push((v.clone(), p));
                }
                if let (Some(dir), Some(port)) = (&a.bullmq_rs, &port) {
                    let mut p = run_rust_peer(
                        dir,
                        "bench",
                        &[a.jobs.to_string(), a.concurrency.to_string(), port.clone()],
                    )?;
                    if a.rounds > 1 {
                        p["round"] = json!(round);
                    }
                    emit(&p);
                    rust_pairs.push((v.clone(), p));
                }
                results.push(v);
            }
            continue;
        }
        let v = match name {
            "latency" => latency(a).await?,
            "memory" => memory(a).await?,
            "idle" => idle(a).await?,
            "chain" => chain(a).await?,
            "periodic" => periodic(a).await?,
            "progress" => progress(a).await?,
            _ => retention(a).await?,
        };
        emit(&v);
        results.push(v);
    }
    if let (Some(dir), Some(port)) = (&a.bullmq_rs, &port) {
        let lat = if want("latency") || want("memory") {
            let lat = run_rust_peer(
                dir,
                "latency",
                &[
                    a.delayed.to_string(),
                    a.memory_jobs.to_string(),
                    port.clone(),
                ],
            )?;
            emit(&lat);
            Some(lat)
        } else {
            None
        };
        emit(&compare(
            "vs_bullmq_rs",
            &rust_pairs,
            &results,
            lat.as_ref(),
        ));
    }
    if let (Some(dir), Some(port)) = (&a.bullmq, port) {
        let lat = if want("latency") || want("memory") {
            let lat = run_peer(
                dir,
                "latency.js",
                &[a.delayed.to_string(), a.memory_jobs.to_string(), port],
            )?;
            emit(&lat);
            Some(lat)
        } else {
            None
        };
        emit(&compare("vs_bullmq", &pairs, &results, lat.as_ref()));
    }
    Ok(())
}

/// The ratios of workq to a peer: per throughput round (medians, and each round's when
/// there are several), the latency and the memory per scheduled job, and Redis CPU per
/// job (the peer's over workq's: how many times less workq costs Redis).
fn compare(name: &str, pairs: &[(Value, Value)], results: &[Value], lat: Option<&Value>) -> Value {
    let find = |s: &str| results.iter().find(|r| r["scenario"] == s);
    let mut cmp = serde_json::Map::new();
    cmp.insert("scenario".into(), json!(name));
    if !pairs.is_empty() {
        let each = |k: &str, kp: &str| -> Vec<f64> {
            pairs
                .iter()
                .filter_map(|(w, b)| ratio(w, k, b, kp))
                .collect()
        };
        let (drain, enqueue) = (
            each("drain_per_s", "drain_per_s"),
            each("enqueue_per_s", "enqueue_per_s"),
        );
        let yielding = each("drain_yielding_per_s", "drain_per_s");
        cmp.insert("drain_x".into(), json!(median(drain.clone())));
        cmp.insert("drain_yielding_x".into(), json!(median(yielding.clone())));
        cmp.insert("enqueue_x".into(), json!(median(enqueue.clone())));
        let cpu: Vec<f64> = pairs
            .iter()
            .filter_map(|(w, b)| {
                let ours = w.get("redis_cpu_us_per_job")?.as_f64()?;
                let theirs = b.get("redis_cpu_us_per_job_enqueue")?.as_f64()?
                    + b.get("redis_cpu_us_per_job_drain")?.as_f64()?;
                (ours > 0.0).then(|| (theirs / ours * 100.0).round() / 100.0)
            })
            .collect();
        if !cpu.is_empty() {
            cmp.insert(
                "redis_cpu_per_job_peer_over_workq".into(),
                json!(median(cpu.clone())),
            );
        }
        if pairs.len() > 1 {
            cmp.insert("drain_x_rounds".into(), json!(drain));
            cmp.insert("drain_yielding_x_rounds".into(), json!(yielding));
            cmp.insert("enqueue_x_rounds".into(), json!(enqueue));
            if !cpu.is_empty() {
                cmp.insert(
                    "redis_cpu_per_job_peer_over_workq_rounds".into(),
                    json!(cpu),
                );
            }
        }
    }
    if let (Some(l), Some(lat)) = (find("latency"), lat) {
        cmp.insert(
            "p99_late_peer_over_workq".into(),
            json!(ratio(lat, "late_ms_p99", l, "late_ms_p99")),
        );
    }
    if let (Some(m), Some(lat)) = (find("memory"), lat) {
        cmp.insert(
            "memory_peer_over_workq".into(),
            json!(ratio(
                lat,
                "bytes_per_scheduled_job",
                m,
                "bytes_per_scheduled_job"
            )),
        );
    }
    Value::Object(cmp)
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(filter) = std::env::var("WORKQ_LOG")
        .ok()
        .and_then(|s| s.parse::<tracing_subscriber::filter::Targets>().ok())
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(filter)
            .init();
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workq-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
