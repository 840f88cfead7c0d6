//! The claim loop, one per queue. It claims due jobs into free slots with one script call
//! (which also takes over jobs of workers whose lease ran out and prunes finished jobs),
//! then sleeps until the next due time, the next lease to run out, a producer's wake-up or
//! a freed slot, whichever is first. Under load it keeps a second claim in flight while
//! the first one's jobs start, so Redis is never idle waiting for this process.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use workq_common::internal::record::{self, Record};
use workq_common::internal::scripts::{
    scripts, Ack, AckOutcome, ClaimArgs, ClaimReply, ClaimedJob,
};
use workq_common::internal::Conn;
use workq_common::Millis;
use workq_common::Result;

use super::{attempt, PendingAck, Shared};
use crate::outage::Outage;

/// Jobs of lost workers taken over per claim call (and ten times as many finished jobs
/// pruned).
const MAINTENANCE_LIMIT: usize = 100;
/// Claims in flight at once (each for at most concurrency / IN_FLIGHT slots, builder.rs).
pub(super) const IN_FLIGHT: usize = 2;
/// Never sleep less than this, so a clock edge cannot spin the loop.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// How often a claim also records this worker's presence (for stats, which count workers
/// seen in the last minute); heartbeats record it too.
const PRESENCE_EVERY: Duration = Duration::from_secs(5);

type Claim = Pin<Box<dyn Future<Output = (Result<ClaimReply>, Vec<OwnedSemaphorePermit>)> + Send>>;

pub(super) async fn claim_loop(shared: Arc<Shared>, q: usize, stop: CancellationToken) {
    let mut conn: Option<workq_common::internal::Pooled> = None;
    let mut outage = Outage::new("claim").counting(&shared.metrics, "claim");
    let mut in_flight: FuturesUnordered<Claim> = FuturesUnordered::new();
    // Look for work as soon as slots allow (set by timers, wake-ups, freed slots).
    let mut want = true;
    // The last reply said more jobs are due right now.
    let mut backlog = false;
    let mut next_due: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    let mut presence_at: Option<Instant> = None;
    // Until a first claim succeeds, a configuration error (a wrong password, an ACL that
    // refuses FCALL) stops the runtime instead of being retried.
    let mut started = false;
    loop {
        while want && in_flight.len() < IN_FLIGHT && retry_at.is_none_or(|t| t <= Instant::now()) {
            let permits = reserve(&shared);
            if permits.is_empty() {
                // Every slot is busy: a freed slot brings the loop back here. (Taking over
                // lost workers' jobs and pruning are left to workers with room.)
                break;
            }
            // Connecting is bounded by the pool's timeouts, and raced with the stop signal.
            let got = tokio::select! {
                c = connection(&shared, &mut conn) => Some(c),
                () = stop.cancelled() => None,
            };
            let con = match got {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    drop(permits);
                    if !started {
                        shared.startup_error(&e);
                    }
                    retry_at = Some(Instant::now() + outage.failed(&e));
                    break;
                }
                None => {
                    drop(permits);
                    return finish_in_flight(&shared, q, &mut in_flight).await;
                }
            };
            want = false;
            retry_at = None;
            let presence = presence_at.is_none_or(|t| t.elapsed() >= PRESENCE_EVERY);
            if presence {
                presence_at = Some(Instant::now());
            }
            in_flight.push(claim(Arc::clone(&shared), q, con, permits, presence));
        }

        let idle = in_flight.is_empty();
        let free = shared.permits.available_permits() > 0;
        let deadline = match retry_at {
            Some(t) => t,
            None => {
                let mut d = Instant::now() + shared.cfg.idle_poll;
                if free {
                    if let Some(due) = next_due {
                        d = d.min(due);
                    }
                }
                d.max(Instant::now() + MIN_SLEEP)
            }
        };
        tokio::select! {
            Some((res, permits)) = in_flight.next() => match res {
                Ok(reply) => {
                    started = true;
                    shared.health.claiming(q, true);
                    outage.recovered();
                    shared.queues[q].claim_replied(reply.now_ms);
                    let at = Instant::now();
                    let claimed = reply.jobs.len();
                    let limit = permits.len();
                    next_due = reply
                        .next_due_ms
                        .map(|t| at + Duration::from_millis(t.saturating_sub(reply.now_ms)));
                    start_all(&shared, q, reply, permits);
                    backlog = next_due.is_some_and(|d| d <= at);
                    if backlog && claimed == limit {
                        want = true;
                    }
                }
                Err(e) => {
                    drop(permits);
                    shared.health.claiming(q, false);
                    conn = None;
                    if !started {
                        shared.startup_error(&e);
                    }
                    retry_at = Some(Instant::now() + outage.failed(&e));
                    want = true;
                }
            },
            _ = tokio::time::sleep_until(deadline.into()), if idle => want = true,
            _ = shared.queues[q].wake.notified() => want = true,
            _ = shared.queues[q].slot_freed.notified() => {
                if backlog || next_due.is_some_and(|d| d <= Instant::now()) {
                    // Let other attempts that are finishing free their slots too, so the
                    // next claim fills several at once.
                    tokio::task::yield_now().await;
                    want = true;
                }
            }
            () = stop.cancelled() => return finish_in_flight(&shared, q, &mut in_flight).await,
        }
    }
}

