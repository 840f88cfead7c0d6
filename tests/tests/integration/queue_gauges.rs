//! The backlog figures of `queue_stats` (what the exporter serves): ready against
//! scheduled, and how long the oldest ready job has waited, across lanes.

use std::time::{Duration, SystemTime};

use workq_producer::{OneTimeWorkRequest, WorkState};
use workq_tests::jobs::{Fail, Nop};

use crate::fixture::TestContext;
use crate::support::{echo, finished, InProcess};

/// Redis' clock, in milliseconds.
async fn redis_now(ctx: &TestContext) -> u64 {
    let mut con = ctx.wm.connection().await.unwrap();
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    s * 1000 + us / 1000
}

#[tokio::test]
async fn ready_scheduled_and_the_oldest_ready_age_count_every_lane() {
    let ctx = TestContext::without_watch().await;
    let nop = |i| OneTimeWorkRequest::builder(Nop { i });
    // Redis runs on this machine: its clock is the one run_at is read from.
    let start = redis_now(&ctx).await;
    let overdue_by = Duration::from_secs(60);
    let reqs = vec![
        nop(1).build().unwrap(),
        nop(2).build().unwrap(),
        nop(3).expedited().build().unwrap(),
        nop(4).require_label("gpu").build().unwrap(),
        // Due a minute ago: the oldest ready job, in a lane of its own.
        nop(5)
            .require_label("cpu")
            .run_at(SystemTime::now() - overdue_by)
            .build()
            .unwrap(),
        nop(6)
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap(),
        nop(7)
            .expedited()
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap(),
    ];
    for r in reqs {
        ctx.wm.enqueue(r).await.unwrap();
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    let after = redis_now(&ctx).await;
    assert_eq!(stats.enqueued, 7, "{stats:?}");
    assert_eq!((stats.ready, stats.scheduled), (5, 2), "{stats:?}");
    let age = stats.oldest_ready_age_ms.expect("a ready job");
    // The age is counted from the overdue job's due time (a minute before it was
    // enqueued), not from the newer jobs'.
    let overdue = u64::try_from(overdue_by.as_millis()).unwrap();
    assert!(age >= overdue, "{age} ms");
    assert!(age <= overdue + (after - start), "{age} ms");
}

#[tokio::test]
async fn a_queue_with_only_scheduled_work_has_no_ready_job_and_no_age() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(req).await.unwrap();
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (0, 1), "{stats:?}");
    assert_eq!(stats.oldest_ready_age_ms, None);
}

/// The retained finished jobs by state (the exporter's succeeded, failed and cancelled
/// gauges): counted as jobs finish, whichever path finishes them (an ack, a chain's
/// descendants, a cancel), and counted out as they are pruned.
#[tokio::test]
async fn retained_jobs_are_split_by_state_and_pruning_counts_them_out() {
    let ctx = TestContext::without_watch().await;
    let fail = || {
        OneTimeWorkRequest::builder(Fail {
            mode: "failure".into(),
        })
        .build()
        .unwrap()
    };
    let later = || {
        OneTimeWorkRequest::builder(Nop { i: 0 })
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let mut run = Vec::new();
    for i in 1..=3 {
        let r = OneTimeWorkRequest::builder(Nop { i }).build().unwrap();
        run.push(r.id());
        ctx.wm.enqueue(r).await.unwrap();
    }
    let lone = fail();
    run.push(lone.id());
    ctx.wm.enqueue(lone).await.unwrap();
    // A failing parent fails its child without running it.
    let (parent, child) = (fail(), echo(serde_json::json!({})));
    run.extend([parent.id(), child.id()]);
    ctx.wm
        .begin_with([parent])
        .then([child])
        .enqueue()
        .await
        .unwrap();
    // A cancelled waiting job, and a cancelled chain root with its child.
    let (alone, root, below) = (later(), later(), echo(serde_json::json!({})));
    let (alone_id, root_id, below_id) = (alone.id(), root.id(), below.id());
    ctx.wm.enqueue(alone).await.unwrap();
    ctx.wm
        .begin_with([root])
        .then([below])
        .enqueue()
        .await
        .unwrap();
    ctx.wm.cancel_work_by_id(alone_id).await.unwrap();
    ctx.wm.cancel_work_by_id(root_id).await.unwrap();
    assert_eq!(ctx.info(below_id).await.state, WorkState::Cancelled);

    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    for id in run {
        finished(&ctx.wm, &mut watch, id).await;
    }
    worker.stop().await;
    let s = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(
        (
            s.retained_succeeded,
            s.retained_failed,
            s.retained_cancelled
        ),
        (3, 3, 3),
        "{s:?}"
    );
    assert_eq!(s.finished, 9, "{s:?}");
    assert!(
        !s.counters.keys().any(|k| k.starts_with("retained_")),
        "the retained counts are not cumulative counters: {:?}",
        s.counters
    );

    assert_eq!(ctx.wm.prune_work_in("default").await.unwrap(), 9);
    let s = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(
        (
            s.finished,
            s.retained_succeeded,
            s.retained_failed,
            s.retained_cancelled
        ),
        (0, 0, 0, 0),
        "{s:?}"
    );
}
