//! The workq benchmark: the scenarios of `../shared/peers/bullmq`, on the same terms, one
//! JSON object per line. With `--bullmq DIR` it also runs the BullMQ peer scripts from DIR
//! (where `npm install` has been run) against the same Redis in the same run, and prints
//! the ratios.
//!
//! ```text
//! cargo run --release -p workq-tests --bin workq-bench -- --redis redis://127.0.0.1:6379 --json
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Job, Retention, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    redis: String,
    json: bool,
    jobs: usize,
    concurrency: usize,
    delayed: usize,
    memory_jobs: usize,
    idle_secs: u64,
    chains: usize,
    progress_updates: usize,
    retention_jobs: usize,
    only: Option<String>,
    bullmq: Option<String>,
    /// Throughput rounds: with `--bullmq`, each workq run is followed at once by BullMQ's,
    /// and the ratios are the medians of the rounds' ratios.
    rounds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        redis: "redis://127.0.0.1:6379".into(),
        json: false,
        jobs: 50_000,
        concurrency: 50,
        delayed: 2000,
        memory_jobs: 100_000,
        idle_secs: 10,
        chains: 10_000,
        progress_updates: 500,
        retention_jobs: 1_000_000,
        only: None,
        bullmq: None,
        rounds: 1,
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
            "--progress-updates" => a.progress_updates = num(val()?)?,
            "--retention-jobs" => a.retention_jobs = num(val()?)?,
            "--only" => a.only = Some(val()?),
            "--bullmq" => a.bullmq = Some(val()?),
            "--rounds" => a.rounds = num(val()?)?.max(1),
            "--help" | "-h" => {
                return Err(
                    "usage: workq-bench [--redis URL] [--json] [--jobs N] [--concurrency N] \
                    [--delayed N] [--memory-jobs N] [--idle-secs N] [--chains N] \
                    [--progress-updates N] [--retention-jobs N] \
                    [--only throughput,latency,memory,idle,chain,progress,retention] \
                    [--bullmq DIR] [--rounds N]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

// ---- jobs ----

#[derive(Serialize, Deserialize)]
struct Noop {
    i: u64,
}
impl Job for Noop {
    const KIND: &'static str = "noop";
}

struct NoopWorker {
    done: Arc<AtomicU64>,
    target: u64,
    all_done: Arc<Notify>,
    /// Yield to the runtime once before finishing, like a job that awaits I/O: such an
    /// attempt runs as its own task, where a plain no-op finishes in its first poll.
    yields: bool,
}
impl Worker for NoopWorker {
    type Job = Noop;
    async fn do_work(&self, _: &WorkContext, _: Noop) -> Result<WorkResult, WorkError> {
        if self.yields {
            tokio::task::yield_now().await;
        }
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.all_done.notify_one();
        }
        Ok(WorkResult::success())
    }
}

#[derive(Serialize, Deserialize)]
struct Late {
    due: u64,
}
impl Job for Late {
    const KIND: &'static str = "late";
}

struct LateWorker {
    late: Arc<Mutex<Vec<i64>>>,
    target: usize,
    all_done: Arc<Notify>,
}
impl Worker for LateWorker {
    type Job = Late;
    async fn do_work(&self, _: &WorkContext, job: Late) -> Result<WorkResult, WorkError> {
        let late = now_ms() as i64 - job.due as i64;
        let mut v = self.late.lock().map_err(|_| "poisoned")?;
        v.push(late);
        if v.len() == self.target {
            self.all_done.notify_one();
        }
        Ok(WorkResult::success())
    }
}

/// The same shape as BullMQ's memory job data: `{ pad: 'x' * 100 }`, under BullMQ's name.
#[derive(Serialize, Deserialize)]
struct Mem {
    pad: String,
}
impl Job for Mem {
    const KIND: &'static str = "mem";
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn queue_name(tag: &str) -> String {
    format!("bench-{tag}-{}", now_ms())
}

async fn drop_queue(url: &str, queue: &str) -> Result<(), BoxError> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("workq:{{{queue}}}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut con)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let _: () = redis::cmd("SREM")
        .arg(workq_common::keys::QUEUES)
        .arg(queue)
        .query_async(&mut con)
        .await?;
    Ok(())
}

async fn info_field(url: &str, section: &str, field: &str) -> Result<u64, BoxError> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut con)
        .await?;
    let value = info
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("INFO has no {field}"))?;
    // commandstats lines are "calls=..,usec=..,..": take usec
    let value = value
        .split(',')
        .find_map(|p| p.strip_prefix("usec="))
        .unwrap_or(value);
    value
        .trim()
        .parse()
        .map_err(|_| format!("INFO {field} is not a number").into())
}