/// A claim already sent may have taken jobs: starts them, so they run in the grace period
/// instead of waiting for their lease to run out. (Each claim waits at most the response
/// timeout.)
async fn finish_in_flight(shared: &Arc<Shared>, q: usize, in_flight: &mut FuturesUnordered<Claim>) {
    while let Some((res, permits)) = in_flight.next().await {
        if let Ok(reply) = res {
            start_all(shared, q, reply, permits);
        }
    }
}

/// Takes as many free slots as one claim may fill.
fn reserve(shared: &Arc<Shared>) -> Vec<OwnedSemaphorePermit> {
    let mut permits = Vec::new();
    while permits.len() < shared.cfg.claim_batch {
        match Arc::clone(&shared.permits).try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    permits
}

/// The loop's connection: one pooled multiplexed connection, kept checked out (both
/// in-flight claims share it) and replaced after an error.
async fn connection(
    shared: &Shared,
    conn: &mut Option<workq_common::internal::Pooled>,
) -> Result<Conn> {
    Ok((**shared.kept(conn).await?).clone())
}

fn claim(
    shared: Arc<Shared>,
    q: usize,
    mut con: Conn,
    permits: Vec<OwnedSemaphorePermit>,
    presence: bool,
) -> Claim {
    Box::pin(async move {
        let queue = &shared.queues[q];
        let timer = shared.metrics.calls.claim.start_timer();
        let res = scripts()
            .claim(
                &mut con,
                &queue.keys,
                &ClaimArgs {
                    limit: permits.len(),
                    lease: shared.cfg.lease,
                    worker: &shared.cfg.worker_id,
                    keep_failed: shared.cfg.retention.failed,
                    maintenance_limit: MAINTENANCE_LIMIT,
                    labels: &shared.cfg.labels,
                    presence,
                    kinds: &shared.cfg.kinds,
                    memory_pressure: shared
                        .memory_pressure
                        .load(std::sync::atomic::Ordering::Relaxed),
                    presence_tail: &shared.cfg.presence_tail,
                },
            )
            .await;
        drop(timer);
        if res.as_ref().is_ok_and(|r| !r.jobs.is_empty()) {
            super::confirm(
                &shared,
                &mut con,
                queue.keys.prefix(),
                "claim",
                &shared.metrics.not_durable.claim,
            )
            .await;
        }
        (res, permits)
    })
}

/// Starts the claimed jobs in the reserved slots and gives back the slots left over. The
/// jobs are registered as held here, then started by one task per claim, so that this
/// loop can take the next reply while they start.
fn start_all(
    shared: &Arc<Shared>,
    q: usize,
    reply: ClaimReply,
    mut permits: Vec<OwnedSemaphorePermit>,
) {
    let ClaimReply {
        now_ms,
        oldest_due_ms,
        newest_due_ms,
        jobs,
        ..
    } = reply;
    // Without the newest due time (more were due than claimed), every job was due by the
    // claim's time.
    let due = oldest_due_ms.map(|o| DueRange {
        oldest: o,
        newest: newest_due_ms.unwrap_or(now_ms).max(o),
    });
    let mut batch = Vec::with_capacity(jobs.len());
    let last = jobs.len().saturating_sub(1);
    for (n, job) in jobs.into_iter().enumerate() {
        // The reply puts the job due at the claim's oldest due time first and the one due
        // at its newest, when it says, last.
        let place = match n {
            0 => Place::Oldest,
            n if n == last && newest_due_ms.is_some() => Place::Newest,
            _ => Place::Between,
        };
        match permits.pop() {
            Some(p) => {
                if let Some(start) = register(shared, q, job) {
                    batch.push((start, p, place));
                }
            }
            None => {
                tracing::error!(id = %job.id, "claimed more jobs than free slots; its lease will expire and it will run again")
            }
        }
    }
    if !permits.is_empty() {
        drop(permits);
        // Another queue's loop may be waiting for exactly these.
        shared.notify_slot_freed();
    }
    if !batch.is_empty() {
        let shared = Arc::clone(shared);
        let clock = RedisClock {
            now_ms,
            at: Instant::now(),
        };
        tokio::spawn(async move {
            for (start, permit, place) in batch {
                launch(&shared, q, start, permit, clock, due.map(|d| (d, place)));
            }
        });
    }
}

/// The earliest and latest due times of the jobs of one claim (Redis' clock; the latest
/// is the claim's own time when the claim did not say).
#[derive(Clone, Copy, Debug)]
struct DueRange {
    oldest: Millis,
    newest: Millis,
}

/// Where a job stands in its claim's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// First: the job due at the claim's oldest due time.
    Oldest,
    /// Last: the job due at its newest.
    Newest,
    /// Any other.
    Between,
}

