//! The claim loop, one per queue: claims due jobs into free slots with one script call
//! (which also takes over jobs whose lease ran out and prunes finished jobs), then sleeps
//! until the next time on the queue's timeline (a due job or a lease end), a producer's
//! wake-up or a freed slot, whichever is first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::Connection;
use tokio::sync::{watch, OwnedSemaphorePermit};
use workq_common::record::{self, Record};
use workq_common::scripts::{scripts, Ack, AckOutcome, ClaimArgs, ClaimReply, ClaimedJob};
use workq_common::Result;

use super::{attempt, Held, PendingAck, Shared, CLAIM_LOOPS};
use crate::outage::Outage;

/// Expired leases and prunable jobs handled per claim call.
const MAINTENANCE_LIMIT: usize = 100;
/// Never sleep less than this, so a clock edge cannot spin the loop.
const MIN_SLEEP: Duration = Duration::from_millis(1);

pub(super) async fn claim_loop(shared: Arc<Shared>, l: usize, mut stop: watch::Receiver<bool>) {
    let q = l / CLAIM_LOOPS;
    let mut con: Option<Connection> = None;
    let mut outage = Outage::new("claim");
    loop {
        if *stop.borrow() {
            return;
        }
        let mut permits: Vec<OwnedSemaphorePermit> = Vec::new();
        while permits.len() < shared.cfg.claim_batch {
            match Arc::clone(&shared.permits).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let limit = permits.len();
        let reply = match claim(&shared, q, &mut con, limit).await {
            Ok(r) => {
                outage.recovered();
                r
            }
            Err(e) => {
                drop(permits);
                con = None;
                shared
                    .metrics
                    .redis_errors
                    .with_label_values(&["claim"])
                    .inc();
                let wait = outage.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        let at = Instant::now();
        let local = |ms: u64| at + Duration::from_millis(ms.saturating_sub(reply.now_ms));
        let claimed = reply.jobs.len();
        for job in reply.jobs {
            match permits.pop() {
                Some(p) => start(&shared, q, job, p, reply.now_ms),
                None => {
                    tracing::error!(id = %job.id, "claimed more jobs than free slots; its lease will expire and it will run again")
                }
            }
        }
        drop(permits);

        let next_due = reply.next_due_ms.map(local);
        let more_due_now = next_due.is_some_and(|d| d <= at);
        let free = shared.permits.available_permits() > 0;
        if more_due_now && claimed == limit && free {
            continue;
        }
        let mut deadline = at + shared.cfg.idle_poll;
        if free {
            if let Some(d) = next_due {
                deadline = deadline.min(d);
            }
        }
        let deadline = deadline.max(Instant::now() + MIN_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = shared.wake[l].notified() => {}
            _ = shared.slot_freed[l].notified(), if !free => {
                // Let the other attempts that are finishing free their slots too, so the
                // next claim fills several at once.
                tokio::task::yield_now().await;
            }
            _ = stop.changed() => return,
        }
    }
}

async fn claim(
    shared: &Shared,
    q: usize,
    con: &mut Option<Connection>,
    limit: usize,
) -> Result<ClaimReply> {
    let con = match con {
        Some(c) => c,
        None => con.insert(shared.pool.get().await?),
    };
    shared
        .metrics
        .calls
        .with_label_values(&[shared.queues[q].name(), "claim"])
        .inc();
    scripts()
        .claim(
            &mut **con,
            &shared.queues[q],
            &ClaimArgs {
                limit,
                lease: shared.cfg.lease,
                worker: &shared.cfg.worker_id,
                keep_failed: shared.cfg.retention.failed,
                maintenance_limit: MAINTENANCE_LIMIT,
            },
        )
        .await
}

/// Registers a claimed job as held and starts its attempt.
fn start(
    shared: &Arc<Shared>,
    q: usize,
    job: ClaimedJob,
    permit: OwnedSemaphorePermit,
    now_ms: u64,
) {
    let queue = shared.queues[q].name();
    shared.metrics.claimed.with_label_values(&[queue]).inc();
    // For a job whose lease ran out, "due" is that lease end.
    shared
        .metrics
        .claim_lag
        .observe(now_ms.saturating_sub(job.due_ms) as f64 / 1000.0);
    let token = record::peek_attempts(&job.record);
    let ClaimedJob { id, record, .. } = job;
    let Some(token) = token else {
        // The script validated this header, so this cannot happen short of a bug; without
        // a token the job cannot be acked, and its lease will expire.
        tracing::error!(%id, "claimed record has no readable attempt count");
        return;
    };
    let (cancel_tx, cancel_rx) = watch::channel(false);
    shared.held().insert(
        (q, id.clone()),
        Held {
            token,
            cancel: cancel_tx,
            abort: None,
            lease_deadline: Instant::now() + shared.cfg.lease,
            finished: false,
        },
    );
    let rec = match Record::decode(record) {
        Ok(r) => r,
        Err(e) => {
            drop(permit);
            attempt::finish(
                shared,
                q,
                PendingAck {
                    queue: q,
                    ack: Ack {
                        id,
                        token,
                        outcome: AckOutcome::Failed,
                        message: format!("undecodable record: {e}"),
                        output: Vec::new(),
                    },
                },
            );
            return;
        }
    };
    let handle = tokio::spawn(attempt::run(
        Arc::clone(shared),
        q,
        id.clone(),
        rec,
        permit,
        cancel_rx,
    ));
    if let Some(h) = shared.held().get_mut(&(q, id)) {
        if h.token == token {
            h.abort = Some(handle.abort_handle());
        }
    }
}
