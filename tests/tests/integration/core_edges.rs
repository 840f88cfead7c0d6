//! Edge cases of the queue's core: enqueue, claims, acks, heartbeats, cancel and the
//! WorkInfo each transition leaves behind.

use std::collections::HashSet;
use std::time::{Duration, UNIX_EPOCH};

use redis::AsyncCommands;
use workq_common::internal::record::peek_attempts;
use workq_common::internal::scripts::{scripts, Ack, AckOutcome, ClaimedJob, Retention};
use workq_common::internal::QueueKeys;
use workq_producer::{
    BackoffPolicy, CancelStatus, EnqueueStatus, Error, OneTimeWorkRequest, WatchTarget,
    WorkManager, WorkState,
};
use workq_tests::jobs::{Fail, Nop, Sleep};
use workq_tests::HANG;

use crate::fixture::TestContext;
use crate::support::*;

/// Claims (at most) one due job of "default" for `worker` through the claim script.
async fn claim_one(wm: &WorkManager, worker: &str, lease: Duration) -> (Option<ClaimedJob>, u64) {
    let r = claim_by_hand(wm, worker, "", lease).await;
    (r.jobs.into_iter().next(), r.now_ms)
}

/// Enqueues a job, claims it as `worker` with `lease`, and asks for it to be cancelled
/// (which, as it runs, only requests the stop).
async fn claimed_with_cancel_pending(
    wm: &WorkManager,
    worker: &str,
    lease: Duration,
) -> (workq_producer::WorkId, ClaimedJob) {
    let req = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    let job = claim_one(wm, worker, lease).await.0.unwrap();
    assert_eq!(
        wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::Requested
    );
    (req.id(), job)
}

async fn ack_one(
    wm: &WorkManager,
    worker: &str,
    id: &str,
    token: u32,
    outcome: AckOutcome,
    message: &str,
) -> bool {
    let mut con = wm.connection().await.unwrap();
    let applied = scripts()
        .ack(
            &mut con,
            &QueueKeys::new("default").unwrap(),
            worker,
            &Retention::default(),
            &[Ack {
                id: id.into(),
                token,
                outcome,
                message: message.to_owned(),
                output: vec![],
                next_runs: (0, 0),
            }],
        )
        .await
        .unwrap();
    applied[0]
}

/// A worker holding more than 1,000 jobs (the most one claim takes) keeps them all: its
/// heartbeat lists every job it holds in one call, since the script takes a held job
/// missing from the list for one whose claim reply was lost (and hands it back once it is
/// older than the reply margin, response timeout + 1 s = 6 s).
///
/// The jobs run 10 s, longer than that margin; the worker has free slots, so it keeps
/// claiming and its latest claim reply (which moves the margin) keeps advancing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_holding_more_than_1000_jobs_keeps_them_all() {
    const JOBS: usize = 1050;
    let ctx = TestContext::without_watch().await;
    let reqs: Vec<_> = (0..JOBS)
        .map(|_| {
            OneTimeWorkRequest::builder(Sleep::ms(10_000))
                .build()
                .unwrap()
        })
        .collect();
    ctx.wm.enqueue_many(reqs.clone()).await.unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.concurrency(JOBS + 50).lease(Duration::from_millis(900))
    });
    // Every job must run once and succeed: no job goes back to ENQUEUED on the way.
    let mut done = HashSet::new();
    while done.len() < JOBS {
        let ev = tokio::time::timeout(
            HANG,
            watch.wait_for(|e| e.state != WorkState::Running || e.attempt > 1),
        )
        .await
        .expect("jobs did not finish")
        .unwrap();
        assert_eq!(
            (ev.state, ev.attempt),
            (WorkState::Succeeded, 1),
            "job {} was taken from its worker while it ran ({} jobs done so far): {:?}",
            ev.id,
            done.len(),
            ctx.info(ev.id).await.last_error
        );
        done.insert(ev.id);
    }
    worker.stop().await;
}