impl DueRange {
    /// A claimed job's due time, as near as the claim tells it without reading each job's
    /// score (which costs Redis a printf per job): the first and last jobs of the reply
    /// are due at the claim's oldest and newest due times; any other was due between them
    /// and, if it was enqueued to run at once, when it was enqueued. So the figure is
    /// exact for a claim of one or two jobs and for jobs enqueued to run at once, and
    /// otherwise (delayed, retried, released by a chain) within the claim's spread of due
    /// times.
    fn of(&self, place: Place, enqueued_ms: Millis) -> Millis {
        match place {
            Place::Oldest => self.oldest,
            Place::Newest => self.newest,
            Place::Between => enqueued_ms.clamp(self.oldest, self.newest),
        }
    }
}

/// Redis' clock as of a claim reply, to tell the time later without asking Redis.
#[derive(Clone, Copy, Debug)]
pub(super) struct RedisClock {
    now_ms: u64,
    at: Instant,
}

impl RedisClock {
    /// Redis' time now, estimated.
    pub(super) fn now_ms(&self) -> u64 {
        self.now_ms
            .saturating_add(workq_common::time::ms(self.at.elapsed()))
    }
}

/// A claimed job, registered as held, ready to start.
struct Start {
    id: Arc<str>,
    token: u32,
    record: Vec<u8>,
    cancel: CancellationToken,
}

/// Registers a claimed job as held (from now on heartbeats cover it).
fn register(shared: &Shared, q: usize, job: ClaimedJob) -> Option<Start> {
    let queue = &shared.queues[q];
    queue.metrics.claimed.inc();
    let token = record::peek_attempts(&job.record);
    let ClaimedJob { id, record } = job;
    let Some(token) = token else {
        // The script validated this header, so this cannot happen short of a bug; without
        // a token the job cannot be acked, and its lease will expire.
        tracing::error!(%id, "claimed record has no readable attempt count");
        return None;
    };
    let id: Arc<str> = Arc::from(id);
    let cancel = CancellationToken::new();
    queue.held.insert(
        Arc::clone(&id),
        token,
        cancel.clone(),
        Instant::now() + shared.cfg.lease,
    );
    Some(Start {
        id,
        token,
        record,
        cancel,
    })
}

/// Starts a registered job's attempt.
fn launch(
    shared: &Arc<Shared>,
    q: usize,
    start: Start,
    permit: OwnedSemaphorePermit,
    clock: RedisClock,
    due: Option<(DueRange, Place)>,
) {
    let Start {
        id,
        token,
        record,
        cancel,
    } = start;
    // Handed back (shutdown) or lost between its claim and now: not ours to run.
    let held = &shared.queues[q].held;
    if !held.is_current(&id, token) {
        drop(permit);
        shared.notify_slot_freed();
        return;
    }
    let rec = match Record::decode(record) {
        Ok(r) => r,
        Err(e) => {
            drop(permit);
            tracing::warn!(%id, error = %e, "job failed for good: its record does not decode");
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
                        next_runs: (0, 0),
                    },
                },
            );
            return;
        }
    };
    // Lateness: the attempt starts now, on Redis' clock, against when the job was due.
    if let Some((range, place)) = due {
        let late_ms = clock
            .now_ms()
            .saturating_sub(range.of(place, rec.header.enqueued_ms));
        shared.queues[q]
            .metrics
            .lateness
            .observe(late_ms as f64 / 1000.0);
    }
    let mut attempt = Box::pin(attempt::run(
        Arc::clone(shared),
        q,
        Arc::clone(&id),
        rec,
        permit,
        cancel,
        clock,
    ));
    // An attempt that finishes without waiting on anything (a very short job) is done in
    // this first poll, which spares it a task. One that has to wait becomes a task; tokio
    // polls a new task at once, so the throwaway waker used here is never relied upon.
    let mut cx = Context::from_waker(Waker::noop());
    if attempt.as_mut().poll(&mut cx).is_ready() {
        return;
    }
    let handle = tokio::spawn(attempt);
    if !held.attach(&id, token, handle.abort_handle()) {
        // Handed back or lost during its first poll; (an attempt that already finished
        // and was acked is not hurt by this).
        handle.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::{DueRange, Place};

    #[test]
    fn the_first_and_last_jobs_are_due_at_the_ends_of_the_range_the_others_when_enqueued() {
        let range = DueRange {
            oldest: 1_000,
            newest: 1_500,
        };
        assert_eq!(range.of(Place::Oldest, 1_200), 1_000);
        assert_eq!(range.of(Place::Newest, 1_200), 1_500);
        // Enqueued to run at once, inside the range: due when enqueued.
        assert_eq!(range.of(Place::Between, 1_200), 1_200);
        // Enqueued long before (delayed, retried, released by a chain): no earlier than
        // the claim's oldest due time.
        assert_eq!(range.of(Place::Between, 10), 1_000);
        // Enqueued after it was due (scheduled in the past): no later than the newest.
        assert_eq!(range.of(Place::Between, 9_000), 1_500);
    }
}
