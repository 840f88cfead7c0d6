//! Audit: edge cases of unique work, chains, periodic work, queries, watches and lanes.
//! Tests marked `#[ignore = "bug: ..."]` demonstrate a defect and fail until it is fixed.

use std::time::Duration;

use serde_json::json;
use workq_common::scripts::{scripts, ClaimArgs, ClaimReply, GraphStatus};
use workq_common::QueueKeys;
use workq_producer::{
    ExistingPeriodicWorkPolicy, ExistingWorkPolicy, InputMerger, OneTimeWorkRequest,
    PeriodicWorkRequest, WorkInfo, WorkManager, WorkQuery, WorkState,
};
use workq_tests::jobs::{Echo, Emit, Fail, Map, Nop, Sleep};
use workq_tests::RedisServer;

use crate::support::*;

fn emit(out: serde_json::Value) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Emit { out: map(out) })
        .build()
        .unwrap()
}

fn echo(own: serde_json::Value) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Echo(map(own))).build().unwrap()
}

async fn claim_with(wm: &WorkManager, worker: &str, labels: &str) -> ClaimReply {
    let mut con = wm.pool().get().await.unwrap();
    scripts()
        .claim(
            &mut *con,
            &QueueKeys::new("default").unwrap(),
            &ClaimArgs {
                limit: 1,
                lease: Duration::from_secs(30),
                worker,
                keep_failed: Duration::from_secs(60),
                maintenance_limit: 10,
                labels,
            },
        )
        .await
        .unwrap()
}

/// WorkManager's ArrayCreatingInputMerger turns every value into an array, a key found in
/// one input included: {a: 1} + {b: 2} gives {a: [1], b: [2]}.
#[tokio::test]
async fn array_creating_merger_makes_an_array_of_a_key_found_in_one_input() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let parent = emit(json!({"a": 1}));
    let child = OneTimeWorkRequest::builder(Echo(Map::new()))
        .input_merger(InputMerger::ArrayCreating)
        .build()
        .unwrap();
    let mut watch = wm.watch_queue("default").await.unwrap();
    wm.begin_with([parent.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| b);
    let c = finished(&wm, &mut watch, child.id()).await;
    assert_eq!(c.state, WorkState::Succeeded, "{c:?}");
    let out: Map = c.output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"a": [1]})));
    worker.stop().await;
}

/// A job's initial delay in a chain counts from when its parents release it (as in
/// WorkManager), instead of being dropped.
#[tokio::test]

async fn a_chained_job_keeps_its_initial_delay_after_its_parent_succeeds() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let parent = emit(json!({"a": 1}));
    let child = OneTimeWorkRequest::builder(Echo(Map::new()))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut watch = wm.watch_queue("default").await.unwrap();
    wm.begin_with([parent.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| b);
    let p = finished(&wm, &mut watch, parent.id()).await;
    assert_eq!(p.state, WorkState::Succeeded);
    reaches(&mut watch, child.id(), WorkState::Enqueued).await;
    let c = info(&wm, child.id()).await;
    assert_eq!(
        c.state,
        WorkState::Enqueued,
        "the delayed child already ran: {c:?}"
    );
    let due = ms(c.next_due_at.expect("due time"));
    assert!(
        due >= ms(p.finished_at.unwrap()) + 3_600_000,
        "the child is due at {due}, not an hour after its parent finished ({:?})",
        p.finished_at
    );
    worker.stop().await;
}

/// A query for FAILED work with a limit returns failed work even when many successes are
/// retained (successes are pruned earlier, so they come first in `done`).
#[tokio::test]
async fn a_query_for_failed_work_with_a_limit_finds_it_behind_retained_successes() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let ok: Vec<_> = (0..4)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .tag("t")
                .build()
                .unwrap()
        })
        .collect();
    let bad = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    wm.enqueue_many(ok.iter().cloned().chain([bad.clone()]))
        .await
        .unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| b);
    for r in &ok {
        assert_eq!(
            finished(&wm, &mut watch, r.id()).await.state,
            WorkState::Succeeded
        );
    }
    assert_eq!(
        finished(&wm, &mut watch, bad.id()).await.state,
        WorkState::Failed
    );
    worker.stop().await;
    let got: Vec<_> = wm
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Failed]).limit(1))
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [bad.id()]);
}