/// A job whose claim reply was lost is handed back by its worker's heartbeat. When a
/// cancel was requested meanwhile, it ends CANCELLED (as the reaper and the shutdown
/// hand-back do), not run again.
#[tokio::test]
async fn a_cancel_pending_on_a_job_whose_claim_reply_was_lost_cancels_it() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let mut stream = ctx.wm.watch(WatchTarget::Id(req.id())).await.unwrap();
    // A claim whose reply never reached worker "w-lost".
    let (job, _) = claim_one(&ctx.wm, "w-lost", Duration::from_millis(900)).await;
    assert!(job.is_some());
    assert_eq!(
        ctx.wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::Requested
    );
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("w-lost").lease(Duration::from_millis(900))
    });
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Running, 1)
    );
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Cancelled, 1),
        "the cancelled job was handed back to run again: {item:?}"
    );
    assert_eq!(item.last_error.as_deref(), Some("cancelled by request"));
    worker.stop().await;
}

/// The same id twice in one batch: the first request is stored, the repeat is reported
/// as existing and changes nothing.
#[tokio::test]
async fn an_id_repeated_within_one_batch_is_stored_once() {
    let ctx = TestContext::without_watch().await;
    let first = OneTimeWorkRequest::builder(Nop { i: 1 })
        .tag("first")
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let repeat = OneTimeWorkRequest::builder(Nop { i: 2 })
        .id(first.id())
        .tag("repeat")
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_many(vec![first.clone(), repeat])
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|e| (e.id, e.status)).collect::<Vec<_>>(),
        [
            (first.id(), EnqueueStatus::Enqueued),
            (first.id(), EnqueueStatus::Existed)
        ]
    );
    let i = ctx.info(first.id()).await;
    assert_eq!(i.tags, ["first"]);
    assert_eq!(i.input.decode::<Nop>().unwrap().i, 1);
    assert!(i.next_due_at.is_some());
    assert!(ctx
        .wm
        .get_work_infos_by_tag("repeat")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);
}

/// A job that fails every attempt (with an error, so it retries) until `attempts` are used,
/// 1 to 2 ms apart.
fn failing_every_attempt(attempts: u32) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .backoff(BackoffPolicy::Exponential, Duration::from_millis(1))
    .max_backoff(Duration::from_millis(2))
    .max_attempts(attempts)
    .build()
    .unwrap()
}

/// Attempt numbers past 127 no longer fit the header's one-byte slot, and exponential
/// backoff past attempt 63 would overflow 2^(n-1) without its clamp: a job allowed 140
/// attempts retries through all of them (exponential backoff, capped) and then fails with
/// the last error, its fencing token still exact.
#[tokio::test]
async fn a_job_retries_past_attempt_127_and_fails_after_exactly_max_attempts() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = failing_every_attempt(140);
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, 140);
    assert_eq!(info.last_error.as_deref(), Some("attempt 140 broke"));
    assert_eq!(info.next_due_at, None);
    assert!(info.finished_at.is_some());
    ctx.stop_worker().await;
}

