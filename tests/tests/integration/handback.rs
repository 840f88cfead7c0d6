//! A claim whose reply never reached the worker (a connection lost mid-claim): Redis says
//! the worker holds the job, the worker knows nothing of it. Its heartbeats hand the job
//! back instead of keeping it leased forever.

use std::time::Duration;

use workq_producer::{OneTimeWorkRequest, WatchTarget, WorkState};
use workq_tests::jobs::{Nop, Sleep};

use crate::fixture::TestContext;
use crate::support::*;

const REASON: &str = "the claim reply was lost; handed back";

/// Claims one job of "default" for `worker` in Redis and drops the reply, as a connection
/// lost mid-claim would.
async fn claim_and_drop_the_reply(wm: &workq_producer::WorkManager, worker: &str) {
    let reply = claim_by_hand(wm, worker, "", Duration::from_millis(900)).await;
    assert_eq!(reply.jobs.len(), 1);
}

#[tokio::test]
async fn a_job_whose_claim_reply_was_lost_is_handed_back_and_runs_again() {
    let ctx = TestContext::without_watch().await;
    let lost = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(lost.clone()).await.unwrap();
    let mut stream = ctx.wm.watch(WatchTarget::Id(lost.id())).await.unwrap();

    claim_and_drop_the_reply(&ctx.wm, "w-lost").await;
    let i = ctx.info(lost.id()).await;
    assert_eq!(
        (i.state, i.worker.as_deref()),
        (WorkState::Running, Some("w-lost"))
    );
    let claimed_at = ms(i.started_at.unwrap());

    // The same worker id comes up (the process whose reply was lost) and holds another
    // job, so it heartbeats; it never takes over its own jobs as a lost worker's.
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("w-lost")
            .lease(Duration::from_millis(900))
            .grace_period(Duration::from_millis(100))
    });
    let holder = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    ctx.wm.enqueue(holder.clone()).await.unwrap();

    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Running, 1)
    );
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Enqueued, 1),
        "handed back, the lost attempt counted: {item:?}"
    );
    let handed_back_at = redis_now(&ctx.wm).await;
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Running, 2)
    );
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Succeeded, 2)
    );

    let done = ctx.info(lost.id()).await;
    assert_eq!(done.state, WorkState::Succeeded);
    assert_eq!(done.worker.as_deref(), Some("w-lost"));
    assert_eq!(done.last_error.as_deref(), Some(REASON));
    // Handed back only once the claim was older than any reply still in flight could be.
    assert!(
        handed_back_at >= claimed_at + 6000,
        "handed back {} ms after the claim",
        handed_back_at - claimed_at
    );
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("released"), Some(&1));
    assert_eq!(
        stats.counters.get("lease_expired"),
        None,
        "not reaped as a lost worker"
    );
    assert_eq!(
        ctx.info(holder.id()).await.state,
        WorkState::Running,
        "the job the worker knows about is left alone"
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_idle_worker_hands_back_a_job_whose_claim_reply_was_lost() {
    let ctx = TestContext::without_watch().await;
    let lost = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(lost.clone()).await.unwrap();
    let mut stream = ctx.wm.watch(WatchTarget::Id(lost.id())).await.unwrap();
    claim_and_drop_the_reply(&ctx.wm, "w-idle").await;
    // The same worker comes up with nothing else to do, the only worker of the queue (as
    // after a connection lost mid-claim in a one-worker deployment).
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("w-idle").lease(Duration::from_millis(900))
    });
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Running, 1)
    );
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Enqueued, 1)
    );
    assert_eq!(item.last_error.as_deref(), Some(REASON));
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Running, 2)
    );
    let item = next_item(&mut stream).await;
    assert_eq!(
        (item.state, item.run_attempt_count),
        (WorkState::Succeeded, 2)
    );
    worker.stop().await;
}
