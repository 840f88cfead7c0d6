//! An operator's actions through the library (`producer/src/admin.rs` → `admin.lua`):
//! retry (alone, with a chain's descendants, and every failed job of a queue in steps),
//! run now, delete, purge by state in steps, pause and resume, and listing a queue's jobs
//! page by page with a cursor.

use std::collections::HashSet;
use std::time::Duration;

use workq_common::internal::scripts::{scripts, Script};
use workq_common::internal::QueueKeys;
use workq_producer::{
    AdminStatus, BulkCursor, JobFilter, JobListing, OneTimeWorkRequest, WorkId, WorkState,
};
use workq_tests::jobs::{Fail, FailWorker, Nop, NopWorker};
use workq_worker::{WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::fixture::TestContext;
use crate::support::*;

/// Runs [`Fail`] jobs and succeeds: the fix deployed after they failed.
#[derive(Debug)]
struct Fixed;
impl Worker for Fixed {
    type Job = Fail;
    async fn do_work(&self, _: &WorkContext, _: Fail) -> Result<WorkResult, WorkError> {
        Ok(WorkResult::success())
    }
}

fn failing() -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap()
}

fn worker_with(
    url: &str,
    reg: impl FnOnce(workq_worker::WorkerRuntimeBuilder) -> workq_worker::WorkerRuntimeBuilder,
) -> InProcess {
    InProcess::run(reg(WorkerRuntime::builder(url)
        .queue("default")
        .register(NopWorker)))
}

#[tokio::test]
async fn a_failed_job_retried_runs_again_with_its_attempts_counted_afresh() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    let req = failing();
    let id = req.id();
    let w = worker_with(&url, |b| b.register(FailWorker));
    ctx.wm.enqueue(req).await.unwrap();
    let failed = ctx.finished(id).await;
    assert_eq!(failed.state, WorkState::Failed);
    w.stop().await;

    let st = ctx.wm.retry_work(&[id, WorkId::new()]).await.unwrap();
    assert_eq!(st, [AdminStatus::Done, AdminStatus::NotFound]);
    let info = ctx.wm.get_work_info(id).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Enqueued, "{info:?}");
    assert_eq!(info.run_attempt_count, 0, "attempts count afresh");
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.retained_failed, 0, "no longer retained as failed");
    assert_eq!(stats.ready, 1);
    assert_eq!(stats.counters.get("operator_retried"), Some(&1));
    // A second retry of a job that is not FAILED or CANCELLED changes nothing.
    assert_eq!(
        ctx.wm.retry_work(&[id]).await.unwrap(),
        [AdminStatus::WrongState]
    );

    let w = worker_with(&url, |b| b.register(Fixed));
    let done = ctx.finished(id).await;
    assert_eq!(done.state, WorkState::Succeeded, "{done:?}");
    assert_eq!(done.run_attempt_count, 1);
    w.stop().await;
}

#[tokio::test]
async fn retrying_a_failed_parent_brings_back_the_descendants_that_failed_because_of_it() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    let parent = failing();
    let child = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    let grandchild = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    let (p, c, g) = (parent.id(), child.id(), grandchild.id());
    let w = worker_with(&url, |b| b.register(FailWorker));
    ctx.wm
        .begin_with([parent])
        .then([child])
        .then([grandchild])
        .enqueue()
        .await
        .unwrap();
    for id in [p, c, g] {
        assert_eq!(ctx.finished(id).await.state, WorkState::Failed);
    }
    w.stop().await;

    assert_eq!(ctx.wm.retry_work(&[p]).await.unwrap(), [AdminStatus::Done]);
    for id in [c, g] {
        let i = ctx.wm.get_work_info(id).await.unwrap().unwrap();
        assert_eq!(i.state, WorkState::Blocked, "descendant {id}: {i:?}");
    }
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().blocked, 2);

    let w = worker_with(&url, |b| b.register(Fixed));
    for id in [p, c, g] {
        let i = ctx.finished(id).await;
        assert_eq!(i.state, WorkState::Succeeded, "{id}: {i:?}");
    }
    w.stop().await;
}