/// The exact due time of a retry past attempt 63 (exponential, so 2^(n-1) would overflow
/// any integer type without the clamp) is the cap.
#[tokio::test]
async fn exponential_backoff_past_attempt_63_is_the_cap_exactly() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .backoff(BackoffPolicy::Exponential, Duration::from_millis(1))
    .max_backoff(Duration::from_millis(1))
    .max_attempts(80)
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let id = req.id().to_string();
    // 69 attempts retried at 1 ms (the cap equals the first delay)...
    for n in 1..=69u32 {
        let job = loop {
            if let (Some(j), _) = claim_one(&ctx.wm, "w", Duration::from_secs(30)).await {
                break j;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(peek_attempts(&job.record), Some(n));
        assert!(ack_one(&ctx.wm, "w", &id, n, AckOutcome::Retry, "again").await);
    }
    // ... and the 70th is due exactly the cap after the ack, on Redis' clock.
    let job = loop {
        if let (Some(j), _) = claim_one(&ctx.wm, "w", Duration::from_secs(30)).await {
            break j;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(peek_attempts(&job.record), Some(70));
    let t0 = redis_now(&ctx.wm).await;
    assert!(ack_one(&ctx.wm, "w", &id, 70, AckOutcome::Retry, "again").await);
    let t1 = redis_now(&ctx.wm).await;
    let due = ms(ctx.info(req.id()).await.next_due_at.unwrap());
    let cap = 1;
    assert!(
        t0 + cap <= due && due <= t1 + cap,
        "due {due} not in [{t0}, {t1}] + {cap}"
    );
}

/// An attempt that outlives its request's timeout is dropped and retried with backoff;
/// past max attempts the job fails with the timeout as its last error.
#[tokio::test]
async fn an_attempt_past_its_timeout_is_retried_then_fails_naming_the_timeout() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .timeout(Duration::from_millis(200))
        .backoff(BackoffPolicy::Linear, Duration::from_millis(10))
        .max_attempts(2)
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, 2);
    assert_eq!(info.last_error.as_deref(), Some("timed out after 200ms"));
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_zero_timeout_and_a_cap_below_the_first_delay_are_refused() {
    let zero = OneTimeWorkRequest::builder(Nop { i: 1 })
        .timeout(Duration::ZERO)
        .build();
    assert!(matches!(zero, Err(Error::InvalidRequest(_))), "{zero:?}");
    let capped = OneTimeWorkRequest::builder(Nop { i: 1 })
        .backoff(BackoffPolicy::Linear, Duration::from_secs(10))
        .max_backoff(Duration::from_secs(1))
        .build();
    assert!(
        matches!(capped, Err(Error::InvalidRequest(_))),
        "{capped:?}"
    );
}

/// WorkInfo after each transition: claimed, retried, claimed again, cancelled while
/// waiting for its retry.
#[tokio::test]
async fn work_info_is_right_after_claim_retry_and_cancel() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .tag("t")
        .backoff(BackoffPolicy::Linear, Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let enq = ctx.info(req.id()).await;
    assert_eq!(ms(enq.next_due_at.unwrap()), ms(enq.enqueued_at));
    assert_eq!((enq.started_at, enq.finished_at), (None, None));

    let (job, claimed_at) = claim_one(&ctx.wm, "w1", Duration::from_secs(30)).await;
    let job = job.unwrap();
    let running = ctx.info(req.id()).await;
    assert_eq!(
        (running.state, running.run_attempt_count),
        (WorkState::Running, 1)
    );
    assert_eq!(ms(running.started_at.unwrap()), claimed_at);
    assert_eq!(running.worker.as_deref(), Some("w1"));
    assert_eq!(
        (running.next_due_at, running.finished_at, running.last_error),
        (None, None, None)
    );
    assert_eq!(running.enqueued_at, enq.enqueued_at);

    let t0 = redis_now(&ctx.wm).await;
    assert!(ack_one(&ctx.wm, "w1", &job.id, 1, AckOutcome::Retry, "flaky").await);
    let t1 = redis_now(&ctx.wm).await;
    let retried = ctx.info(req.id()).await;
    assert_eq!(
        (retried.state, retried.run_attempt_count),
        (WorkState::Enqueued, 1)
    );
    assert_eq!(retried.last_error.as_deref(), Some("flaky"));
    assert_eq!(ms(retried.started_at.unwrap()), claimed_at);
    assert_eq!(retried.worker.as_deref(), Some("w1"));
    assert_eq!(retried.finished_at, None);
    let due = ms(retried.next_due_at.unwrap());
    assert!(t0 + 3_600_000 <= due && due <= t1 + 3_600_000);
    assert_eq!(retried.tags, ["t"]);

    let c0 = redis_now(&ctx.wm).await;
    assert_eq!(
        ctx.wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::Cancelled
    );
    let c1 = redis_now(&ctx.wm).await;
    let cancelled = ctx.info(req.id()).await;
    assert_eq!(
        (cancelled.state, cancelled.run_attempt_count),
        (WorkState::Cancelled, 1)
    );
    assert_eq!(
        cancelled.last_error.as_deref(),
        Some("cancelled by request")
    );
    assert_eq!(cancelled.next_due_at, None);
    let fin = ms(cancelled.finished_at.unwrap());
    assert!(c0 <= fin && fin <= c1);
    assert_eq!(ms(cancelled.started_at.unwrap()), claimed_at);
    assert!(!cancelled.cancel_requested);
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
}

/// A `run_at` in the past is due at once, at that time.
#[tokio::test]
async fn a_run_at_in_the_past_is_due_at_once() {
    let ctx = TestContext::without_watch().await;
    let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .run_at(at)
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    assert_eq!(ctx.info(req.id()).await.next_due_at, Some(at));
    let (job, _) = claim_one(&ctx.wm, "w", Duration::from_secs(30)).await;
    assert_eq!(job.unwrap().id, req.id().to_string());
}

/// An ack whose job was deleted meanwhile is refused and brings nothing back.
#[tokio::test]
async fn an_ack_for_a_job_deleted_while_it_ran_is_refused() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let (job, _) = claim_one(&ctx.wm, "w", Duration::from_secs(30)).await;
    let job = job.unwrap();
    {
        let mut con = ctx.wm.connection().await.unwrap();
        let _: () = con.hdel("workq:{default}:jobs", &job.id).await.unwrap();
    }
    assert!(!ack_one(&ctx.wm, "w", &job.id, 1, AckOutcome::Succeeded, "").await);
    assert!(!ack_one(&ctx.wm, "w", &job.id, 1, AckOutcome::Retry, "x").await);
    assert!(ctx.wm.get_work_info(req.id()).await.unwrap().is_none());
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
}

/// Claims for `worker` until the claim takes a job (or, with `want_job` false, until the
/// job `id` is no longer RUNNING), sleeping until the next wake time the script gives.
async fn claim_until(
    wm: &WorkManager,
    worker: &str,
    id: workq_producer::WorkId,
    want_job: bool,
) -> Option<ClaimedJob> {
    loop {
        let r = claim_by_hand(wm, worker, "", Duration::from_secs(30)).await;
        if let Some(j) = r.jobs.into_iter().next() {
            return Some(j);
        }
        if !want_job && info(wm, id).await.state != WorkState::Running {
            return None;
        }
        let wait = r
            .next_due_ms
            .unwrap_or(r.now_ms + 1)
            .saturating_sub(r.now_ms);
        tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
    }
}

/// A cancel requested while the job runs, then a retry outcome: the job ends CANCELLED,
/// is not put back on its lane, and its stop reason is gone from `cancel`.
#[tokio::test]
async fn a_retry_outcome_after_a_cancel_request_ends_cancelled_not_retried() {
    let ctx = TestContext::without_watch().await;
    let (id, job) = claimed_with_cancel_pending(&ctx.wm, "w", Duration::from_secs(30)).await;
    assert!(ctx.info(id).await.cancel_requested);
    assert!(ack_one(&ctx.wm, "w", &job.id, 1, AckOutcome::Retry, "boom").await);
    let i = ctx.info(id).await;
    assert_eq!((i.state, i.run_attempt_count), (WorkState::Cancelled, 1));
    assert_eq!(i.last_error.as_deref(), Some("cancelled by request"));
    assert_eq!(i.next_due_at, None);
    assert!(i.finished_at.is_some());
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.enqueued, stats.running), (0, 0));
    let mut con = ctx.wm.connection().await.unwrap();
    let pending: u64 = con.hlen("workq:{default}:cancel").await.unwrap();
    assert_eq!(pending, 0);
}

