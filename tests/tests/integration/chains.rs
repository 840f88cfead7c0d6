//! Chains (WorkManager's `WorkContinuation`): dependency order, input mergers, delays and
//! times of chained jobs (counted from their release), failure and cancellation of
//! descendants, combine, and a crash in the middle of a chain.

use std::time::{Duration, SystemTime};

use serde_json::json;
use workq_common::internal::scripts::GraphStatus;
use workq_producer::{
    BackoffPolicy, CancelStatus, Error, InputMerger, OneTimeWorkRequest, WorkContinuation,
    WorkInfo, WorkManager, WorkState,
};
use workq_tests::jobs::{Echo, Fail, Map, Nop, Sleep, Slept};

use crate::fixture::TestContext;
use crate::support::*;

fn finished_at(i: &WorkInfo) -> SystemTime {
    i.finished_at
        .unwrap_or_else(|| panic!("{} has no finish time: {i:?}", i.id))
}

fn started_at(i: &WorkInfo) -> SystemTime {
    i.started_at
        .unwrap_or_else(|| panic!("{} has no start time: {i:?}", i.id))
}

/// Asserts that `child` started only after every parent had finished (Redis times).
fn after_all(child: &WorkInfo, parents: &[&WorkInfo]) {
    for p in parents {
        assert!(
            started_at(child) >= finished_at(p),
            "{} started at {:?}, before its parent {} finished at {:?}",
            child.id,
            child.started_at,
            p.id,
            p.finished_at
        );
    }
}

async fn all_finished(
    wm: &WorkManager,
    watch: &mut workq_producer::QueueWatch,
    ids: &[workq_producer::WorkId],
) -> Vec<WorkInfo> {
    let mut out = Vec::new();
    for id in ids {
        out.push(finished(wm, watch, *id).await);
    }
    out
}

#[tokio::test]
async fn a_chain_runs_step_after_step_and_every_job_succeeds() {
    let ctx = TestContext::without_watch().await;
    let (a, b) = (emit(json!({"a": 1})), emit(json!({"b": 2})));
    let c = echo(json!({"c": 3}));
    let (d, e) = (echo(json!({"d": 4})), echo(json!({"e": 5})));
    let chain = ctx
        .wm
        .begin_with([a.clone(), b.clone()])
        .then([c.clone()])
        .then([d.clone(), e.clone()]);
    let ids = [a.id(), b.id(), c.id(), d.id(), e.id()];
    assert_eq!(chain.ids(), ids);
    let out = chain.enqueue().await.unwrap();
    assert_eq!(out.status, GraphStatus::Enqueued);
    assert_eq!(out.ids, ids);

    // Stored as a graph: roots ENQUEUED, the rest BLOCKED, edges both ways.
    let infos: Vec<WorkInfo> = ctx
        .wm
        .get_work_infos(&ids)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let states: Vec<WorkState> = infos.iter().map(|i| i.state).collect();
    use WorkState::{Blocked, Enqueued};
    assert_eq!(states, [Enqueued, Enqueued, Blocked, Blocked, Blocked]);
    assert_eq!(infos[0].children, [c.id()]);
    assert_eq!(infos[1].children, [c.id()]);
    assert_eq!(infos[2].parents, [a.id(), b.id()]);
    assert_eq!(infos[2].children, [d.id(), e.id()]);
    assert_eq!(infos[3].parents, [c.id()]);
    assert_eq!(infos[4].parents, [c.id()]);
    assert!(infos[3].children.is_empty() && infos[4].children.is_empty());

    // Enqueueing the same chain again is a retry that changes nothing.
    let again = ctx
        .wm
        .begin_with([a.clone(), b.clone()])
        .then([c.clone()])
        .then([d.clone(), e.clone()])
        .enqueue()
        .await
        .unwrap();
    assert_eq!(again.status, GraphStatus::Existed);

    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b.concurrency(4));
    let done = all_finished(&ctx.wm, &mut watch, &ids).await;
    assert!(
        done.iter().all(|i| i.state == WorkState::Succeeded),
        "{done:?}"
    );
    let [a, b, c, d, e] = [&done[0], &done[1], &done[2], &done[3], &done[4]];
    after_all(c, &[a, b]);
    after_all(d, &[c]);
    after_all(e, &[c]);
    // Each step saw the outputs of the steps before it.
    let out: Map = e.output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"a": 1, "b": 2, "c": 3, "e": 5})));
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("succeeded"), Some(&5));
    assert_eq!(stats.counters.get("claimed"), Some(&5), "each job ran once");
    worker.stop().await;
}