/// With a limit, a query by state picks ENQUEUED work in the order it will run: the work
/// due soonest, not the oldest.
#[tokio::test]
async fn a_limited_query_for_enqueued_work_picks_the_work_due_soonest() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let old = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    wm.enqueue(old.clone()).await.unwrap();
    let young = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    wm.enqueue(young.clone()).await.unwrap();
    assert!(old.id() < young.id());
    let got: Vec<_> = wm
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Enqueued]).limit(1))
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [young.id()]);
    // Without a limit that bites, both, oldest first.
    let got: Vec<_> = wm
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Enqueued]))
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [old.id(), young.id()]);
}

/// UPDATE gives the periodic job the new request's tags: queries and cancel-by-tag must
/// follow them.
#[tokio::test]

async fn update_of_unique_periodic_work_moves_it_to_its_new_tags() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let every = Duration::from_secs(3600);
    let flex = Duration::from_secs(60);
    let old = PeriodicWorkRequest::builder(Nop { i: 1 }, every)
        .flex(flex)
        .tag("old")
        .build()
        .unwrap();
    let id = old.id();
    wm.enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Keep, old)
        .await
        .unwrap();
    let new = PeriodicWorkRequest::builder(Nop { i: 2 }, every)
        .flex(flex)
        .tag("new")
        .build()
        .unwrap();
    let out = wm
        .enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Update, new)
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Updated, vec![id]));
    assert_eq!(info(&wm, id).await.tags, ["new"]);
    let by_new: Vec<_> = wm
        .get_work_infos_by_tag("new")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(by_new, [id], "the job is not found by its new tag");
    let sum = wm.cancel_all_work_by_tag("old").await.unwrap();
    assert_eq!(
        sum.cancelled, 0,
        "cancelling a tag the job no longer has cancelled it"
    );
    assert_eq!(info(&wm, id).await.state, WorkState::Enqueued);
}

/// A unique name is scoped to its queue (a chain, and so unique work, lives in one queue):
/// KEEP in another queue enqueues there. Queries and cancel by name look in every queue,
/// or in the queues a query names.
#[tokio::test]
async fn unique_names_are_per_queue_and_queries_by_name_look_in_every_queue() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let in_queue = |q: &str| {
        OneTimeWorkRequest::builder(Sleep::ms(1))
            .queue(q)
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap()
    };
    let (first, second, third) = (in_queue("a"), in_queue("b"), in_queue("a"));
    for r in [&first, &second] {
        let out = wm
            .enqueue_unique_work("report", ExistingWorkPolicy::Keep, r.clone())
            .await
            .unwrap();
        assert_eq!((out.status, out.ids), (GraphStatus::Enqueued, vec![r.id()]));
    }
    let out = wm
        .enqueue_unique_work("report", ExistingWorkPolicy::Keep, third.clone())
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Kept, vec![first.id()]));
    let ids = |infos: Vec<WorkInfo>| infos.iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(wm.get_work_infos_for_unique_work("report").await.unwrap()),
        [first.id(), second.id()]
    );
    let in_a = WorkQuery::from_unique_work_names(["report"]).queue("a");
    assert_eq!(
        ids(wm.get_work_infos_by_query(&in_a).await.unwrap()),
        [first.id()]
    );
    let sum = wm.cancel_unique_work("report").await.unwrap();
    assert_eq!(sum.cancelled, 2);
    assert_eq!(info(&wm, first.id()).await.state, WorkState::Cancelled);
    assert_eq!(info(&wm, second.id()).await.state, WorkState::Cancelled);
}

/// APPEND makes the new work a child of the name's last work; when that work has already
/// succeeded (and is retained) the new work still gets its output, as it does when the
/// parent succeeds later.
#[tokio::test]

async fn append_onto_work_that_already_succeeded_still_gets_its_output() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let first = emit(json!({"a": 1}));
    wm.enqueue_unique_work("etl", ExistingWorkPolicy::Keep, first.clone())
        .await
        .unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| b);
    assert_eq!(
        finished(&wm, &mut watch, first.id()).await.state,
        WorkState::Succeeded
    );
    let next = echo(json!({"b": 2}));
    wm.enqueue_unique_work("etl", ExistingWorkPolicy::Append, next.clone())
        .await
        .unwrap();
    let n = finished(&wm, &mut watch, next.id()).await;
    assert_eq!(n.state, WorkState::Succeeded);
    assert_eq!(n.parents, [first.id()]);
    let out: Map = n.output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"a": 1, "b": 2})));
    worker.stop().await;
}

