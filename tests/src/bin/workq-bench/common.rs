//! What the scenarios share: the no-op job, clocks, queue names, dropping a queue, INFO fields.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use workq_worker::{Job, WorkContext, WorkError, WorkResult, Worker};

use crate::BoxError;

#[derive(Serialize, Deserialize)]
pub(crate) struct Noop {
    pub(crate) i: u64,
}
impl Job for Noop {
    const KIND: &'static str = "noop";
}

pub(crate) struct NoopWorker {
    pub(crate) done: Arc<AtomicU64>,
    pub(crate) target: u64,
    pub(crate) all_done: Arc<Notify>,
    /// Yield to the runtime once before finishing, like a job that awaits I/O: such an
    /// attempt runs as its own task, where a plain no-op finishes in its first poll.
    pub(crate) yields: bool,
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

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn queue_name(tag: &str) -> String {
    format!("bench-{tag}-{}", now_ms())
}

pub(crate) async fn drop_queue(url: &str, queue: &str) -> Result<(), BoxError> {
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
        .arg(workq_common::internal::keys::QUEUES)
        .arg(queue)
        .query_async(&mut con)
        .await?;
    Ok(())
}

/// Redis' CPU so far (`INFO cpu`: used_cpu_user + used_cpu_sys), in microseconds: the
/// same figure the peers' benches take around each phase.
pub(crate) async fn redis_cpu_us(url: &str) -> Result<f64, BoxError> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO").arg("cpu").query_async(&mut con).await?;
    let mut total = 0.0;
    for line in info.lines() {
        if let Some((k, v)) = line.trim().split_once(':') {
            if k == "used_cpu_user" || k == "used_cpu_sys" {
                total += v.parse::<f64>().map_err(|e| format!("INFO cpu {k}: {e}"))?;
            }
        }
    }
    Ok(total * 1e6)
}

pub(crate) async fn info_field(url: &str, section: &str, field: &str) -> Result<u64, BoxError> {
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

pub(crate) fn pct(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The builder with `--claim-batch`, when given (otherwise the runtime's default).
pub(crate) fn with_claims(
    b: workq_worker::WorkerRuntimeBuilder,
    a: &crate::Args,
) -> workq_worker::WorkerRuntimeBuilder {
    match a.claim_batch {
        Some(n) => b.claim_batch(n),
        None => b,
    }
}
