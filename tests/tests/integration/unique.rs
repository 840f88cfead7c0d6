//! Unique work (WorkManager's `enqueueUniqueWork`): KEEP, REPLACE, APPEND and
//! APPEND_OR_REPLACE, the name being free again once its work has finished, and names
//! being scoped to their queue.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use workq_common::internal::scripts::GraphStatus;
use workq_producer::{
    CancelStatus, ExistingWorkPolicy, OneTimeWorkRequest, WorkInfo, WorkManager, WorkOutcome,
    WorkQuery, WorkState,
};
use workq_tests::jobs::{Echo, Fail, Map, Nop, Sleep, Slept};
use workq_tests::{RedisServer, HANG};

use crate::fixture::TestContext;
use crate::support::*;

fn delayed_sleep() -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Sleep::ms(1))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_producers_enqueueing_one_name_with_keep_at_once_store_exactly_one_job() {
    const PRODUCERS: usize = 50;
    let redis = RedisServer::start();
    let url = redis.url();
    let start = Arc::new(tokio::sync::Barrier::new(PRODUCERS));
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let url = url.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                // Each producer is its own client with its own connections.
                let wm = WorkManager::connect(&url).await.unwrap();
                let req = delayed_sleep();
                start.wait().await;
                let out = wm
                    .enqueue_unique_work("singleton", ExistingWorkPolicy::Keep, req.clone())
                    .await
                    .unwrap();
                (req.id(), out)
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(tokio::time::timeout(HANG, t).await.unwrap().unwrap());
    }

    let winners: Vec<_> = results
        .iter()
        .filter(|(_, o)| o.status == GraphStatus::Enqueued)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one enqueue wins: {results:?}");
    let (winner, out) = winners[0];
    assert_eq!(out.ids, [*winner]);
    let kept: Vec<&WorkOutcome> = results
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o.status == GraphStatus::Kept)
        .collect();
    assert_eq!(kept.len(), PRODUCERS - 1, "{results:?}");
    assert!(
        kept.iter().all(|o| o.ids == [*winner]),
        "every kept outcome points at the one job: {kept:?}"
    );

    let wm = manager(&url).await;
    let stats = wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.enqueued, 1, "the queue holds exactly one job");
    assert_eq!(stats.counters.get("enqueued"), Some(&1));
    let named = wm
        .get_work_infos_for_unique_work("singleton")
        .await
        .unwrap();
    assert_eq!(named.len(), 1);
    assert_eq!(named[0].id, *winner);
    assert_eq!(named[0].unique_name.as_deref(), Some("singleton"));
    let losers: Vec<_> = results
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| id != winner)
        .collect();
    let infos = wm.get_work_infos(&losers).await.unwrap();
    assert!(
        infos.iter().all(Option::is_none),
        "a kept request was stored"
    );
}

#[tokio::test]
async fn replace_cancels_pending_work_of_the_name_and_the_new_work_runs() {
    let ctx = TestContext::without_watch().await;
    let old = delayed_sleep();
    let out = ctx
        .wm
        .enqueue_unique_work("nightly", ExistingWorkPolicy::Keep, old.clone())
        .await
        .unwrap();
    assert_eq!(out.status, GraphStatus::Enqueued);

    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let new = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("nightly", ExistingWorkPolicy::Replace, new.clone())
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.ids),
        (GraphStatus::Enqueued, vec![new.id()])
    );
    // The pending work was cancelled by the enqueue itself.
    let o = ctx.info(old.id()).await;
    assert_eq!(o.state, WorkState::Cancelled);
    assert_eq!(o.run_attempt_count, 0);
    assert_eq!(
        o.last_error.as_deref(),
        Some("replaced by new work named 'nightly'")
    );
    assert_eq!(o.next_due_at, None);

    let n = finished(&ctx.wm, &mut watch, new.id()).await;
    assert_eq!(n.state, WorkState::Succeeded);
    assert_eq!(n.unique_name.as_deref(), Some("nightly"));
    let named = ctx
        .wm
        .get_work_infos_for_unique_work("nightly")
        .await
        .unwrap();
    assert!(named.iter().any(|i| i.id == new.id()), "{named:?}");
    assert!(
        named.iter().all(|i| i.state.is_finished()),
        "nothing of the name is left unfinished: {named:?}"
    );
    worker.stop().await;
}

