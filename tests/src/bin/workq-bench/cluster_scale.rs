//! Cluster scaling (`--only cluster-scale`, a `redis+cluster://` URL with every primary as
//! a seed): `--jobs` no-op jobs over `--queues` queues, enqueued in batches and drained by
//! one runtime serving every queue; per primary, its queues, the jobs they held and the
//! Redis CPU it spent (`INFO cpu`, user + sys) per job.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Notify;
use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_worker::{Retention, WorkerRuntime};

use crate::common::*;
use crate::{Args, BoxError};

/// One node's CPU seconds (user + sys) so far.
async fn cpu_seconds(con: &mut redis::aio::MultiplexedConnection) -> Result<f64, BoxError> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(con).await?;
    let field = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    Ok(field("used_cpu_user") + field("used_cpu_sys"))
}

pub(crate) async fn cluster_scale(a: &Args) -> Result<Value, BoxError> {
    let seeds = a
        .redis
        .strip_prefix("redis+cluster://")
        .ok_or("cluster-scale needs a redis+cluster:// URL naming every primary")?;
    let mut nodes = Vec::new();
    for s in seeds.split(',') {
        let client = redis::Client::open(format!("redis://{s}"))?;
        let con = client.get_multiplexed_async_connection().await?;
        nodes.push((s.to_owned(), con));
    }
    let tag = queue_name("cs");
    let queues: Vec<String> = (0..a.queues).map(|i| format!("{tag}-{i}")).collect();
    let wm = WorkManager::connect(&a.redis).await?;
    // Which node owns each queue: the one that answers for its key without MOVED.
    let mut owned = vec![Vec::new(); nodes.len()];
    for q in &queues {
        for (n, (_, con)) in nodes.iter_mut().enumerate() {
            let r: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(format!("workq:{{{q}}}:jobs"))
                .query_async(con)
                .await;
            if r.is_ok() {
                owned[n].push(q.clone());
                break;
            }
        }
    }
    let per_queue = a.jobs / a.queues;
    let total = per_queue * a.queues;
    let reqs = (0..total as u64)
        .map(|i| {
            OneTimeWorkRequest::builder(Noop { i })
                .queue(&queues[i as usize % a.queues])
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut before = Vec::new();
    for (_, con) in nodes.iter_mut() {
        before.push(cpu_seconds(con).await?);
    }
    let t0 = Instant::now();
    for chunk in reqs.chunks(1000) {
        wm.enqueue_many(chunk.to_vec()).await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let all_done = Arc::new(Notify::new());
    let mut builder = with_claims(WorkerRuntime::builder(&a.redis), a)
        .concurrency(a.concurrency)
        .retention(Retention::new(Duration::ZERO, Duration::from_secs(3600)));
    for q in &queues {
        builder = builder.queue(q.clone());
    }
    let rt = builder
        .register(NoopWorker {
            done: Arc::clone(&done),
            target: total as u64,
            all_done: Arc::clone(&all_done),
            yields: false,
        })
        .build()?;
    let notified = Arc::clone(&all_done);
    rt.run_until(async move { notified.notified().await })
        .await?;
    let elapsed = t0.elapsed();
    let mut per_node = Vec::new();
    for (n, (addr, con)) in nodes.iter_mut().enumerate() {
        let cpu = cpu_seconds(con).await? - before[n];
        let jobs = owned[n].len() * per_queue;
        per_node.push(json!({
            "node": addr,
            "queues": owned[n].len(),
            "jobs": jobs,
            "redis_cpu_s": (cpu * 1000.0).round() / 1000.0,
            "cpu_us_per_job": if jobs > 0 { (cpu * 1e6 / jobs as f64 * 10.0).round() / 10.0 } else { 0.0 },
        }));
    }
    for q in &queues {
        let s = wm.queue_stats(q).await?;
        let ok = s.counters.get("succeeded").copied().unwrap_or(0);
        if ok != per_queue as u64 {
            return Err(format!("queue {q}: {ok} of {per_queue} jobs succeeded").into());
        }
    }
    Ok(json!({
        "scenario": "cluster-scale",
        "primaries": nodes.len(),
        "queues": a.queues,
        "jobs": total,
        "concurrency": a.concurrency,
        "enqueue_and_drain_per_s": (total as f64 / elapsed.as_secs_f64()).round(),
        "nodes": per_node,
    }))
}