// ---- scenarios ----

async fn throughput(a: &Args) -> Result<Value, BoxError> {
    let (enq, drain) = enqueue_and_drain(a, false).await?;
    let (_, drain_yielding) = enqueue_and_drain(a, true).await?;
    Ok(json!({
        "scenario": "throughput",
        "jobs": a.jobs,
        "concurrency": a.concurrency,
        "enqueue_per_s": (a.jobs as f64 / enq.as_secs_f64()).round(),
        "drain_per_s": (a.jobs as f64 / drain.as_secs_f64()).round(),
        "drain_yielding_per_s": (a.jobs as f64 / drain_yielding.as_secs_f64()).round(),
    }))
}

/// Enqueues `a.jobs` no-op jobs in batches of 1,000, then drains them with one runtime;
/// returns both durations.
async fn enqueue_and_drain(a: &Args, yields: bool) -> Result<(Duration, Duration), BoxError> {
    let queue = queue_name(if yields { "tpy" } else { "tp" });
    let wm = WorkManager::connect(&a.redis).await?;
    let reqs = (0..a.jobs as u64)
        .map(|i| {
            OneTimeWorkRequest::builder(Noop { i })
                .queue(&queue)
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The same shape as the peer: batches of 1,000, each awaited before the next.
    let enqueue_usec_before = info_field(&a.redis, "commandstats", "cmdstat_fcall")
        .await
        .unwrap_or(0);
    let t0 = Instant::now();
    for chunk in reqs.chunks(1000) {
        wm.enqueue_many(chunk.to_vec()).await?;
    }
    let enq = t0.elapsed();
    if std::env::var_os("WORKQ_BENCH_METRICS").is_some() {
        let after = info_field(&a.redis, "commandstats", "cmdstat_fcall")
            .await
            .unwrap_or(0);
        eprintln!(
            "redis script time during the enqueue: {} ms of {} ms",
            after.saturating_sub(enqueue_usec_before) / 1000,
            enq.as_millis()
        );
    }

    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .concurrency(a.concurrency)
        // removeOnComplete, as in the peer
        .retention(Retention {
            succeeded: Duration::ZERO,
            failed: Duration::from_secs(3600),
        })
        .register(NoopWorker {
            done: Arc::clone(&done),
            target: a.jobs as u64,
            all_done: Arc::clone(&all_done),
            yields,
        })
        .build()?;
    let script_usec_before = info_field(&a.redis, "commandstats", "cmdstat_fcall")
        .await
        .unwrap_or(0);
    let t0 = Instant::now();
    let notified = Arc::clone(&all_done);
    let metrics = rt.metrics().registry().clone();
    // Runs until every job ran, then shuts down, which flushes the last acks.
    rt.run_until(async move { notified.notified().await })
        .await?;
    let drain = t0.elapsed();
    if std::env::var_os("WORKQ_BENCH_METRICS").is_some() {
        let after = info_field(&a.redis, "commandstats", "cmdstat_fcall")
            .await
            .unwrap_or(0);
        eprintln!(
            "redis script time during the drain: {} ms of {} ms",
            after.saturating_sub(script_usec_before) / 1000,
            drain.as_millis()
        );
        for family in metrics.gather() {
            if family.name().contains("calls") || family.name().contains("claimed") {
                for m in family.get_metric() {
                    let labels: Vec<String> = m
                        .get_label()
                        .iter()
                        .map(|l| format!("{}={}", l.name(), l.value()))
                        .collect();
                    eprintln!(
                        "{} {:?} {}",
                        family.name(),
                        labels,
                        m.get_counter().get_value()
                    );
                }
            }
        }
    }
    let stats = wm.queue_stats(&queue).await?;
    let succeeded = stats.counters.get("succeeded").copied().unwrap_or(0);
    if succeeded != a.jobs as u64 {
        return Err(format!("only {succeeded} of {} jobs succeeded", a.jobs).into());
    }
    drop_queue(&a.redis, &queue).await?;
    Ok((enq, drain))
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn latency(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("lat");
    let wm = WorkManager::connect(&a.redis).await?;
    let late = Arc::new(Mutex::new(Vec::with_capacity(a.delayed)));
    let all_done = Arc::new(Notify::new());
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .concurrency(50)
        .retention(Retention {
            succeeded: Duration::ZERO,
            failed: Duration::from_secs(3600),
        })
        .register(LateWorker {
            late: Arc::clone(&late),
            target: a.delayed,
            all_done: Arc::clone(&all_done),
        })
        .build()?;
    let notified = Arc::clone(&all_done);
    let worker = tokio::spawn(rt.run_until(async move { notified.notified().await }));
    // The worker is idle and waiting, as in the peer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base = now_ms();
    let mut rng = base;
    let reqs = (0..a.delayed)
        .map(|_| {
            // xorshift: no rand dependency for a uniform spread of delays
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let d = 200 + rng % 3000;
            // BullMQ stamps a delayed job with the client's clock when the job object is
            // made, so its due time is base + d; run_at gives workq the same due time.
            // (initial_delay would count from when Redis receives the batch instead.)
            OneTimeWorkRequest::builder(Late { due: base + d })
                .queue(&queue)
                .run_at(UNIX_EPOCH + Duration::from_millis(base + d))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    wm.enqueue_many(reqs).await?;
    worker.await??;
    let mut v = late.lock().map_err(|_| "poisoned")?.clone();
    v.sort_unstable();
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "latency",
        "delayed_jobs": a.delayed,
        "late_ms_p50": pct(&v, 0.5),
        "late_ms_p99": pct(&v, 0.99),
        "late_ms_max": v.last().copied().unwrap_or(0),
        "early": v.iter().filter(|l| **l < 0).count(),
    }))
}

async fn memory(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("mem");
    let wm = WorkManager::connect(&a.redis).await?;
    let pad = "x".repeat(100);
    let reqs = (0..a.memory_jobs)
        .map(|_| {
            OneTimeWorkRequest::builder(Mem { pad: pad.clone() })
                .queue(&queue)
                .initial_delay(Duration::from_secs(3600))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Register the queue first so the measured delta is the jobs alone.
    wm.enqueue_many(Vec::new()).await?;
    let before = info_field(&a.redis, "memory", "used_memory").await?;
    for chunk in reqs.chunks(1000) {
        wm.enqueue_many(chunk.to_vec()).await?;
    }
    let after = info_field(&a.redis, "memory", "used_memory").await?;
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "memory",
        "jobs": a.memory_jobs,
        "payload_bytes": 100,
        "bytes_per_scheduled_job": ((after as f64 - before as f64) / a.memory_jobs as f64).round(),
    }))
}

async fn idle(a: &Args) -> Result<Value, BoxError> {
    const WORKERS: usize = 4;
    let queue = queue_name("idle");
    let mut stops = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..WORKERS {
        let rt = WorkerRuntime::builder(&a.redis)
            .queue(&queue)
            .register(NoopWorker {
                done: Arc::default(),
                target: u64::MAX,
                all_done: Arc::default(),
                yields: false,
            })
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        joins.push(tokio::spawn(rt.run_until(async {
            let _ = rx.await;
        })));
    }
    // Past start-up (connect, subscribe, first claim, start-up checks).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = info_field(&a.redis, "stats", "total_commands_processed").await?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.idle_secs)).await;
    let after = info_field(&a.redis, "stats", "total_commands_processed").await?;
    let secs = t0.elapsed().as_secs_f64();
    for s in stops {
        let _ = s.send(());
    }
    for j in joins {
        j.await??;
    }
    drop_queue(&a.redis, &queue).await?;
    // The first INFO is counted in `after`; it is ours, not the workers'.
    let cmds = after.saturating_sub(before).saturating_sub(1);
    Ok(json!({
        "scenario": "idle",
        "workers": WORKERS,
        "seconds": a.idle_secs,
        "redis_cmds_per_s_per_worker": ((cmds as f64 / secs / WORKERS as f64) * 100.0).round() / 100.0,
    }))
}

/// No-op steps of a chain, counting the last steps.
struct StepWorker {
    done: Arc<AtomicU64>,
    target: u64,
    all_done: Arc<Notify>,
}
#[derive(Serialize, Deserialize)]
struct Step {
    last: bool,
}
impl Job for Step {
    const KIND: &'static str = "step";
}
impl Worker for StepWorker {
    type Job = Step;
    async fn do_work(&self, _: &WorkContext, job: Step) -> Result<WorkResult, WorkError> {
        if job.last && self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.all_done.notify_one();
        }
        Ok(WorkResult::success())
    }
}