#[tokio::test]
async fn replace_asks_running_work_to_stop_it_ends_cancelled_and_the_new_work_runs() {
    // A short lease: heartbeats, which carry the cancellation, come often.
    let mut ctx = TestContext::with_worker(|b| b.lease(Duration::from_millis(600))).await;
    let old = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_unique_work("report", ExistingWorkPolicy::Keep, old.clone())
        .await
        .unwrap();
    ctx.reaches(old.id(), WorkState::Running).await;

    let new = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("report", ExistingWorkPolicy::Replace, new.clone())
        .await
        .unwrap();
    assert_eq!(out.status, GraphStatus::Enqueued);
    assert_eq!(out.ids, [new.id()]);
    let reason = "replaced by new work named 'report'";
    let o = ctx.info(old.id()).await;
    if o.state == WorkState::Running {
        assert!(o.cancel_requested, "{o:?}");
        assert_eq!(o.last_error.as_deref(), Some(reason));
    }

    let o = ctx.finished(old.id()).await;
    assert_eq!(o.state, WorkState::Cancelled);
    assert_eq!(o.run_attempt_count, 1, "stopped, not retried");
    assert_eq!(o.last_error.as_deref(), Some(reason));
    let n = ctx.finished(new.id()).await;
    assert_eq!(n.state, WorkState::Succeeded);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn append_runs_the_new_work_after_the_existing_work_succeeded() {
    let ctx = TestContext::without_watch().await;
    let first = OneTimeWorkRequest::builder(Sleep::ms(30)).build().unwrap();
    ctx.wm
        .enqueue_unique_work("etl", ExistingWorkPolicy::Keep, first.clone())
        .await
        .unwrap();
    let next = OneTimeWorkRequest::builder(Echo(map(json!({"step": "next"}))))
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("etl", ExistingWorkPolicy::Append, next.clone())
        .await
        .unwrap();
    assert_eq!(out.status, GraphStatus::Enqueued);
    assert_eq!(out.ids, [next.id()]);

    // No worker yet: the appended work waits for the existing work.
    let n = ctx.info(next.id()).await;
    assert_eq!(n.state, WorkState::Blocked);
    assert_eq!(n.parents, [first.id()]);
    assert_eq!(n.next_due_at, None);
    assert_eq!(n.unique_name.as_deref(), Some("etl"));
    assert_eq!(ctx.info(first.id()).await.children, [next.id()]);
    let named: Vec<_> = ctx
        .wm
        .get_work_infos_for_unique_work("etl")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert!(
        named.contains(&first.id()) && named.contains(&next.id()),
        "{named:?}"
    );

    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let n = finished(&ctx.wm, &mut watch, next.id()).await;
    let f = ctx.info(first.id()).await;
    assert_eq!(f.state, WorkState::Succeeded);
    assert_eq!(n.state, WorkState::Succeeded);
    assert!(
        n.started_at.unwrap() >= f.finished_at.unwrap(),
        "the appended work started before the existing work finished: {:?} < {:?}",
        n.started_at,
        f.finished_at
    );
    // Its input was its own merged with the existing work's output.
    let slept: Slept = f.output_as().unwrap().unwrap();
    let out: workq_tests::jobs::Map = n.output_as().unwrap().unwrap();
    assert_eq!(
        out,
        map(json!({"step": "next", "attempt": slept.attempt, "pid": slept.pid}))
    );
    worker.stop().await;
}

/// APPEND makes the new work a child of the name's last work; when that work has already
/// succeeded (and is retained) the new work still gets its output, as it does when the
/// parent succeeds later.
#[tokio::test]
async fn append_onto_work_that_already_succeeded_still_gets_its_output() {
    let mut ctx = TestContext::new().await;
    let first = emit(json!({"a": 1}));
    ctx.wm
        .enqueue_unique_work("etl", ExistingWorkPolicy::Keep, first.clone())
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    assert_eq!(ctx.finished(first.id()).await.state, WorkState::Succeeded);
    let next = echo(json!({"b": 2}));
    ctx.wm
        .enqueue_unique_work("etl", ExistingWorkPolicy::Append, next.clone())
        .await
        .unwrap();
    let n = ctx.finished(next.id()).await;
    assert_eq!(n.state, WorkState::Succeeded);
    assert_eq!(n.parents, [first.id()]);
    let out: Map = n.output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"a": 1, "b": 2})));
    worker.stop().await;
}

