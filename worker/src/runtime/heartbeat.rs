//! Heartbeats: every third of the lease, one script call per queue extends every lease
//! this process holds. The reply says which jobs were cancelled (their signal fires) and
//! which were lost to another worker (they are abandoned at once: their completion would
//! be refused anyway).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use workq_common::internal::scripts::{scripts, HeartbeatArgs};
use workq_common::internal::Pooled as Connection;
use workq_common::Result;

use super::Shared;
use crate::outage::Outage;

pub(super) async fn heartbeat_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let every = shared.cfg.lease / 3;
    let mut con: Option<Connection> = None;
    let mut outage = Outage::new("heartbeat").counting(&shared.metrics, "heartbeat");
    let mut tick: u64 = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        tick += 1;
        // Queues where this process holds nothing get a call every third tick (once a
        // lease): enough to hand back a lost claim's job about as soon as a crashed
        // worker's, at a third of the cost to an idle worker.
        // Each call is bounded by the pool's timeouts; the stop signal cuts it short.
        let res = tokio::select! {
            r = beat(&shared, &mut con, tick % 3 == 1) => r,
            () = stop.cancelled() => return,
        };
        match res {
            // (A tick with nothing to send says nothing about Redis.)
            Ok(false) => {}
            Ok(true) => outage.recovered(),
            Err(e) => {
                con = None;
                // The next tick is the retry; the backoff only decides how loud to be.
                let _ = outage.failed(&e);
            }
        }
    }
}

/// One round of heartbeats; false when there was nothing to send.
async fn beat(shared: &Shared, con: &mut Option<Connection>, idle_too: bool) -> Result<bool> {
    // With `idle_too`, queues where this process holds nothing get a call as well: Redis
    // may say it holds a job whose claim reply never arrived (or that a previous process
    // with the same worker id held), and only a heartbeat hands that back.
    let by_queue: Vec<(usize, Vec<(String, u32)>)> = shared
        .queues
        .iter()
        .enumerate()
        .map(|(q, queue)| (q, queue.held.snapshot()))
        .filter(|(_, jobs)| idle_too || !jobs.is_empty())
        .collect();
    if by_queue.is_empty() {
        return Ok(false);
    }
    let con = shared.kept(con).await?;
    for (q, jobs) in by_queue {
        // One call with every job held in the queue, however many: the script takes a
        // held job left off the list for one whose claim reply was lost.
        let chunk = jobs.as_slice();
        let sent = Instant::now();
        let queue = &shared.queues[q];
        let timer = shared.metrics.calls.heartbeat.start_timer();
        // A claim reply can be in flight at most for the response timeout: jobs claimed
        // before that, counted back from the latest reply, are known unless lost.
        let margin = shared.cfg.redis.response_timeout + Duration::from_secs(1);
        let known_until = queue.known_until(margin);
        let statuses = scripts()
            .heartbeat(
                &mut **con,
                &queue.keys,
                &HeartbeatArgs {
                    worker: &shared.cfg.worker_id,
                    lease: shared.cfg.lease,
                    known_until,
                    keep_failed: shared.cfg.retention.failed,
                    labels: &shared.cfg.presence,
                    held: chunk,
                },
            )
            .await;
        drop(timer);
        let statuses = statuses?;
        let renewal = queue.held.renew(chunk, statuses, sent + shared.cfg.lease);
        for &i in &renewal.cancelled {
            tracing::info!(id = %chunk[i].0, "cancellation requested; signalling the attempt");
        }
        let lost: Vec<(&str, u32, bool)> = renewal
            .lost
            .iter()
            .map(|&(i, running)| (chunk[i].0.as_str(), chunk[i].1, running))
            .collect();
        queue.metrics.leases_lost.inc_by(lost.len() as u64);
        if !lost.is_empty() {
            explain_lost(shared, con, q, &lost).await;
        }
    }
    Ok(true)
}

/// Says why jobs were lost: to another worker after this one's lease ran out, or because
/// Redis came back without its data (its `run_id` changed and none of them exists).
async fn explain_lost(shared: &Shared, con: &mut Connection, q: usize, lost: &[(&str, u32, bool)]) {
    let ids: Vec<&str> = lost.iter().map(|l| l.0).collect();
    let looked: redis::RedisResult<(Vec<Option<Vec<u8>>>, String)> = redis::pipe()
        .cmd("HMGET")
        .arg(shared.queues[q].keys.jobs())
        .arg(&ids)
        .cmd("INFO")
        .arg("server")
        .query_async(&mut **con)
        .await;
    let (exists, run_id) = match looked {
        Ok((records, info)) => (
            records.iter().map(Option::is_some).collect::<Vec<_>>(),
            workq_common::internal::server::info_field(&info, "run_id").map(str::to_owned),
        ),
        Err(_) => (vec![true; lost.len()], None),
    };
    let before = {
        let mut known = shared.run_id.lock().unwrap_or_else(|p| p.into_inner());
        match run_id.clone() {
            Some(now) => known.replace(now),
            None => known.clone(),
        }
    };
    // (In a Cluster each node has its own run_id, and queues live on different nodes: the
    // comparison would mean nothing there.)
    let restarted = !shared.cfg.redis.is_cluster()
        && matches!((&before, &run_id), (Some(b), Some(n)) if b != n);
    if restarted && exists.iter().all(|e| !e) {
        tracing::error!(
            queue = shared.queues[q].keys.name(),
            jobs = lost.len(),
            run_id_before = before.as_deref().unwrap_or(""),
            run_id_now = run_id.as_deref().unwrap_or(""),
            "Redis lost its data: it restarted empty (no persistence, or its files were lost) and none of the jobs this worker held exists any more; they are gone and will not run again. Run Redis with appendonly yes"
        );
        return;
    }
    for (&(id, token, running), exists) in lost.iter().zip(exists) {
        match (exists, running) {
            (true, true) => {
                tracing::warn!(%id, token, "lost the lease to another worker; abandoning the attempt")
            }
            (true, false) => {
                tracing::warn!(%id, token, "lost the lease to another worker; its outcome will not be recorded")
            }
            (false, _) => {
                tracing::warn!(%id, token, "the job no longer exists in Redis (deleted, or finished elsewhere and pruned); abandoning the attempt")
            }
        }
    }
}