#[tokio::test]
async fn a_paused_queue_hands_out_nothing_until_resumed_while_producers_keep_enqueueing() {
    let mut ctx = TestContext::new().await;
    assert!(ctx.wm.pause_queue("default").await.unwrap());
    assert!(
        !ctx.wm.pause_queue("default").await.unwrap(),
        "already paused"
    );
    let req = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    let id = req.id();
    ctx.wm.enqueue(req).await.unwrap();
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert!(stats.paused);
    assert_eq!(stats.ready, 1);
    assert!(
        stats.lanes.iter().all(|(l, _)| l.is_empty()),
        "{:?}",
        stats.lanes
    );
    let claim = claim_by_hand(&ctx.wm, "w1", "", Duration::from_secs(30)).await;
    assert!(claim.jobs.is_empty(), "a paused queue hands out nothing");
    assert_eq!(claim.next_due_ms, None, "nothing to wake for while paused");

    // A worker started while paused runs the job once the queue is resumed.
    ctx.start_worker(|b| b);
    assert!(ctx.wm.resume_queue("default").await.unwrap());
    assert!(!ctx.wm.resume_queue("default").await.unwrap(), "not paused");
    assert_eq!(ctx.finished(id).await.state, WorkState::Succeeded);
    assert!(!ctx.wm.queue_stats("default").await.unwrap().paused);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn run_now_makes_a_delayed_job_due_at_once() {
    let ctx = TestContext::new().await;
    let later = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let now = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    let (l, n) = (later.id(), now.id());
    ctx.wm.enqueue_many(vec![later, now]).await.unwrap();
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().scheduled, 1);
    let st = ctx.wm.run_work_now(&[l, n]).await.unwrap();
    assert_eq!(st, [AdminStatus::Done, AdminStatus::AlreadyDue]);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (2, 0));
    let first = claim_by_hand(&ctx.wm, "w1", "", Duration::from_secs(30)).await;
    let second = claim_by_hand(&ctx.wm, "w1", "", Duration::from_secs(30)).await;
    let claimed: HashSet<String> = first
        .jobs
        .iter()
        .chain(&second.jobs)
        .map(|j| j.id.to_string())
        .collect();
    assert!(claimed.contains(&l.to_string()), "{claimed:?}");
    // RUNNING now: not waiting on its timeline.
    assert_eq!(
        ctx.wm.run_work_now(&[l]).await.unwrap(),
        [AdminStatus::WrongState]
    );
}

#[tokio::test]
async fn delete_removes_a_job_and_its_indexes_and_a_running_one_only_when_forced() {
    let ctx = TestContext::new().await;
    let tagged = OneTimeWorkRequest::builder(Nop { i: 1 })
        .tag("t")
        .build()
        .unwrap();
    let running = OneTimeWorkRequest::builder(Nop { i: 2 })
        .initial_delay(Duration::from_millis(1))
        .build()
        .unwrap();
    let (t, r) = (tagged.id(), running.id());
    ctx.wm.enqueue(running).await.unwrap();
    // Claimed by hand: RUNNING and held by w1.
    let claim = loop {
        let c = claim_by_hand(&ctx.wm, "w1", "", Duration::from_secs(30)).await;
        if !c.jobs.is_empty() {
            break c;
        }
    };
    assert_eq!(claim.jobs[0].id.to_string(), r.to_string());
    ctx.wm.enqueue(tagged).await.unwrap();

    let st = ctx.wm.delete_work(&[t, r], false).await.unwrap();
    assert_eq!(st, [AdminStatus::Done, AdminStatus::WrongState]);
    assert!(ctx.wm.get_work_info(t).await.unwrap().is_none());
    assert!(ctx.wm.get_work_infos_by_tag("t").await.unwrap().is_empty());
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.running), (0, 1));

    assert_eq!(
        ctx.wm.delete_work(&[r], true).await.unwrap(),
        [AdminStatus::Done]
    );
    assert!(ctx.wm.get_work_info(r).await.unwrap().is_none());
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.running, 0);
    assert_eq!(stats.counters.get("deleted"), Some(&2));
    // The worker that held it is refused: its heartbeat finds the lease lost.
    let mut con = ctx.wm.connection().await.unwrap();
    let keys = QueueKeys::new("default").unwrap();
    let hb = scripts()
        .heartbeat(
            &mut con,
            &keys,
            &workq_common::internal::scripts::HeartbeatArgs {
                worker: "w1",
                lease: Duration::from_secs(30),
                known_until: 0,
                keep_failed: Duration::from_secs(60),
                labels: "",
                held: &[(r.to_string(), 1)],
            },
        )
        .await
        .unwrap();
    assert_eq!(hb, [workq_common::internal::scripts::LeaseStatus::Lost]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_retry_all_failed_go_through_a_queue_in_bounded_steps() {
    let ctx = TestContext::without_watch().await;
    let url = ctx.url();
    // More finished jobs than one step looks at (MAX_PAGE).
    let ok: Vec<_> = (0..1_100)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    let bad: Vec<_> = (0..1_050).map(|_| failing()).collect();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm.enqueue_many(ok).await.unwrap();
    ctx.wm.enqueue_many(bad).await.unwrap();
    let w = worker_with(&url, |b| b.register(FailWorker).concurrency(64));
    let mut left = 2_150;
    while left > 0 {
        let e = tokio::time::timeout(workq_tests::HANG, watch.next())
            .await
            .expect("jobs finish")
            .unwrap();
        if e.state.is_finished() {
            left -= 1;
        }
    }
    w.stop().await;
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(
        (stats.retained_succeeded, stats.retained_failed),
        (1_100, 1_050)
    );

    // Every failed job retried, over several steps.
    let mut cursor = BulkCursor::new();
    let mut steps = 0;
    while !cursor.finished() {
        ctx.wm
            .retry_failed_step("default", &mut cursor)
            .await
            .unwrap();
        steps += 1;
    }
    assert_eq!(cursor.changed, 1_050);
    assert!(steps > 1, "one step looks at a bounded number of jobs");
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.retained_failed), (1_050, 0));
    assert_eq!(stats.retained_succeeded, 1_100);

    // Cancel them, then purge the cancelled only, then everything finished.
    let ids: Vec<WorkId> = ctx
        .wm
        .list_jobs(&JobListing::new("default", JobFilter::Ready).limit(1000))
        .await
        .unwrap()
        .jobs
        .iter()
        .map(|i| i.id)
        .collect();
    for id in &ids[..10] {
        ctx.wm.cancel_work_by_id(*id).await.unwrap();
    }
    let purged = ctx
        .wm
        .purge("default", Some(WorkState::Cancelled))
        .await
        .unwrap();
    assert_eq!(purged, 10);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(
        (stats.retained_cancelled, stats.retained_succeeded),
        (0, 1_100)
    );
    assert_eq!(ctx.wm.purge("default", None).await.unwrap(), 1_100);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.finished, stats.ready), (0, 1_040));
    assert_eq!(stats.counters.get("purged"), Some(&1_110));
    assert!(ctx
        .wm
        .purge("default", Some(WorkState::Running))
        .await
        .is_err());
}