#[tokio::test]
async fn append_onto_failed_work_fails_at_once_and_append_or_replace_starts_fresh() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let failing = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    ctx.wm
        .enqueue_unique_work("import", ExistingWorkPolicy::Keep, failing.clone())
        .await
        .unwrap();
    assert_eq!(ctx.finished(failing.id()).await.state, WorkState::Failed);

    let appended = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("import", ExistingWorkPolicy::Append, appended.clone())
        .await
        .unwrap();
    assert_eq!(out.ids, [appended.id()]);
    // Failed by the enqueue itself, never run.
    let a = ctx.info(appended.id()).await;
    assert_eq!(a.state, WorkState::Failed);
    assert_eq!(
        a.last_error,
        Some(format!("parent {} failed", failing.id()))
    );
    assert_eq!((a.run_attempt_count, a.started_at), (0, None));

    let fresh = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("import", ExistingWorkPolicy::AppendOrReplace, fresh.clone())
        .await
        .unwrap();
    assert_eq!(out.status, GraphStatus::Enqueued);
    assert_eq!(out.ids, [fresh.id()]);
    let f = ctx.info(fresh.id()).await;
    assert!(f.parents.is_empty(), "a fresh start has no parents: {f:?}");
    assert_ne!(f.state, WorkState::Blocked);
    let f = ctx.finished(fresh.id()).await;
    assert_eq!((f.state, f.run_attempt_count), (WorkState::Succeeded, 1));
    assert_eq!(f.last_error, None);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn append_onto_cancelled_work_cancels_the_new_work_at_once() {
    let ctx = TestContext::without_watch().await;
    let old = delayed_sleep();
    ctx.wm
        .enqueue_unique_work("sync", ExistingWorkPolicy::Keep, old.clone())
        .await
        .unwrap();
    assert_eq!(
        ctx.wm.cancel_work_by_id(old.id()).await.unwrap(),
        CancelStatus::Cancelled
    );
    let appended = delayed_sleep();
    ctx.wm
        .enqueue_unique_work("sync", ExistingWorkPolicy::Append, appended.clone())
        .await
        .unwrap();
    let a = ctx.info(appended.id()).await;
    assert_eq!(a.state, WorkState::Cancelled);
    assert_eq!(
        a.last_error,
        Some(format!("parent {} was cancelled", old.id()))
    );
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
}

#[tokio::test]
async fn once_the_work_of_a_name_has_finished_keep_and_replace_enqueue_anew() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let first = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm
        .enqueue_unique_work("once", ExistingWorkPolicy::Keep, first.clone())
        .await
        .unwrap();
    assert_eq!(ctx.finished(first.id()).await.state, WorkState::Succeeded);

    let second = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("once", ExistingWorkPolicy::Keep, second.clone())
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.ids),
        (GraphStatus::Enqueued, vec![second.id()]),
        "the name was released when its work finished"
    );
    assert_eq!(ctx.finished(second.id()).await.state, WorkState::Succeeded);

    let third = OneTimeWorkRequest::builder(Nop { i: 3 }).build().unwrap();
    let out = ctx
        .wm
        .enqueue_unique_work("once", ExistingWorkPolicy::Replace, third.clone())
        .await
        .unwrap();
    assert_eq!(out.ids, [third.id()]);
    assert_eq!(ctx.finished(third.id()).await.state, WorkState::Succeeded);
    // Finished work is left as it was.
    let f = ctx.info(first.id()).await;
    assert_eq!((f.state, f.last_error), (WorkState::Succeeded, None));
    ctx.stop_worker().await;
}

/// A unique name is scoped to its queue (a chain, and so unique work, lives in one queue):
/// KEEP in another queue enqueues there. Queries and cancel by name look in every queue,
/// or in the queues a query names.
#[tokio::test]
async fn unique_names_are_per_queue_and_queries_by_name_look_in_every_queue() {
    let ctx = TestContext::without_watch().await;
    let in_queue = |q: &str| {
        OneTimeWorkRequest::builder(Sleep::ms(1))
            .queue(q)
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let (first, second, third) = (in_queue("a"), in_queue("b"), in_queue("a"));
    for r in [&first, &second] {
        let out = ctx
            .wm
            .enqueue_unique_work("report", ExistingWorkPolicy::Keep, r.clone())
            .await
            .unwrap();
        assert_eq!((out.status, out.ids), (GraphStatus::Enqueued, vec![r.id()]));
    }
    let out = ctx
        .wm
        .enqueue_unique_work("report", ExistingWorkPolicy::Keep, third.clone())
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Kept, vec![first.id()]));
    let ids = |infos: Vec<WorkInfo>| infos.iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(ctx
            .wm
            .get_work_infos_for_unique_work("report")
            .await
            .unwrap()),
        [first.id(), second.id()]
    );
    let in_a = WorkQuery::from_unique_work_names(["report"]).queue("a");
    assert_eq!(
        ids(ctx.wm.get_work_infos_by_query(&in_a).await.unwrap()),
        [first.id()]
    );
    let sum = ctx.wm.cancel_unique_work("report").await.unwrap();
    assert_eq!(sum.cancelled, 2);
    assert_eq!(ctx.info(first.id()).await.state, WorkState::Cancelled);
    assert_eq!(ctx.info(second.id()).await.state, WorkState::Cancelled);
}

