//! Throughput: enqueue rate (batches of 1,000) and drain rate of no-op jobs, plain and yielding.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Retention, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

pub(crate) async fn throughput(a: &Args) -> Result<Value, BoxError> {
    let plain = enqueue_and_drain(a, false).await?;
    let yielding = enqueue_and_drain(a, true).await?;
    let (enq, drain, drain_yielding) = (plain.enqueue, plain.drain, yielding.drain);
    let per_job = |us: f64| (us / a.jobs as f64 * 10.0).round() / 10.0;
    Ok(json!({
        "scenario": "throughput",
        "http": a.http,
        "retain": a.retain,
        "jobs": a.jobs,
        "concurrency": a.concurrency,
        "enqueue_per_s": (a.jobs as f64 / enq.as_secs_f64()).round(),
        "drain_per_s": (a.jobs as f64 / drain.as_secs_f64()).round(),
        "drain_yielding_per_s": (a.jobs as f64 / drain_yielding.as_secs_f64()).round(),
        // Redis CPU (INFO cpu) over each phase of the plain pass, per job: the peers'
        // benches report the same two figures.
        "redis_cpu_us_per_job_enqueue": per_job(plain.cpu_enqueue_us),
        "redis_cpu_us_per_job_drain": per_job(plain.cpu_drain_us),
        "redis_cpu_us_per_job": per_job(plain.cpu_enqueue_us + plain.cpu_drain_us),
    }))
}

/// One pass: how long the enqueue and the drain took, and Redis' CPU over each.
pub(crate) struct Pass {
    pub(crate) enqueue: Duration,
    pub(crate) drain: Duration,
    pub(crate) cpu_enqueue_us: f64,
    pub(crate) cpu_drain_us: f64,
}

/// Enqueues `a.jobs` no-op jobs in batches of 1,000, then drains them with one runtime;
/// returns both durations and Redis' CPU over each.
pub(crate) async fn enqueue_and_drain(a: &Args, yields: bool) -> Result<Pass, BoxError> {
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
    let cpu0 = redis_cpu_us(&a.redis).await?;
    let t0 = Instant::now();
    for chunk in reqs.chunks(1000) {
        wm.enqueue_many(chunk.to_vec()).await?;
    }
    let enq = t0.elapsed();
    let cpu1 = redis_cpu_us(&a.redis).await?;
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
    let mut builder = with_claims(WorkerRuntime::builder(&a.redis), a);
    let mut scraper = None;
    if a.http {
        // A port free now, for the endpoint; scraped once a second during the drain.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        builder = builder.http(addr);
        scraper = Some(tokio::spawn(scrape_every_second(addr)));
    }
    let rt = builder
        .queue(&queue)
        .concurrency(a.concurrency)
        // removeOnComplete, as in the peer; with --retain, the default retention
        .retention(if a.retain {
            Retention::default()
        } else {
            Retention::new(Duration::ZERO, Duration::from_secs(3600))
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
    let cpu2 = redis_cpu_us(&a.redis).await?;
    if let Some(s) = scraper {
        s.abort();
    }
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
            if family.name() == "workq_redis_call_duration_seconds"
                || family.name() == "workq_jobs_claimed_total"
            {
                for m in family.get_metric() {
                    let labels: Vec<String> = m
                        .get_label()
                        .iter()
                        .map(|l| format!("{}={}", l.name(), l.value()))
                        .collect();
                    // Calls are the histogram's count; claims a counter.
                    let n = if family.name() == "workq_redis_call_duration_seconds" {
                        m.get_histogram().get_sample_count() as f64
                    } else {
                        m.get_counter().get_value()
                    };
                    eprintln!("{} {:?} {n}", family.name(), labels);
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
    Ok(Pass {
        enqueue: enq,
        drain,
        cpu_enqueue_us: cpu1 - cpu0,
        cpu_drain_us: cpu2 - cpu1,
    })
}

/// GETs `/metrics` from `addr` once a second (as Prometheus would) until aborted; a
/// refused connection (the endpoint not up yet) is tried again the next second.
async fn scrape_every_second(addr: std::net::SocketAddr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let scrape = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                .await?;
            let mut body = Vec::new();
            s.read_to_end(&mut body).await?;
            Ok::<_, std::io::Error>(body.len())
        };
        let _ = scrape.await;
    }
}