/// A job handed back at shutdown with a cancel pending ends CANCELLED.
#[tokio::test]
async fn a_hand_back_with_a_cancel_pending_cancels_the_job() {
    let ctx = TestContext::without_watch().await;
    let (id, job) = claimed_with_cancel_pending(&ctx.wm, "w", Duration::from_secs(30)).await;
    let mut con = ctx.wm.connection().await.unwrap();
    let out = scripts()
        .release(
            &mut con,
            &QueueKeys::new("default").unwrap(),
            "w",
            Duration::from_secs(60),
            "handed back: worker shutting down",
            &[(job.id.clone(), 1)],
        )
        .await
        .unwrap();
    assert_eq!(out, [true]);
    let i = ctx.info(id).await;
    assert_eq!((i.state, i.run_attempt_count), (WorkState::Cancelled, 1));
    assert_eq!(i.last_error.as_deref(), Some("cancelled by request"));
    assert_eq!(i.worker.as_deref(), Some("w"));
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
}

/// A lost worker's job with a cancel pending is not run again by the reaper: CANCELLED.
#[tokio::test]
async fn the_reaper_cancels_a_lost_worker_s_job_with_a_cancel_pending() {
    let ctx = TestContext::without_watch().await;
    let (id, _) = claimed_with_cancel_pending(&ctx.wm, "A", Duration::from_millis(300)).await;
    assert!(claim_until(&ctx.wm, "B", id, false).await.is_none());
    let i = ctx.info(id).await;
    assert_eq!((i.state, i.run_attempt_count), (WorkState::Cancelled, 1));
    assert_eq!(i.last_error.as_deref(), Some("cancelled by request"));
}