/// 3-step chains (a -> b -> c) of no-op jobs: how fast they drain, in jobs per second, to
/// set beside the one-step drain rate.
async fn chain(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("chain");
    let wm = WorkManager::connect(&a.redis).await?;
    let step = |last: bool| {
        OneTimeWorkRequest::builder(Step { last })
            .queue(&queue)
            .build()
    };
    let mut chains = Vec::with_capacity(a.chains);
    for _ in 0..a.chains {
        chains.push(
            wm.begin_with([step(false)?])
                .then([step(false)?])
                .then([step(true)?]),
        );
    }
    let t0 = Instant::now();
    futures_util::stream::iter(chains)
        .map(|c| c.enqueue())
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let enq = t0.elapsed();
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .concurrency(a.concurrency)
        .retention(Retention {
            succeeded: Duration::ZERO,
            failed: Duration::from_secs(3600),
        })
        .register(StepWorker {
            done: Arc::clone(&done),
            target: a.chains as u64,
            all_done: Arc::clone(&all_done),
        })
        .build()?;
    let t0 = Instant::now();
    let notified = Arc::clone(&all_done);
    rt.run_until(async move { notified.notified().await })
        .await?;
    let drain = t0.elapsed();
    drop_queue(&a.redis, &queue).await?;
    let jobs = 3 * a.chains;
    Ok(json!({
        "scenario": "chain",
        "chains": a.chains,
        "steps": 3,
        "concurrency": a.concurrency,
        "chains_enqueued_per_s": (a.chains as f64 / enq.as_secs_f64()).round(),
        "chain_jobs_per_s": (jobs as f64 / drain.as_secs_f64()).round(),
    }))
}

