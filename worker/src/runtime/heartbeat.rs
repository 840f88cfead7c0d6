//! Heartbeats: every third of the lease, one script call per queue extends every lease
//! this process holds. The reply says which jobs were cancelled (their signal fires) and
//! which were lost to another worker (they are abandoned at once: their completion would
//! be refused anyway).

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::Connection;
use tokio::sync::watch;
use workq_common::scripts::{scripts, HeartbeatArgs, LeaseStatus};
use workq_common::Result;

use super::Shared;
use crate::outage::Outage;

pub(super) async fn heartbeat_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let every = shared.cfg.lease / 3;
    let mut con: Option<Connection> = None;
    let mut outage = Outage::new("heartbeat");
    let mut tick: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        tick += 1;
        // Queues where this process holds nothing get a call every third tick (once a
        // lease): enough to hand back a lost claim's job about as soon as a crashed
        // worker's, at a third of the cost to an idle worker.
        match beat(&shared, &mut con, tick % 3 == 1).await {
            Ok(()) => outage.recovered(),
            Err(e) => {
                con = None;
                shared
                    .metrics
                    .redis_errors
                    .with_label_values(&["heartbeat"])
                    .inc();
                // The next tick is the retry; the backoff only decides how loud to be.
                let _ = outage.failed(&e);
            }
        }
    }
}

async fn beat(shared: &Shared, con: &mut Option<Connection>, idle_too: bool) -> Result<()> {
    // With `idle_too`, queues where this process holds nothing get a call as well: Redis
    // may say it holds a job whose claim reply never arrived (or that a previous process
    // with the same worker id held), and only a heartbeat hands that back.
    let by_queue: Vec<(usize, Vec<(String, u32)>)> = shared
        .held()
        .iter()
        .enumerate()
        .filter(|(_, jobs)| idle_too || !jobs.is_empty())
        .map(|(q, jobs)| {
            (
                q,
                jobs.iter()
                    .map(|(id, h)| (id.to_string(), h.token))
                    .collect(),
            )
        })
        .collect();
    if by_queue.is_empty() {
        return Ok(());
    }
    let con = match con {
        Some(c) => c,
        None => con.insert(shared.pool.get().await?),
    };
    for (q, jobs) in by_queue {
        // One call with every job held in the queue, however many: the script takes a
        // held job left off the list for one whose claim reply was lost.
        let chunk = jobs.as_slice();
        let sent = Instant::now();
        shared.qm[q].heartbeat_calls.inc();
        // A claim reply can be in flight at most for the response timeout: jobs claimed
        // before that, counted back from the latest reply, are known unless lost.
        let margin = shared.cfg.redis.response_timeout + Duration::from_secs(1);
        let known_until = shared.last_reply_ms[q]
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(u64::try_from(margin.as_millis()).unwrap_or(u64::MAX));
        let statuses = scripts()
            .heartbeat(
                &mut **con,
                &shared.queues[q],
                &HeartbeatArgs {
                    worker: &shared.cfg.worker_id,
                    lease: shared.cfg.lease,
                    known_until,
                    keep_failed: shared.cfg.retention.failed,
                    labels: &shared.cfg.presence,
                    held: chunk,
                },
            )
            .await?;
        let mut held = shared.held();
        for ((id, token), st) in chunk.iter().zip(statuses) {
            let Some(h) = held[q].get_mut(id.as_str()).filter(|h| h.token == *token) else {
                continue;
            };
            match st {
                LeaseStatus::Extended => h.lease_deadline = sent + shared.cfg.lease,
                LeaseStatus::CancelRequested => {
                    h.lease_deadline = sent + shared.cfg.lease;
                    if !h.cancel.is_fired() {
                        tracing::info!(%id, "cancellation requested; signalling the attempt");
                        h.cancel.fire();
                    }
                }
                LeaseStatus::Lost => {
                    if !h.finished {
                        tracing::warn!(%id, token, "lost the lease to another worker; abandoning the attempt");
                        if let Some(a) = &h.abort {
                            a.abort();
                        }
                    }
                    shared.qm[q].leases_lost.inc();
                    held[q].remove(id.as_str());
                }
            }
        }
    }
    Ok(())
}