/// A lost worker's job that has used its last attempt ends FAILED, naming the lost worker.
#[tokio::test]
async fn the_reaper_fails_a_lost_worker_s_job_on_its_last_attempt() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .max_attempts(1)
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let (_, claimed_at) = claim_one(&ctx.wm, "A", Duration::from_millis(300)).await;
    assert!(claim_until(&ctx.wm, "B", req.id(), false).await.is_none());
    let i = ctx.info(req.id()).await;
    assert_eq!((i.state, i.run_attempt_count), (WorkState::Failed, 1));
    assert_eq!(
        i.last_error.as_deref(),
        Some("lease expired: worker A lost during attempt 1")
    );
    assert_eq!(ms(i.started_at.unwrap()), claimed_at);
    assert_eq!(i.worker.as_deref(), Some("A"));
    assert!(ms(i.finished_at.unwrap()) >= claimed_at + 300);
}

/// An ack that arrives after the worker's lease ran out, but before any reaper took the
/// job, is still the job's current attempt: it is applied.
#[tokio::test]
async fn an_ack_after_the_lease_ended_but_before_a_reaper_is_applied() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let (job, claimed_at) = claim_one(&ctx.wm, "A", Duration::from_millis(300)).await;
    let job = job.unwrap();
    // Wait (on Redis' clock) until the lease has run out.
    while redis_now(&ctx.wm).await <= claimed_at + 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(ack_one(&ctx.wm, "A", &job.id, 1, AckOutcome::Failed, "late").await);
    let i = ctx.info(req.id()).await;
    assert_eq!((i.state, i.run_attempt_count), (WorkState::Failed, 1));
    assert_eq!(i.last_error.as_deref(), Some("late"));
    // A reaper coming afterwards finds nothing to take.
    assert!(claim_one(&ctx.wm, "B", Duration::from_secs(30))
        .await
        .0
        .is_none());
    assert_eq!(ctx.info(req.id()).await.state, WorkState::Failed);
}

/// A queue name with characters that mean something elsewhere (key separators, glob and
/// pub/sub pattern characters, non-ASCII) works end to end: enqueue, wake-up, claim, ack,
/// watch and info.
#[tokio::test]
async fn a_queue_with_odd_characters_in_its_name_works_end_to_end() {
    const QUEUE: &str = "we!rd:q*?[x]|é-ü/held:#";
    let ctx = TestContext::without_watch().await;
    let mut watch = ctx.wm.watch_queue(QUEUE).await.unwrap();
    let worker = InProcess::start(&ctx.url(), QUEUE, |b| b);
    let req = OneTimeWorkRequest::builder(Sleep::ms(1))
        .queue(QUEUE)
        .tag("odd")
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let i = finished(&ctx.wm, &mut watch, req.id()).await;
    assert_eq!((i.state, i.queue.as_str()), (WorkState::Succeeded, QUEUE));
    assert_eq!(ctx.wm.get_work_infos_by_tag("odd").await.unwrap().len(), 1);
    assert_eq!(
        ctx.wm
            .queue_stats(QUEUE)
            .await
            .unwrap()
            .counters
            .get("succeeded"),
        Some(&1)
    );
    worker.stop().await;
}