#[tokio::test]
async fn overwriting_and_array_creating_mergers_build_the_child_input_from_parent_outputs() {
    let ctx = TestContext::without_watch().await;
    let first = emit(json!({"k": "first", "a": 1, "list": [1, 2]}));
    let second = emit(json!({"k": "second", "b": 2, "list": [3]}));
    let overwriting = OneTimeWorkRequest::builder(Echo(map(json!({"k": "own", "c": 3}))))
        .input_merger(InputMerger::Overwriting)
        .build()
        .unwrap();
    let array_creating = OneTimeWorkRequest::builder(Echo(map(json!({"k": "own", "c": 3}))))
        .input_merger(InputMerger::ArrayCreating)
        .build()
        .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .begin_with([first.clone(), second.clone()])
        .then([overwriting.clone(), array_creating.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);

    let o = finished(&ctx.wm, &mut watch, overwriting.id()).await;
    assert_eq!(o.state, WorkState::Succeeded);
    let out: Map = o.output_as().unwrap().unwrap();
    // Own input first, then the parents in the order given: the last value wins.
    assert_eq!(
        out,
        map(json!({"k": "second", "a": 1, "b": 2, "c": 3, "list": [3]}))
    );

    let x = finished(&ctx.wm, &mut watch, array_creating.id()).await;
    assert_eq!(x.state, WorkState::Succeeded);
    let out: Map = x.output_as().unwrap().unwrap();
    // Every key becomes an array of all its values (arrays concatenated), as in
    // WorkManager's ArrayCreatingInputMerger: a key found once included.
    assert_eq!(
        out,
        map(json!({
            "k": ["own", "first", "second"],
            "a": [1],
            "b": [2],
            "c": [3],
            "list": [1, 2, 3]
        }))
    );
    // The stored input is the job's own.
    let own: Map = x.input.decode().unwrap();
    assert_eq!(own, map(json!({"k": "own", "c": 3})));
    worker.stop().await;
}

/// WorkManager's ArrayCreatingInputMerger turns every value into an array, a key found in
/// one input included: {a: 1} + {b: 2} gives {a: [1], b: [2]}.
#[tokio::test]
async fn array_creating_merger_makes_an_array_of_a_key_found_in_one_input() {
    let ctx = TestContext::without_watch().await;
    let parent = emit(json!({"a": 1}));
    let child = OneTimeWorkRequest::builder(Echo(Map::new()))
        .input_merger(InputMerger::ArrayCreating)
        .build()
        .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .begin_with([parent.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let c = finished(&ctx.wm, &mut watch, child.id()).await;
    assert_eq!(c.state, WorkState::Succeeded, "{c:?}");
    let out: Map = c.output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"a": [1]})));
    worker.stop().await;
}