#[tokio::test]
async fn listing_pages_through_a_state_with_a_cursor_in_order_without_repeats() {
    let ctx = TestContext::new().await;
    let reqs: Vec<_> = (0..120)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    let want: Vec<WorkId> = reqs.iter().map(|r| r.id()).collect();
    for r in reqs {
        ctx.wm.enqueue(r).await.unwrap();
    }
    let walk = |listing: JobListing| {
        let wm = ctx.wm.clone();
        async move {
            let mut listing = listing;
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = wm.list_jobs(&listing).await.unwrap();
                pages += 1;
                seen.extend(page.jobs.iter().map(|i| (i.next_due_at, i.id)));
                match page.next {
                    Some(c) => listing = listing.after(c),
                    None => return (seen, pages),
                }
            }
        }
    };
    let (seen, pages) = walk(JobListing::new("default", JobFilter::Ready).limit(50)).await;
    assert_eq!(pages, 3);
    // Soonest due first (the same due time: by id), each job once.
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "soonest due first");
    let ids: HashSet<WorkId> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!((ids.len(), seen.len()), (120, 120), "each job once");
    assert_eq!(ids, want.iter().copied().collect::<HashSet<_>>());
    let (newest, _) = walk(
        JobListing::new("default", JobFilter::Ready)
            .limit(50)
            .newest_first(),
    )
    .await;
    sorted.reverse();
    assert_eq!(newest, sorted, "latest due first");
    let (none, _) = walk(JobListing::new("default", JobFilter::Scheduled)).await;
    assert!(none.is_empty());
    let (kind, _) = walk(JobListing::new("default", JobFilter::Ready).kind("other")).await;
    assert!(kind.is_empty(), "a kind filter keeps only that kind");
    assert_eq!(
        ctx.wm
            .count_jobs("default", JobFilter::Ready)
            .await
            .unwrap(),
        120
    );
    let bad = JobListing::new("default", JobFilter::Ready).after("nonsense");
    assert!(
        ctx.wm.list_jobs(&bad).await.is_err(),
        "a cursor not returned by a listing"
    );
    assert!(JobFilter::parse("nope").is_err());
    assert_eq!(JobFilter::parse("FAILED").unwrap(), JobFilter::Failed);
    // An unknown operation is refused by the script.
    let mut con = ctx.wm.connection().await.unwrap();
    let keys = QueueKeys::new("default").unwrap();
    // The library must be loaded for the call to reach the script.
    ctx.wm.pause_queue("default").await.unwrap();
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(scripts().function(Script::Admin))
        .arg(2)
        .arg(keys.prefix())
        .arg(keys.jobs())
        .arg("explode")
        .arg(0);
    let err = cmd.query_async::<redis::Value>(&mut con).await.unwrap_err();
    assert!(err.to_string().contains("unknown admin operation"), "{err}");
}