/// Redis still lists a finished job among those of a worker whose lease ran out (its
/// record past attempt 127, where the compact header no longer holds the attempt): the
/// reaper leaves the finished job alone instead of ending an attempt on it again.
#[tokio::test]
async fn the_reaper_leaves_alone_a_finished_job_a_lost_worker_still_lists() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = failing_every_attempt(130);
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let before = ctx.finished(req.id()).await;
    assert_eq!(
        (before.state, before.run_attempt_count),
        (WorkState::Failed, 130)
    );
    ctx.stop_worker().await;

    let keys = QueueKeys::new("default").unwrap();
    let mut con = ctx.wm.connection().await.unwrap();
    let _: () = con
        .sadd(keys.held("gone"), req.id().to_string())
        .await
        .unwrap();
    let _: () = con.zadd(keys.leases(), "gone", 1).await.unwrap();
    let reply = claim_by_hand(&ctx.wm, "w-2", "", Duration::from_secs(30)).await;
    assert!(reply.jobs.is_empty());
    let after = ctx.info(req.id()).await;
    assert_eq!(
        (after.state, after.run_attempt_count, after.last_error),
        (WorkState::Failed, 130, before.last_error)
    );
    let held: u64 = con.scard(keys.held("gone")).await.unwrap();
    assert_eq!(held, 0, "the lost worker's list is cleared");
}

/// A kept success of a job without options takes the ack's spliced path (its record is
/// rewritten from its bytes, not decoded); a job with a tag takes the decoding path. Both
/// must read back the same: state, attempts, started, finished, worker, no error, and the
/// retained count, for a kind short enough for a one-byte string header and one that
/// needs two.
#[tokio::test]
async fn a_kept_success_reads_back_the_same_whether_its_record_is_spliced_or_decoded() {
    let ctx = TestContext::new().await;
    let long_kind = "k".repeat(40);
    let reqs = [
        OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap(),
        OneTimeWorkRequest::builder_raw(&long_kind, workq_producer::Data::encode(&1).unwrap())
            .build()
            .unwrap(),
        OneTimeWorkRequest::builder(Nop { i: 2 })
            .tag("decoded")
            .build()
            .unwrap(),
    ];
    for r in &reqs {
        ctx.wm.enqueue(r.clone()).await.unwrap();
    }
    let mut infos = Vec::new();
    for _ in &reqs {
        let (job, claimed_at) = claim_one(&ctx.wm, "w-splice", Duration::from_secs(30)).await;
        let job = job.expect("a due job");
        let token = peek_attempts(&job.record).expect("the attempt");
        assert!(
            ack_one(
                &ctx.wm,
                "w-splice",
                &job.id,
                token,
                AckOutcome::Succeeded,
                ""
            )
            .await,
            "the ack applies"
        );
        let info = ctx.info(job.id.parse().unwrap()).await;
        infos.push((info, claimed_at));
    }
    for (i, claimed_at) in &infos {
        assert_eq!(i.state, WorkState::Succeeded, "{i:?}");
        assert_eq!(i.run_attempt_count, 1, "{i:?}");
        assert_eq!(i.worker.as_deref(), Some("w-splice"), "{i:?}");
        let started = ms(i.started_at.expect("started_at"));
        let finished = ms(i.finished_at.expect("finished_at"));
        assert_eq!(started, *claimed_at, "started when claimed: {i:?}");
        assert!(finished >= started, "{i:?}");
        assert_eq!(i.last_error, None);
        assert!(i.errors.is_empty());
    }
    let kinds: Vec<&str> = infos.iter().map(|(i, _)| i.kind.as_str()).collect();
    assert!(kinds.contains(&long_kind.as_str()) && kinds.contains(&"nop"));
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.retained_succeeded, 3);
    assert_eq!(stats.counters.get("succeeded"), Some(&3));
    assert_eq!(stats.finished, 3);
}
