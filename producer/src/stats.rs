//! A queue's sizes and counters ([`WorkManager::queue_stats`]), for dashboards and the
//! `workq stats` command.

use std::collections::HashMap;

use workq_common::internal::keys::PAUSE_MARKER;
use workq_common::internal::Conn;
use workq_common::internal::QueueKeys;
use workq_common::Result;

use crate::connection::read_together;
use crate::workers::{Presence, LIVE_MS};
use crate::WorkManager;

/// A queue's size and counters, for dashboards and the demo's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// ENQUEUED jobs (due or not), in every lane: `ready + scheduled`.
    pub enqueued: u64,
    /// ENQUEUED jobs due now (on Redis' clock), in every lane: the backlog.
    pub ready: u64,
    /// ENQUEUED jobs due later (delayed, backing off, or periodic work's next run).
    pub scheduled: u64,
    /// How long the oldest ready job has been due, in milliseconds on Redis' clock (None
    /// when nothing is ready).
    pub oldest_ready_age_ms: Option<u64>,
    /// RUNNING jobs.
    pub running: u64,
    /// BLOCKED jobs (waiting for parents in a chain).
    pub blocked: u64,
    /// Finished jobs still retained (the size of the queue's `done` set; the three
    /// counts below split it by state).
    pub finished: u64,
    /// Retained SUCCEEDED jobs.
    pub retained_succeeded: u64,
    /// Retained FAILED jobs.
    pub retained_failed: u64,
    /// Retained CANCELLED jobs.
    pub retained_cancelled: u64,
    /// ENQUEUED jobs per lane: "" plain, "x" expedited, "@labels" needing labels,
    /// "x@labels", and any of these followed by "#kind" (jobs passed on by a worker that
    /// does not run their kind).
    pub lanes: Vec<(String, u64)>,
    /// Workers seen looking for work in the last minute, with their labels.
    pub workers: Vec<(String, Vec<String>)>,
    /// ENQUEUED jobs that need labels no worker seen in the last minute has, or whose
    /// kind none of them runs: they wait until such a worker comes.
    pub unsatisfiable: u64,
    /// Whether the queue is paused ([`WorkManager::pause_queue`]): workers claim nothing
    /// from it until it is resumed; enqueueing goes on.
    pub paused: bool,
    /// Cumulative counters: enqueued, claimed, succeeded, failed, cancelled, retried,
    /// lease_expired, released, pruned, pruned_early (ahead of retention, under memory
    /// pressure), kind_parked (passed on to a kind lane), periodic_runs, and the operator's
    /// operator_retried, deleted and purged. (The stats hash
    /// also holds the retained counts by state, which are not cumulative: they are the
    /// `retained_*` fields above.)
    pub counters: HashMap<String, u64>,
}

impl WorkManager {
    /// Sizes and counters of one queue.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats> {
        let q = QueueKeys::new(queue)?;
        self.redis().run(|con| read_stats(con, &q)).await
    }
}

