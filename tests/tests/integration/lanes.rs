//! Lanes: work that requires a label runs only on workers with that label (and other
//! workers do not even look at it), a labelled worker takes its lanes in due order,
//! expedited work is claimed first, and work no live worker can run shows as unsatisfiable.

use std::time::Duration;

use workq_common::internal::scripts::ClaimReply;
use workq_producer::{OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::{Nop, Sleep};
use workq_tests::HANG;

use crate::fixture::TestContext;
use crate::support::*;

#[tokio::test]
async fn work_requiring_a_label_waits_for_a_worker_with_that_label() {
    let mut ctx = TestContext::new().await;
    let gpu = OneTimeWorkRequest::builder(Sleep::ms(1))
        .require_label("gpu")
        .build()
        .unwrap();
    // Enqueued first, due first: a worker that could take it would take it first.
    ctx.wm.enqueue(gpu.clone()).await.unwrap();
    let plain: Vec<_> = (0..5)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    ctx.wm.enqueue_many(plain.clone()).await.unwrap();
    let cpu_worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("cpu-1").concurrency(1)
    });
    for p in &plain {
        let i = ctx.finished(p.id()).await;
        assert_eq!(i.worker.as_deref(), Some("cpu-1"));
    }
    let g = ctx.info(gpu.id()).await;
    assert_eq!(g.state, WorkState::Enqueued, "{g:?}");
    assert_eq!(g.run_attempt_count, 0, "a worker without the label took it");
    assert_eq!(g.required_labels, ["gpu"]);
    assert!(g.next_due_at.is_some(), "still waiting in its lane");

    let gpu_worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("gpu-1").labels(["gpu"])
    });
    let g = ctx.finished(gpu.id()).await;
    assert_eq!(g.state, WorkState::Succeeded);
    assert_eq!(g.run_attempt_count, 1);
    assert_eq!(g.worker.as_deref(), Some("gpu-1"));
    cpu_worker.stop().await;
    gpu_worker.stop().await;
}

async fn claim_with(wm: &WorkManager, worker: &str, labels: &str) -> ClaimReply {
    claim_by_hand(wm, worker, labels, Duration::from_secs(30)).await
}

#[tokio::test]
async fn a_worker_without_the_label_is_not_told_about_the_labelled_work_s_due_time() {
    let ctx = TestContext::without_watch().await;
    let gpu = OneTimeWorkRequest::builder(Nop { i: 1 })
        .require_label("gpu")
        .build()
        .unwrap();
    ctx.wm.enqueue(gpu.clone()).await.unwrap();

    // Due now, but not for this worker: reporting it would make the worker wake for it
    // again and again.
    let r = claim_with(&ctx.wm, "plain", "").await;
    assert!(r.jobs.is_empty());
    assert_eq!(r.next_due_ms, None, "told about a job it cannot take");

    // Its own work is reported as usual.
    let later = OneTimeWorkRequest::builder(Nop { i: 2 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(later.clone()).await.unwrap();
    let due = ms(ctx.info(later.id()).await.next_due_at.unwrap());
    let r = claim_with(&ctx.wm, "plain", "").await;
    assert!(r.jobs.is_empty());
    assert_eq!(r.next_due_ms, Some(due));

    // A worker with the label (and more) takes it.
    let r = claim_with(&ctx.wm, "accel", "fpga,gpu").await;
    let ids: Vec<&str> = r.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [gpu.id().to_string()]);
    let g = ctx.info(gpu.id()).await;
    assert_eq!(
        (g.state, g.worker.as_deref()),
        (WorkState::Running, Some("accel"))
    );
}

/// A worker with labels takes due work in due order across its lanes: labelled work due
/// earlier is not held back behind plain work due later (else it starves on the only
/// workers that can run it while plain work keeps coming).
#[tokio::test]
async fn a_labelled_worker_takes_older_labelled_work_before_newer_plain_work() {
    let ctx = TestContext::without_watch().await;
    let gpu = OneTimeWorkRequest::builder(Nop { i: 1 })
        .require_label("gpu")
        .build()
        .unwrap();
    ctx.wm.enqueue(gpu.clone()).await.unwrap();
    let plain = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    ctx.wm.enqueue(plain.clone()).await.unwrap();
    assert!(
        ctx.info(gpu.id()).await.next_due_at.unwrap()
            <= ctx.info(plain.id()).await.next_due_at.unwrap()
    );
    let r = claim_with(&ctx.wm, "gpu-1", "gpu").await;
    let ids: Vec<&str> = r.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [gpu.id().to_string()]);
}

#[tokio::test]
async fn expedited_work_is_claimed_before_normal_work_that_was_due_earlier() {
    let mut ctx = TestContext::new().await;
    let normal: Vec<_> = (0..5)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    ctx.wm.enqueue_many(normal.clone()).await.unwrap();
    let urgent = OneTimeWorkRequest::builder(Nop { i: 99 })
        .expedited()
        .build()
        .unwrap();
    ctx.wm.enqueue(urgent.clone()).await.unwrap();
    let u = ctx.info(urgent.id()).await;
    assert!(u.expedited);
    let first_normal = ctx.info(normal[0].id()).await;
    assert!(
        u.next_due_at.unwrap() >= first_normal.next_due_at.unwrap(),
        "the expedited job is due no earlier than the normal ones"
    );

    // One slot: jobs start one by one, in the order the worker claims them.
    let worker = InProcess::start(&ctx.url(), "default", |b| b.concurrency(1));
    let first = tokio::time::timeout(
        HANG,
        ctx.watch().wait_for(|e| e.state == WorkState::Running),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(first.id, urgent.id(), "a normal job was claimed first");
    let u = ctx.finished(urgent.id()).await;
    for n in &normal {
        let n = ctx.finished(n.id()).await;
        assert_eq!(n.state, WorkState::Succeeded);
        assert!(n.started_at.unwrap() >= u.started_at.unwrap());
    }
    worker.stop().await;
}

/// Work that needs a label no live worker has stays ENQUEUED and is reported by
/// `queue_stats` as unsatisfiable, while the plain worker keeps serving its own work.
#[tokio::test]
async fn work_no_live_worker_can_run_shows_as_unsatisfiable_in_stats() {
    let mut ctx = TestContext::new().await;
    let gpu = OneTimeWorkRequest::builder(Nop { i: 1 })
        .require_label("gpu")
        .require_label("eu")
        .build()
        .unwrap();
    ctx.wm.enqueue(gpu.clone()).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.worker_id("gpu-us").labels(["gpu"])
    });
    let plain = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    ctx.wm.enqueue(plain.clone()).await.unwrap();
    assert_eq!(ctx.finished(plain.id()).await.state, WorkState::Succeeded);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(
        stats.workers,
        [("gpu-us".to_owned(), vec!["gpu".to_owned()])]
    );
    assert_eq!(stats.unsatisfiable, 1, "{stats:?}");
    assert!(
        stats.lanes.contains(&("@eu,gpu".to_owned(), 1)),
        "{stats:?}"
    );
    let g = ctx.info(gpu.id()).await;
    assert_eq!((g.state, g.run_attempt_count), (WorkState::Enqueued, 0));
    assert_eq!(g.required_labels, ["eu", "gpu"]);
    worker.stop().await;
}
