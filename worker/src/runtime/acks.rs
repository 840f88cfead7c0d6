//! The ack loop: records finished attempts in batches (one script call per queue with
//! whatever has accumulated while the previous call was in flight). Through a Redis outage
//! it keeps retrying each ack until that job's lease would have ended; after that the
//! reaper will run the job again anyway.

use std::sync::Arc;
use std::time::Instant;

use deadpool_redis::Connection;
use tokio::sync::mpsc;
use workq_common::scripts::{scripts, Ack};
use workq_common::Result;

use super::{PendingAck, Shared};
use crate::outage::Outage;

const BATCH: usize = 1000;

pub(super) async fn ack_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<PendingAck>) {
    let mut pending: Vec<(PendingAck, bool)> = Vec::new(); // (ack, already tried)
    let mut con: Option<Connection> = None;
    let mut outage = Outage::new("ack");
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(a) => pending.push((a, false)),
                None => return,
            }
        }
        while pending.len() < BATCH {
            match rx.try_recv() {
                Ok(a) => pending.push((a, false)),
                Err(_) => break,
            }
        }
        give_up_on_expired(&shared, &mut pending);
        if pending.is_empty() {
            continue;
        }
        match send(&shared, &mut con, &mut pending).await {
            Ok(()) => outage.recovered(),
            Err(e) => {
                con = None;
                shared
                    .metrics
                    .redis_errors
                    .with_label_values(&["ack"])
                    .inc();
                for p in &mut pending {
                    p.1 = true;
                }
                tokio::time::sleep(outage.failed(&e)).await;
            }
        }
    }
}

/// Sends the acks queue by queue, removing each batch from `pending` once Redis took it.
async fn send(
    shared: &Shared,
    con: &mut Option<Connection>,
    pending: &mut Vec<(PendingAck, bool)>,
) -> Result<()> {
    let con = match con {
        Some(c) => c,
        None => con.insert(shared.pool.get().await?),
    };
    while let Some(q) = pending.first().map(|p| p.0.queue) {
        let (batch, rest): (Vec<_>, Vec<_>) = pending.drain(..).partition(|p| p.0.queue == q);
        *pending = rest;
        let (acks, retried): (Vec<Ack>, Vec<bool>) = batch
            .into_iter()
            .map(|(p, retried)| (p.ack, retried))
            .unzip();
        shared.qm[q].ack_calls.inc();
        let applied = match scripts()
            .ack(
                &mut **con,
                &shared.queues[q],
                &shared.cfg.worker_id,
                &shared.cfg.retention,
                &acks,
            )
            .await
        {
            Ok(a) => a,
            Err(e) => {
                pending.extend(
                    acks.into_iter()
                        .zip(retried)
                        .map(|(ack, r)| (PendingAck { queue: q, ack }, r)),
                );
                return Err(e);
            }
        };
        let mut held = shared.held();
        for ((ack, retried), ok) in acks.into_iter().zip(retried).zip(applied) {
            if held[q].get(&*ack.id).is_some_and(|h| h.token == ack.token) {
                held[q].remove(&*ack.id);
            }
            if !ok {
                if retried {
                    // A reply lost to a timeout may have been applied the first time.
                    tracing::debug!(id = %ack.id, "retried ack refused (likely applied before)");
                } else {
                    shared.qm[q].acks_refused.inc();
                    tracing::warn!(id = %ack.id, attempt = ack.token, "outcome not recorded: fenced (this attempt's lease ended, and another attempt owns the job now)");
                }
            }
        }
    }
    Ok(())
}

/// Drops the acks that cannot be recorded any more: those of jobs a heartbeat found lost
/// (fenced), and those that Redis failed to take (an outage) until their lease ended. An
/// ack not yet tried is always sent, however late: Redis' fencing check decides, and a
/// worker that was merely paused may still hold its job.
fn give_up_on_expired(shared: &Shared, pending: &mut Vec<(PendingAck, bool)>) {
    let now = Instant::now();
    let mut held = shared.held();
    pending.retain(|(p, tried)| {
        let jobs = &mut held[p.queue];
        let ours = jobs
            .get(&*p.ack.id)
            .is_some_and(|h| h.token == p.ack.token);
        if !ours {
            shared.qm[p.queue].acks_refused.inc();
            tracing::warn!(id = %p.ack.id, attempt = p.ack.token, "outcome not recorded: fenced (this attempt's lease ended, and another attempt owns the job now)");
            return false;
        }
        let expired = *tried
            && jobs
                .get(&*p.ack.id)
                .is_some_and(|h| h.lease_deadline <= now);
        if expired {
            jobs.remove(&*p.ack.id);
            tracing::warn!(id = %p.ack.id, "gave up recording an outcome: Redis could not be reached before this attempt's lease ended; another attempt runs the job (or will)");
        }
        !expired
    });
}