#[tokio::test]
async fn unique_chains_replace_every_unfinished_job_and_append_to_the_last_jobs() {
    let ctx = TestContext::without_watch().await;
    let (root, left, right) = (delayed_sleep(), delayed_sleep(), delayed_sleep());
    ctx.wm
        .begin_unique_work("pipeline", ExistingWorkPolicy::Keep, [root.clone()])
        .then([left.clone(), right.clone()])
        .enqueue()
        .await
        .unwrap();
    let kept = ctx
        .wm
        .begin_unique_work("pipeline", ExistingWorkPolicy::Keep, [delayed_sleep()])
        .enqueue()
        .await
        .unwrap();
    assert_eq!(kept.status, GraphStatus::Kept);
    assert_eq!(kept.ids, [root.id(), left.id(), right.id()]);

    // APPEND waits for the last jobs of the chain, then for the appended ones.
    let joined = delayed_sleep();
    ctx.wm
        .enqueue_unique_work("pipeline", ExistingWorkPolicy::Append, joined.clone())
        .await
        .unwrap();
    let j = ctx.info(joined.id()).await;
    assert_eq!(j.state, WorkState::Blocked);
    assert_eq!(j.parents, [left.id(), right.id()]);
    let tail = delayed_sleep();
    ctx.wm
        .enqueue_unique_work("pipeline", ExistingWorkPolicy::Append, tail.clone())
        .await
        .unwrap();
    assert_eq!(ctx.info(tail.id()).await.parents, [joined.id()]);

    // REPLACE cancels all of it, waiting and blocked alike.
    let fresh = delayed_sleep();
    ctx.wm
        .enqueue_unique_work("pipeline", ExistingWorkPolicy::Replace, fresh.clone())
        .await
        .unwrap();
    for id in [root.id(), left.id(), right.id(), joined.id(), tail.id()] {
        let i = ctx.info(id).await;
        assert_eq!(i.state, WorkState::Cancelled, "{i:?}");
        assert!(
            i.last_error.as_deref() == Some("replaced by new work named 'pipeline'")
                || i.last_error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("parent ")),
            "{i:?}"
        );
    }
    assert_eq!(
        ctx.info(root.id()).await.last_error.as_deref(),
        Some("replaced by new work named 'pipeline'")
    );
    let f = ctx.info(fresh.id()).await;
    assert_eq!((f.state, f.parents.len()), (WorkState::Enqueued, 0));
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);
}

#[tokio::test]
async fn cancelling_a_unique_chain_counts_every_job_it_cancels_and_none_as_finished() {
    let ctx = TestContext::without_watch().await;
    let tagged = || {
        OneTimeWorkRequest::builder(Sleep::ms(1))
            .initial_delay(Duration::from_secs(3600))
            .tag("nightly")
            .build()
            .unwrap()
    };
    let (a, b, c) = (tagged(), tagged(), tagged());
    ctx.wm
        .begin_unique_work("etl", ExistingWorkPolicy::Keep, [a.clone()])
        .then([b.clone()])
        .then([c.clone()])
        .enqueue()
        .await
        .unwrap();
    let sum = ctx.wm.cancel_unique_work("etl").await.unwrap();
    assert_eq!(
        (sum.cancelled, sum.requested, sum.already_finished),
        (3, 0, 0),
        "the root's cascade cancelled the rest within the same call"
    );
    for r in [&a, &b, &c] {
        assert_eq!(ctx.info(r.id()).await.state, WorkState::Cancelled);
    }
    // Now they had finished before the call.
    let again = ctx.wm.cancel_all_work_by_tag("nightly").await.unwrap();
    assert_eq!(
        (again.cancelled, again.requested, again.already_finished),
        (0, 0, 3)
    );
}