/// Reads the queue's sizes, counters and workers, and works out which lanes no live worker
/// serves.
async fn read_stats(mut con: Conn, q: &QueueKeys) -> Result<QueueStats> {
    type Head = (
        u64,
        u64,
        HashMap<String, i64>,
        Vec<String>,
        Vec<String>,
        HashMap<String, String>,
        (u64, u64),
    );
    let (plain, finished, counters, holders, lanes, seen, time): Head =
        read_together(&mut con, |pipe| {
            pipe.zcard(q.due())
                .zcard(q.done())
                .hgetall(q.stats())
                .zrange(q.leases(), 0, -1)
                .smembers(q.lanes())
                .hgetall(q.workers())
                .cmd("TIME");
        })
        .await?;
    let now_ms = time.0 * 1000 + time.1 / 1000;
    let paused = lanes.iter().any(|l| l == PAUSE_MARKER);
    let lanes: Vec<String> = lanes.into_iter().filter(|l| l != PAUSE_MARKER).collect();
    // The retained counts go up as jobs finish and down as they are pruned; one that
    // reads below zero (jobs finished before these counts were kept, then pruned) is 0.
    let mut counters: HashMap<String, u64> = counters
        .into_iter()
        .map(|(k, v)| (k, u64::try_from(v).unwrap_or(0)))
        .collect();
    let mut retained = |state: &str| counters.remove(&format!("retained_{state}")).unwrap_or(0);
    let (retained_succeeded, retained_failed, retained_cancelled) = (
        retained("succeeded"),
        retained("failed"),
        retained("cancelled"),
    );
    let mut pipe = redis::pipe();
    pipe.scard(q.blocked());
    for w in &holders {
        pipe.scard(q.held(w));
    }
    for lane in &lanes {
        pipe.zcard(q.due_in(lane));
    }
    // Per lane, the plain lane first: how many are due now, and the soonest due time.
    // Two commands a lane, whatever its size.
    let all_lanes: Vec<String> = std::iter::once(String::new())
        .chain(lanes.iter().cloned())
        .collect();
    for lane in &all_lanes {
        pipe.zcount(q.due_in(lane), "-inf", now_ms)
            .zrange_withscores(q.due_in(lane), 0, 0);
    }
    let replies: Vec<redis::Value> = pipe.query_async(&mut con).await?;
    let head = 1 + holders.len() + lanes.len();
    let counts: Vec<u64> = replies
        .iter()
        .take(head)
        .map(redis::from_redis_value_ref)
        .collect::<std::result::Result<_, _>>()?;
    let mut ready = 0u64;
    let mut oldest_due: Option<u64> = None;
    for pair in replies[head.min(replies.len())..].chunks(2) {
        let [n, first] = pair else { continue };
        ready += redis::from_redis_value_ref::<u64>(n)?;
        let first: Vec<(String, f64)> = redis::from_redis_value_ref(first)?;
        if let Some((_, due)) = first.first() {
            // Scores are whole milliseconds; a due time after now is not ready.
            let due = due.max(0.0) as u64;
            if due <= now_ms {
                oldest_due = Some(oldest_due.map_or(due, |o| o.min(due)));
            }
        }
    }
    let blocked = counts.first().copied().unwrap_or(0);
    let running = counts.iter().skip(1).take(holders.len()).sum();
    let mut per_lane = vec![(String::new(), plain)];
    per_lane.extend(
        lanes
            .iter()
            .cloned()
            .zip(counts.iter().skip(1 + holders.len()).copied()),
    );
    let mut workers: Vec<(String, Vec<String>)> = Vec::new();
    let mut runs: Vec<Option<Vec<String>>> = Vec::new();
    let mut seen: Vec<(String, String)> = seen.into_iter().collect();
    seen.sort();
    for (w, v) in seen {
        let Some(p) = Presence::parse(&v) else {
            continue;
        };
        if p.seen_ms + LIVE_MS < now_ms {
            continue;
        }
        workers.push((w, p.labels));
        runs.push(p.kinds);
    }
    // A lane is "[x][@labels][#kind]": it is served by a live worker with all its
    // labels that runs its kind.
    let unsatisfiable = per_lane
        .iter()
        .filter(|(lane, _)| {
            let (lane, kind) = match lane.split_once('#') {
                Some((l, k)) => (l, Some(k)),
                None => (lane.as_str(), None),
            };
            let needs: Vec<&str> = lane
                .split_once('@')
                .map(|(_, l)| l.split(',').collect())
                .unwrap_or_default();
            !workers.iter().zip(&runs).any(|((_, has), kinds)| {
                needs.iter().all(|n| has.iter().any(|h| h == n))
                    && match (kind, kinds) {
                        (Some(k), Some(kinds)) => kinds.iter().any(|r| r == k),
                        _ => true,
                    }
            })
        })
        .map(|(_, n)| n)
        .sum();
    let enqueued: u64 = per_lane.iter().map(|(_, n)| n).sum();
    Ok(QueueStats {
        enqueued,
        ready,
        scheduled: enqueued.saturating_sub(ready),
        oldest_ready_age_ms: oldest_due.map(|d| now_ms.saturating_sub(d)),
        running,
        blocked,
        finished,
        retained_succeeded,
        retained_failed,
        retained_cancelled,
        lanes: per_lane,
        workers,
        unsatisfiable,
        paused,
        counters,
    })
}