#[tokio::test]
async fn a_failed_parent_fails_every_descendant_naming_the_parent() {
    let ctx = TestContext::without_watch().await;
    let ok = emit(json!({"ok": true}));
    let bad = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    let c = echo(json!({}));
    let (d, e) = (echo(json!({})), echo(json!({})));
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .begin_with([ok.clone(), bad.clone()])
        .then([c.clone()])
        .then([d.clone(), e.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let done = all_finished(
        &ctx.wm,
        &mut watch,
        &[ok.id(), bad.id(), c.id(), d.id(), e.id()],
    )
    .await;
    assert_eq!(done[0].state, WorkState::Succeeded);
    assert_eq!(done[1].state, WorkState::Failed);
    assert_eq!(done[1].last_error.as_deref(), Some("gave up at attempt 1"));
    for (child, parent) in [(&done[2], bad.id()), (&done[3], c.id()), (&done[4], c.id())] {
        assert_eq!(child.state, WorkState::Failed, "{child:?}");
        assert_eq!(
            child.last_error,
            Some(format!("parent {parent} failed")),
            "{child:?}"
        );
        assert_eq!(
            (child.run_attempt_count, child.started_at),
            (0, None),
            "a descendant of a failed job never runs"
        );
        assert!(finished_at(child) >= finished_at(&done[1]));
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.enqueued, stats.running), (0, 0));
    assert_eq!(stats.counters.get("failed"), Some(&4));
    worker.stop().await;
}

#[tokio::test]
async fn cancelling_the_root_of_a_waiting_chain_cancels_its_descendants() {
    let ctx = TestContext::without_watch().await;
    let root = OneTimeWorkRequest::builder(Sleep::ms(1))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (mid, leaf) = (echo(json!({})), echo(json!({})));
    ctx.wm
        .begin_with([root.clone()])
        .then([mid.clone()])
        .then([leaf.clone()])
        .enqueue()
        .await
        .unwrap();
    assert_eq!(ctx.info(root.id()).await.state, WorkState::Enqueued);
    assert_eq!(ctx.info(mid.id()).await.state, WorkState::Blocked);

    assert_eq!(
        ctx.wm.cancel_work_by_id(root.id()).await.unwrap(),
        CancelStatus::Cancelled
    );
    let r = ctx.info(root.id()).await;
    assert_eq!(r.state, WorkState::Cancelled);
    for (child, parent) in [(mid.id(), root.id()), (leaf.id(), mid.id())] {
        let c = ctx.info(child).await;
        assert_eq!(c.state, WorkState::Cancelled, "{c:?}");
        assert_eq!(c.last_error, Some(format!("parent {parent} was cancelled")));
        assert_eq!(c.run_attempt_count, 0);
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.enqueued, 0);
    assert_eq!(stats.counters.get("cancelled"), Some(&3));
    // Nothing of the chain is left waiting to be unblocked.
    let blocked = ctx
        .wm
        .get_work_infos_by_query(&workq_producer::WorkQuery::from_states([
            WorkState::Blocked,
        ]))
        .await
        .unwrap();
    assert!(blocked.is_empty(), "{blocked:?}");
}

/// A child of two parents: one parent is cancelled while the other runs. The child ends
/// CANCELLED naming the cancelled parent, and stays so when the other parent succeeds.
#[tokio::test]
async fn a_child_stays_cancelled_when_its_other_parent_succeeds_afterwards() {
    let mut ctx = TestContext::new().await;
    let running = OneTimeWorkRequest::builder(Sleep::ms(200)).build().unwrap();
    let waiting = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let child = echo(json!({"c": 1}));
    ctx.wm
        .begin_with([running.clone(), waiting.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    ctx.reaches(running.id(), WorkState::Running).await;
    ctx.wm.cancel_work_by_id(waiting.id()).await.unwrap();
    let p = ctx.finished(running.id()).await;
    assert_eq!(p.state, WorkState::Succeeded);
    let c = ctx.info(child.id()).await;
    assert_eq!(c.state, WorkState::Cancelled, "{c:?}");
    assert_eq!(
        c.last_error,
        Some(format!("parent {} was cancelled", waiting.id()))
    );
    assert_eq!(c.run_attempt_count, 0);
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().blocked, 0);
    worker.stop().await;
}

#[tokio::test]
async fn steps_of_different_kinds_pass_outputs_along() {
    let ctx = TestContext::without_watch().await;
    let sleep = OneTimeWorkRequest::builder(Sleep::ms(20)).build().unwrap();
    let echo_step = echo(json!({"seen": "echo"}));
    let nop = OneTimeWorkRequest::builder(Nop { i: 7 }).build().unwrap();
    let last = echo(json!({"last": true}));
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    ctx.wm
        .begin_with([sleep.clone()])
        .then([echo_step.clone()])
        .then([nop.clone()])
        .then([last.clone()])
        .enqueue()
        .await
        .unwrap();
    let done = all_finished(
        &ctx.wm,
        &mut watch,
        &[sleep.id(), echo_step.id(), nop.id(), last.id()],
    )
    .await;
    let kinds: Vec<&str> = done.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(kinds, ["sleep", "echo", "nop", "echo"]);
    assert!(done.iter().all(|i| i.state == WorkState::Succeeded));
    for w in done.windows(2) {
        after_all(&w[1], &[&w[0]]);
    }
    // The echo step got the sleep step's output merged into its input.
    let slept: Slept = done[0].output_as().unwrap().unwrap();
    let out: Map = done[1].output_as().unwrap().unwrap();
    assert_eq!(
        out,
        map(json!({"seen": "echo", "attempt": slept.attempt, "pid": slept.pid}))
    );
    // A parent with no output (nop) adds nothing.
    let out: Map = done[3].output_as().unwrap().unwrap();
    assert_eq!(out, map(json!({"last": true})));
    worker.stop().await;
}

/// A job's initial delay in a chain counts from when its parents release it (as in
/// WorkManager).
#[tokio::test]
async fn a_chained_job_keeps_its_initial_delay_after_its_parent_succeeds() {
    let ctx = TestContext::without_watch().await;
    let parent = emit(json!({"a": 1}));
    let child = OneTimeWorkRequest::builder(Echo(Map::new()))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .begin_with([parent.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let p = finished(&ctx.wm, &mut watch, parent.id()).await;
    assert_eq!(p.state, WorkState::Succeeded);
    reaches(&mut watch, child.id(), WorkState::Enqueued).await;
    let c = ctx.info(child.id()).await;
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

/// A chained job's `run_at` makes it due at the later of its release and that time: with a
/// time an hour away, the job is still waiting for it after its parent succeeds.
#[tokio::test]
async fn a_chained_job_keeps_its_run_at_time_after_its_parent_succeeds() {
    let ctx = TestContext::without_watch().await;
    let at = SystemTime::now() + Duration::from_secs(3600);
    let parent = emit(json!({"a": 1}));
    let child = OneTimeWorkRequest::builder(Echo(Map::new()))
        .run_at(at)
        .build()
        .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .begin_with([parent.clone()])
        .then([child.clone()])
        .enqueue()
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let p = finished(&ctx.wm, &mut watch, parent.id()).await;
    assert_eq!(p.state, WorkState::Succeeded);
    reaches(&mut watch, child.id(), WorkState::Enqueued).await;
    let c = ctx.info(child.id()).await;
    assert_eq!(
        c.state,
        WorkState::Enqueued,
        "the child ran before its time: {c:?}"
    );
    assert_eq!(c.next_due_at.map(ms), Some(ms(at)), "{c:?}");
    worker.stop().await;
}

#[tokio::test]
async fn a_chain_across_queues_is_refused_and_nothing_is_stored() {
    let ctx = TestContext::without_watch().await;
    let a = echo(json!({}));
    let b = OneTimeWorkRequest::builder(Echo::default())
        .queue("elsewhere")
        .build()
        .unwrap();
    let err = ctx
        .wm
        .begin_with([a.clone()])
        .then([b.clone()])
        .enqueue()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("default") && msg.contains("elsewhere"),
        "{msg}"
    );
    let infos = ctx.wm.get_work_infos(&[a.id(), b.id()]).await.unwrap();
    assert!(infos.iter().all(Option::is_none), "{infos:?}");
}

#[tokio::test]
async fn combined_chains_are_joined_by_the_step_that_follows() {
    let ctx = TestContext::without_watch().await;
    let (a1, a2) = (emit(json!({"a1": 1})), echo(json!({"a2": 2})));
    let b1 = OneTimeWorkRequest::builder(Sleep::ms(50)).build().unwrap();
    let join = echo(json!({"join": true}));
    let left = ctx.wm.begin_with([a1.clone()]).then([a2.clone()]);
    let right = ctx.wm.begin_with([b1.clone()]);
    let combined = WorkContinuation::combine([left, right])
        .unwrap()
        .then([join.clone()]);
    assert_eq!(combined.ids(), [a1.id(), a2.id(), b1.id(), join.id()]);
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    combined.enqueue().await.unwrap();
    let j = ctx.info(join.id()).await;
    assert_eq!(j.state, WorkState::Blocked);
    assert_eq!(j.parents, [a2.id(), b1.id()], "the last jobs of each chain");
    assert_eq!(ctx.info(b1.id()).await.state, WorkState::Enqueued);

    let worker = InProcess::start(&ctx.url(), "default", |b| b.concurrency(4));
    let done = all_finished(&ctx.wm, &mut watch, &[a1.id(), a2.id(), b1.id(), join.id()]).await;
    assert!(done.iter().all(|i| i.state == WorkState::Succeeded));
    after_all(&done[1], &[&done[0]]);
    after_all(&done[3], &[&done[1], &done[2]]);
    let slept: Slept = done[2].output_as().unwrap().unwrap();
    let out: Map = done[3].output_as().unwrap().unwrap();
    assert_eq!(
        out,
        map(json!({
            "join": true, "a1": 1, "a2": 2, "attempt": slept.attempt, "pid": slept.pid
        }))
    );
    assert!(matches!(
        WorkContinuation::combine(Vec::new()),
        Err(Error::InvalidRequest(_))
    ));
    worker.stop().await;
}

#[tokio::test]
async fn a_chain_survives_the_crash_of_the_worker_running_a_parent() {
    let mut ctx = TestContext::new().await;
    let (mut first, first_id, _) = spawn_worker(&ctx.url(), "default", 4, 1000, 5000, &[]);
    // The parent's first attempt hangs; a retry is quick. An hour-long backoff shows that
    // the takeover comes from the lease, not from a retry.
    let parent = OneTimeWorkRequest::builder(Sleep {
        ms: 600_000,
        retry_ms: Some(10),
    })
    .backoff(BackoffPolicy::Exponential, Duration::from_secs(3600))
    .build()
    .unwrap();
    let child = echo(json!({"child": true}));
    let grandchild = emit(json!({"done": true}));
    ctx.wm
        .begin_with([parent.clone()])
        .then([child.clone()])
        .then([grandchild.clone()])
        .enqueue()
        .await
        .unwrap();
    first.wait_line(&format!("START {} 1", parent.id()));

    let (mut second, _, _) = spawn_worker(&ctx.url(), "default", 4, 1000, 5000, &[]);
    first.signal("KILL");
    assert_eq!(first.wait(), None, "killed by a signal");
    second.wait_line(&format!("START {} 2", parent.id()));
    second.wait_line(&format!("START {} 1", child.id()));
    second.wait_line(&format!("START {} 1", grandchild.id()));

    let (wm, watch) = ctx.wm_and_watch();
    let done = all_finished(wm, watch, &[parent.id(), child.id(), grandchild.id()]).await;
    assert!(
        done.iter().all(|i| i.state == WorkState::Succeeded),
        "{done:?}"
    );
    let p = &done[0];
    assert_eq!(p.run_attempt_count, 2);
    assert!(
        p.last_error
            .as_deref()
            .unwrap()
            .contains(&format!("lease expired: worker {first_id} lost")),
        "{p:?}"
    );
    assert_eq!(
        p.output_as::<Slept>().unwrap().unwrap(),
        Slept {
            attempt: 2,
            pid: second.pid()
        }
    );
    after_all(&done[1], &[p]);
    after_all(&done[2], &[&done[1]]);
    assert_eq!(
        (done[1].run_attempt_count, done[2].run_attempt_count),
        (1, 1)
    );
    // The child got the output of the attempt that succeeded.
    let out: Map = done[1].output_as().unwrap().unwrap();
    assert_eq!(
        out,
        map(json!({"child": true, "attempt": 2, "pid": second.pid()}))
    );
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("succeeded"), Some(&3));
    assert_eq!(stats.counters.get("lease_expired"), Some(&1));
    assert_eq!((stats.enqueued, stats.running), (0, 0));
}