#[derive(Serialize, Deserialize)]
struct Report {
    updates: u32,
}
impl Job for Report {
    const KIND: &'static str = "report";
}
#[derive(Serialize, Deserialize)]
struct Sent {
    at_us: u64,
}
struct ReportWorker;
impl Worker for ReportWorker {
    type Job = Report;
    async fn do_work(&self, ctx: &WorkContext, job: Report) -> Result<WorkResult, WorkError> {
        for _ in 0..job.updates {
            tokio::time::sleep(Duration::from_millis(2)).await;
            ctx.set_progress(&Sent { at_us: now_us() }).await?;
        }
        Ok(WorkResult::success())
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Progress: from `set_progress` in a worker to a watcher's stream item (both through
/// Redis: the worker runtime and the producer share nothing but Redis here).
async fn progress(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("progress");
    let wm = WorkManager::connect(&a.redis).await?;
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .register(ReportWorker)
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(rt.run_until(async {
        let _ = stopped.await;
    }));
    let req = OneTimeWorkRequest::builder(Report {
        updates: a.progress_updates as u32,
    })
    .queue(&queue)
    .build()?;
    let mut items = wm
        .watch_in(&queue, workq_producer::WatchTarget::Id(req.id()))
        .await?;
    wm.enqueue(req).await?;
    let mut late_us: Vec<i64> = Vec::with_capacity(a.progress_updates);
    while let Some(info) = items.next_info().await {
        let info = info?;
        if let Some(p) = &info.progress {
            let sent: Sent = p.decode()?;
            late_us.push(now_us() as i64 - sent.at_us as i64);
        }
        if info.state.is_finished() {
            break;
        }
    }
    let _ = stop.send(());
    worker.await??;
    drop_queue(&a.redis, &queue).await?;
    late_us.sort_unstable();
    if late_us.is_empty() {
        return Err("no progress arrived".into());
    }
    let ms = |us: i64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
    Ok(json!({
        "scenario": "progress",
        "updates": late_us.len(),
        "ms_p50": ms(pct(&late_us, 0.5)),
        "ms_p99": ms(pct(&late_us, 0.99)),
        "ms_max": ms(*late_us.last().unwrap_or(&0)),
    }))
}

/// Retention: a million no-op jobs through one runtime that keeps successes for 1 s;
/// Redis memory before, at the end of the drain, and once pruning is done.
async fn retention(a: &Args) -> Result<Value, BoxError> {
    let queue = queue_name("retention");
    let wm = WorkManager::connect(&a.redis).await?;
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let rt = WorkerRuntime::builder(&a.redis)
        .queue(&queue)
        .concurrency(a.concurrency)
        .retention(Retention {
            succeeded: Duration::from_secs(1),
            failed: Duration::from_secs(1),
        })
        .register(NoopWorker {
            done: Arc::clone(&done),
            target: a.retention_jobs as u64,
            all_done: Arc::clone(&all_done),
            yields: false,
        })
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(rt.run_until(async {
        let _ = stopped.await;
    }));
    // Baseline: the worker is up and the queue exists (its first enqueue registered it).
    wm.enqueue_many(Vec::new()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = info_field(&a.redis, "memory", "used_memory").await?;
    let t0 = Instant::now();
    let mut peak = baseline;
    for start in (0..a.retention_jobs).step_by(10_000) {
        let reqs = (start..(start + 10_000).min(a.retention_jobs))
            .map(|i| {
                OneTimeWorkRequest::builder(Noop { i: i as u64 })
                    .queue(&queue)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        wm.enqueue_many(reqs).await?;
        peak = peak.max(info_field(&a.redis, "memory", "used_memory").await?);
    }
    all_done.notified().await;
    let drained = t0.elapsed();
    let at_drain = info_field(&a.redis, "memory", "used_memory").await?;
    // Pruning is the worker's job: wait until it has removed every finished job.
    loop {
        let s = wm.queue_stats(&queue).await?;
        if s.finished == 0 && s.enqueued == 0 && s.running == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pruned_after = t0.elapsed();
    let after = info_field(&a.redis, "memory", "used_memory").await?;
    let _ = stop.send(());
    worker.await??;
    drop_queue(&a.redis, &queue).await?;
    Ok(json!({
        "scenario": "retention",
        "jobs": a.retention_jobs,
        "retention_s": 1,
        "baseline_bytes": baseline,
        "peak_bytes": peak.max(at_drain),
        "after_prune_bytes": after,
        "after_minus_baseline_bytes": after as i64 - baseline as i64,
        "drained_s": (drained.as_secs_f64() * 10.0).round() / 10.0,
        "pruned_by_s": (pruned_after.as_secs_f64() * 10.0).round() / 10.0,
    }))
}

// ---- the peer ----

fn redis_port(url: &str) -> Result<String, BoxError> {
    let info = redis::Client::open(url)?.get_connection_info().clone();
    match info.addr() {
        redis::ConnectionAddr::Tcp(_, port) => Ok(port.to_string()),
        _ => Err("--bullmq needs a TCP Redis URL".into()),
    }
}

fn run_peer(dir: &str, script: &str, args: &[String]) -> Result<Value, BoxError> {
    let out = std::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "node {script} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let last = line.lines().last().ok_or("the peer printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

fn ratio(a: &Value, ka: &str, b: &Value, kb: &str) -> Option<f64> {
    let (x, y) = (a.get(ka)?.as_f64()?, b.get(kb)?.as_f64()?);
    (y != 0.0).then(|| (x / y * 100.0).round() / 100.0)
}

/// The median of some numbers (`None` for none).
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some(((xs[n / 2 - 1] + xs[n / 2]) / 2.0 * 100.0).round() / 100.0),
    }
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
        .map(|_| redis_port(&a.redis))
        .transpose()?;
    // Throughput rounds, each workq run next to BullMQ's (when it runs).
    let mut pairs: Vec<(Value, Value)> = Vec::new();
    for name in [
        "throughput",
        "latency",
        "memory",
        "idle",
        "chain",
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
                results.push(v);
            }
            continue;
        }
        let v = match name {
            "latency" => latency(a).await?,
            "memory" => memory(a).await?,
            "idle" => idle(a).await?,
            "chain" => chain(a).await?,
            "progress" => progress(a).await?,
            _ => retention(a).await?,
        };
        emit(&v);
        results.push(v);
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
        let find = |s: &str| results.iter().find(|r| r["scenario"] == s);
        let mut cmp = serde_json::Map::new();
        cmp.insert("scenario".into(), json!("vs_bullmq"));
        if !pairs.is_empty() {
            let each = |k: &str| -> Vec<f64> {
                pairs
                    .iter()
                    .filter_map(|(w, b)| ratio(w, k, b, k))
                    .collect()
            };
            let (drain, enqueue) = (each("drain_per_s"), each("enqueue_per_s"));
            cmp.insert("drain_x".into(), json!(median(drain.clone())));
            cmp.insert("enqueue_x".into(), json!(median(enqueue.clone())));
            if pairs.len() > 1 {
                cmp.insert("drain_x_rounds".into(), json!(drain));
                cmp.insert("enqueue_x_rounds".into(), json!(enqueue));
            }
        }
        if let (Some(l), Some(lat)) = (find("latency"), &lat) {
            cmp.insert(
                "p99_late_bullmq_over_workq".into(),
                json!(ratio(lat, "late_ms_p99", l, "late_ms_p99")),
            );
        }
        if let (Some(m), Some(lat)) = (find("memory"), &lat) {
            cmp.insert(
                "memory_bullmq_over_workq".into(),
                json!(ratio(
                    lat,
                    "bytes_per_scheduled_job",
                    m,
                    "bytes_per_scheduled_job"
                )),
            );
        }
        emit(&Value::Object(cmp));
    }
    Ok(())
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