/// A worker with labels takes due work in due order across its lanes: labelled work due
/// earlier is not held back behind plain work due later (else it starves on the only
/// workers that can run it while plain work keeps coming).
#[tokio::test]
async fn a_labelled_worker_takes_older_labelled_work_before_newer_plain_work() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let gpu = OneTimeWorkRequest::builder(Nop { i: 1 })
        .require_label("gpu")
        .build()
        .unwrap();
    wm.enqueue(gpu.clone()).await.unwrap();
    let plain = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    wm.enqueue(plain.clone()).await.unwrap();
    assert!(
        info(&wm, gpu.id()).await.next_due_at.unwrap()
            <= info(&wm, plain.id()).await.next_due_at.unwrap()
    );
    let r = claim_with(&wm, "gpu-1", "gpu").await;
    let ids: Vec<&str> = r.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [gpu.id().to_string()]);
}

/// A queue watch delivers every event written after `watch_queue` returned, including one
/// written within the same millisecond (its stream id is then `<start ms>-0`, which XREAD
/// after `<start ms>-0` skips). Each round starts a watch on a fresh queue and enqueues
/// right away; the second job's event proves whether the first one's was skipped.
#[tokio::test]

async fn a_queue_watch_sees_an_event_written_in_the_millisecond_it_started() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    for round in 0..40 {
        let q = format!("q{round}");
        // Registers the queue (no watch yet, so no event is written).
        wm.enqueue(
            OneTimeWorkRequest::builder(Nop { i: 0 })
                .queue(q.as_str())
                .initial_delay(Duration::from_secs(3600))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
        let first = OneTimeWorkRequest::builder(Nop { i: 1 })
            .queue(q.as_str())
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        let second = OneTimeWorkRequest::builder(Nop { i: 2 })
            .queue(q.as_str())
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap();
        let mut w = wm.watch_queue(&q).await.unwrap();
        wm.enqueue(first.clone()).await.unwrap();
        wm.enqueue(second.clone()).await.unwrap();
        let ev = tokio::time::timeout(workq_tests::HANG, w.next())
            .await
            .expect("no event")
            .unwrap();
        assert_eq!(
            ev.id,
            first.id(),
            "round {round}: the first event after the watch started ({}) was skipped",
            first.id()
        );
    }
}

/// A child of two parents: one parent is cancelled while the other runs. The child ends
/// CANCELLED naming the cancelled parent, and stays so when the other parent succeeds.
#[tokio::test]
async fn a_child_stays_cancelled_when_its_other_parent_succeeds_afterwards() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let running = OneTimeWorkRequest::builder(Sleep::ms(200)).build().unwrap();
    let waiting = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let child = echo(json!({"c": 1}));
    wm.begin_with([running.clone(), waiting.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| b);
    reaches(&mut watch, running.id(), WorkState::Running).await;
    wm.cancel_work_by_id(waiting.id()).await.unwrap();
    let p = finished(&wm, &mut watch, running.id()).await;
    assert_eq!(p.state, WorkState::Succeeded);
    let c = info(&wm, child.id()).await;
    assert_eq!(c.state, WorkState::Cancelled, "{c:?}");
    assert_eq!(
        c.last_error,
        Some(format!("parent {} was cancelled", waiting.id()))
    );
    assert_eq!(c.run_attempt_count, 0);
    assert_eq!(wm.queue_stats("default").await.unwrap().blocked, 0);
    worker.stop().await;
}

/// Work that needs a label no live worker has stays ENQUEUED and is reported by
/// `queue_stats` as unsatisfiable, while the plain worker keeps serving its own work.
#[tokio::test]
async fn work_no_live_worker_can_run_shows_as_unsatisfiable_in_stats() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let gpu = OneTimeWorkRequest::builder(Nop { i: 1 })
        .require_label("gpu")
        .require_label("eu")
        .build()
        .unwrap();
    wm.enqueue(gpu.clone()).await.unwrap();
    let worker = InProcess::start(&redis.url(), "default", |b| {
        b.worker_id("gpu-us").labels(["gpu"])
    });
    let plain = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    wm.enqueue(plain.clone()).await.unwrap();
    assert_eq!(
        finished(&wm, &mut watch, plain.id()).await.state,
        WorkState::Succeeded
    );
    let stats = wm.queue_stats("default").await.unwrap();
    assert_eq!(
        stats.workers,
        [("gpu-us".to_owned(), vec!["gpu".to_owned()])]
    );
    assert_eq!(stats.unsatisfiable, 1, "{stats:?}");
    assert!(
        stats.lanes.contains(&("@eu,gpu".to_owned(), 1)),
        "{stats:?}"
    );
    let g = info(&wm, gpu.id()).await;
    assert_eq!((g.state, g.run_attempt_count), (WorkState::Enqueued, 0));
    assert_eq!(g.required_labels, ["eu", "gpu"]);
    worker.stop().await;
}
