//! Graceful shutdown, in phases: claims stop; running attempts get the grace period; the
//! rest are aborted and handed back; the ack loop drains; the background loops stop. No
//! phase can hang on Redis.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workq_common::internal::scripts::scripts;

use super::Shared;
use crate::outage::Outage;

/// After the grace period, how long handing back and the last acks may take together, so
/// that a worker exits within its grace period plus this (and Kubernetes' default 30 s
/// termination grace fits the default 25 s grace period plus this).
const DRAIN: Duration = Duration::from_secs(5);

/// The loops of a running process and the signals that stop them, phase by phase.
#[derive(Debug)]
pub(super) struct Loops {
    /// Stops the claim loops (the first phase).
    pub(super) stop_claims: CancellationToken,
    /// Stops the heartbeat, wake-up and start-up loops (the last phase).
    pub(super) stop_background: CancellationToken,
    pub(super) claimers: Vec<JoinHandle<()>>,
    pub(super) acks: JoinHandle<()>,
    pub(super) heartbeat: JoinHandle<()>,
    pub(super) wake: JoinHandle<()>,
    pub(super) memory: JoinHandle<()>,
    pub(super) startup: JoinHandle<()>,
}

/// Shuts down (the signal came, or start-up failed). `hurry` cuts the grace period short.
pub(super) async fn shut_down(shared: &Shared, loops: Loops, hurry: impl Future<Output = ()>) {
    let running: usize = shared.queues.iter().map(|q| q.held.running()).sum();
    tracing::info!(running, grace = ?shared.cfg.grace, "shutting down: no new claims");
    // The grace period counts from the signal. A claim already in flight may still
    // bring jobs (it waits at most the reply timeout): they run in what is left of it.
    let grace_ends = tokio::time::Instant::now() + shared.cfg.grace;
    loops.stop_claims.cancel();
    for c in loops.claimers {
        let _ = c.await;
    }

    // Let running attempts finish: all permits back means none is running.
    let all = u32::try_from(shared.cfg.concurrency).unwrap_or(u32::MAX);
    tokio::select! {
        _ = tokio::time::timeout_at(grace_ends, shared.permits.acquire_many(all)) => {}
        _ = hurry => tracing::info!("second signal: skipping the rest of the grace period"),
    }

    // Whatever Redis does (down, hung, silent), handing back and the last acks get
    // DRAIN between them; what Redis has not taken by then runs again when its lease
    // ends.
    let deadline = tokio::time::Instant::now() + DRAIN;
    if tokio::time::timeout_at(deadline, hand_back(shared))
        .await
        .is_err()
    {
        tracing::warn!(
            within = ?DRAIN,
            "Redis did not take the hand-back in time; those jobs run again when their leases end"
        );
    }

    // No attempt runs any more: close the ack channel and let the ack loop drain it.
    shared.close_acks();
    join_by(loops.acks, deadline, "could not record every finished attempt before exiting (Redis did not answer); those jobs run again when their leases end").await;
    loops.stop_background.cancel();
    let late = deadline.max(tokio::time::Instant::now()) + Duration::from_secs(1);
    join_by(loops.heartbeat, late, "heartbeat loop did not stop").await;
    join_by(loops.wake, late, "wake-up loop did not stop").await;
    loops.memory.abort();
    loops.startup.abort();
}

/// Waits for a loop to end until `deadline`, then aborts it.
async fn join_by(handle: JoinHandle<()>, deadline: tokio::time::Instant, late: &str) {
    let abort = handle.abort_handle();
    if tokio::time::timeout_at(deadline, handle).await.is_err() {
        abort.abort();
        tracing::warn!("{late}");
    }
}

/// Aborts attempts still running after the grace period and returns their jobs to the
/// schedule at once, retrying through a Redis outage until their leases would end anyway.
async fn hand_back(shared: &Shared) {
    let left: Vec<_> = shared
        .queues
        .iter()
        .map(|q| q.held.take_unfinished())
        .collect();
    let jobs: usize = left.iter().map(|u| u.jobs.len()).sum();
    if jobs == 0 {
        return;
    }
    tracing::info!(jobs, "handing unfinished jobs back");
    let mut outage = Outage::new("hand-back").counting(&shared.metrics, "release");
    for (queue, unfinished) in shared.queues.iter().zip(left) {
        let Some(deadline) = unfinished.lease_ends else {
            continue;
        };
        let mine = unfinished.jobs;
        loop {
            let res = async {
                let mut con = shared.pool.get().await?;
                let _timer = shared.metrics.calls.release.start_timer();
                scripts()
                    .release(
                        &mut *con,
                        &queue.keys,
                        &shared.cfg.worker_id,
                        shared.cfg.retention.failed,
                        "handed back: worker shutting down",
                        &mine,
                    )
                    .await
            }
            .await;
            match res {
                Ok(_) => {
                    outage.recovered();
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    tokio::time::sleep(outage.failed(&e)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = mine.len(), "could not hand jobs back; they run again when their leases end");
                    break;
                }
            }
        }
    }
}
