//! Periodic work (WorkManager's `PeriodicWorkRequest`): interval work on its anchor grid,
//! missed periods, retries inside a period, cancellation, cron, and unique periodic work.

use std::time::Duration;

use workq_common::internal::scripts::GraphStatus;
use workq_common::Schedule;
use workq_producer::{
    BackoffPolicy, CancelStatus, Error, ExistingPeriodicWorkPolicy, OneTimeWorkRequest,
    PeriodicWorkRequest, QueueWatch, WorkEvent, WorkId, WorkInfo, WorkManager, WorkState,
};
use workq_tests::jobs::{listen, Nop, Probe, Run};
use workq_tests::HANG;

use crate::fixture::TestContext;
use crate::support::*;

fn probe(note: &str, fail_first: bool) -> Probe {
    Probe {
        note: note.into(),
        fail_first,
    }
}

/// The next event of job `id` on the queue's stream.
async fn next_event(watch: &mut QueueWatch, id: WorkId) -> WorkEvent {
    tokio::time::timeout(HANG, watch.wait_for(|e| e.id == id))
        .await
        .unwrap_or_else(|_| panic!("no further event for {id}"))
        .expect("watch")
}

/// The event of the enqueue itself (for watches started before it).
async fn enqueue_event(watch: &mut QueueWatch, id: WorkId) {
    let e = next_event(watch, id).await;
    assert_eq!((e.state, e.attempt), (WorkState::Enqueued, 0), "{e:?}");
}

/// Redis time of an event (its stream entry id is `<ms>-<seq>`).
fn event_ms(e: &WorkEvent) -> u64 {
    e.entry
        .split('-')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("entry id")
}

/// Waits for one run of periodic work `id` (RUNNING, then ENQUEUED again), and returns
/// the info read right after it, the run's RUNNING event and the ENQUEUED event.
async fn one_run(
    wm: &WorkManager,
    watch: &mut QueueWatch,
    id: WorkId,
) -> (WorkInfo, WorkEvent, WorkEvent) {
    let running = next_event(watch, id).await;
    assert_eq!(running.state, WorkState::Running, "{running:?}");
    assert!(!running.progress);
    let enqueued = next_event(watch, id).await;
    assert_eq!(
        enqueued.state,
        WorkState::Enqueued,
        "a run of periodic work ends ENQUEUED for the next period: {enqueued:?}"
    );
    let i = info(wm, id).await;
    assert_eq!(
        i.state,
        WorkState::Enqueued,
        "read too late: the next run already started: {i:?}"
    );
    (i, running, enqueued)
}

/// Asserts that `due` is the first point of the grid `anchor + k * interval + offset` after
/// the moment `acked_ms` the run was recorded, and returns its k.
fn first_grid_point_after(due: u64, anchor: u64, interval: u64, offset: u64, acked_ms: u64) -> u64 {
    assert!(
        due >= anchor + offset && (due - anchor - offset).is_multiple_of(interval),
        "next due {due} is not on the grid {anchor} + k * {interval} + {offset}"
    );
    assert!(
        due + 1 > acked_ms && due <= acked_ms + interval,
        "next due {due} is not the first grid point after the run ended at {acked_ms}"
    );
    (due - anchor - offset) / interval
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_work_served_by_two_workers_runs_once_per_period_on_its_anchor_grid() {
    const INTERVAL: u64 = 600;
    let mut ctx = TestContext::new().await;
    let req = PeriodicWorkRequest::builder(probe("tick", false), Duration::from_millis(INTERVAL))
        .flex(Duration::from_millis(INTERVAL))
        .build()
        .unwrap();
    let id = req.id();
    let mut runs = listen(id);
    let out = ctx.wm.enqueue_periodic(req).await.unwrap();
    assert_eq!(
        (out.status, out.ids.as_slice()),
        (GraphStatus::Enqueued, &[id][..])
    );
    let first = ctx.info(id).await;
    assert_eq!(
        first.schedule,
        Some(Schedule::Interval {
            interval: Duration::from_millis(INTERVAL),
            flex: Duration::from_millis(INTERVAL),
        })
    );
    let anchor = ms(first.enqueued_at);
    // flex = interval: the first run is due at the anchor itself.
    assert_eq!(first.next_due_at.map(ms), Some(anchor));
    enqueue_event(ctx.watch(), id).await;
    let workers = [
        InProcess::start(&ctx.url(), "default", |b| b.worker_id("periodic-a")),
        InProcess::start(&ctx.url(), "default", |b| b.worker_id("periodic-b")),
    ];

    let mut due = anchor;
    let mut ran_on = Vec::new();
    for period in 0..3u64 {
        let (wm, watch) = ctx.wm_and_watch();
        let (i, running, enqueued) = one_run(wm, watch, id).await;
        let started = ms(i.started_at.unwrap());
        assert!(
            started >= due,
            "run {period} started at {started}, before its due time {due}"
        );
        assert_eq!(
            (started - anchor) / INTERVAL,
            period,
            "run {period} did not start in its own period (anchor {anchor}, started {started})"
        );
        assert_eq!(running.attempt, period as u32 + 1, "one attempt per period");
        let k = first_grid_point_after(
            ms(i.next_due_at.unwrap()),
            anchor,
            INTERVAL,
            0,
            event_ms(&enqueued),
        );
        assert_eq!(k, period + 1);
        due = ms(i.next_due_at.unwrap());
        assert_eq!(i.run_attempt_count, 0, "attempts count per period");
        assert_eq!(i.finished_at, None, "periodic work never finishes");
        // Exactly one run of the job itself this period.
        let run = runs.try_recv().expect("the job ran");
        assert_eq!(
            run,
            Run {
                attempt: 1,
                note: "tick".into()
            }
        );
        assert!(runs.try_recv().is_err(), "a second run in period {period}");
        ran_on.push(i.worker.unwrap());
    }
    println!("runs were taken by {ran_on:?}");
    assert!(ran_on
        .iter()
        .all(|w| w == "periodic-a" || w == "periodic-b"));
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test]
async fn periods_missed_while_no_worker_ran_are_run_once_on_recovery() {
    const INTERVAL: u64 = 300;
    let ctx = TestContext::without_watch().await;
    let req =
        PeriodicWorkRequest::builder(probe("catch-up", false), Duration::from_millis(INTERVAL))
            .build()
            .unwrap();
    let id = req.id();
    let mut runs = listen(id);
    ctx.wm.enqueue_periodic(req).await.unwrap();
    let anchor = ms(ctx.info(id).await.enqueued_at);

    // No worker for several periods: the passage of time is the scenario.
    tokio::time::sleep(Duration::from_millis(INTERVAL * 4 + INTERVAL / 2)).await;
    let now = redis_now(&ctx.wm).await;
    assert!(now >= anchor + 4 * INTERVAL, "four periods were missed");

    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let (i, _, enqueued) = one_run(&ctx.wm, &mut watch, id).await;
    let started = ms(i.started_at.unwrap());
    assert!(started >= now, "the catch-up run happened after recovery");
    let due = ms(i.next_due_at.unwrap());
    first_grid_point_after(due, anchor, INTERVAL, 0, event_ms(&enqueued));
    assert_eq!(runs.try_recv().map(|r| r.attempt).ok(), Some(1));
    assert!(
        runs.try_recv().is_err(),
        "one run for all the missed periods"
    );

    // The next run waits for that grid point: the missed periods were not run one by one.
    let (next, running, _) = one_run(&ctx.wm, &mut watch, id).await;
    assert_eq!(running.attempt, 2);
    assert!(
        ms(next.started_at.unwrap()) >= due,
        "a second catch-up run started at {:?}, before the next grid point {due}",
        next.started_at
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_failing_run_retries_with_backoff_inside_its_period_and_keeps_the_grid() {
    const INTERVAL: u64 = 1000;
    const BACKOFF: u64 = 250;
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = PeriodicWorkRequest::builder(probe("flaky", true), Duration::from_millis(INTERVAL))
        .backoff(BackoffPolicy::Linear, Duration::from_millis(BACKOFF))
        .build()
        .unwrap();
    let id = req.id();
    let mut runs = listen(id);
    ctx.wm.enqueue_periodic(req).await.unwrap();
    enqueue_event(ctx.watch(), id).await;
    let anchor = ms(ctx.info(id).await.enqueued_at);

    for period in 0..2u64 {
        // Attempt 1 of the period fails...
        let failed = next_event(ctx.watch(), id).await;
        assert_eq!(failed.state, WorkState::Running);
        let retry = next_event(ctx.watch(), id).await;
        assert_eq!(retry.state, WorkState::Enqueued, "{retry:?}");
        let r = ctx.info(id).await;
        assert_eq!(r.state, WorkState::Enqueued, "read too late: {r:?}");
        assert_eq!(r.run_attempt_count, 1, "period {period}");
        assert_eq!(r.last_error.as_deref(), Some("attempt 1 fails on purpose"));
        let started1 = ms(r.started_at.unwrap());
        assert_eq!((started1 - anchor) / INTERVAL, period);
        let retry_due = ms(r.next_due_at.unwrap());
        // ...and is retried after its backoff, counted from the failure, inside the period.
        assert!(
            retry_due >= started1 + BACKOFF && retry_due <= event_ms(&retry) + BACKOFF,
            "retry due {retry_due}: not the backoff after the failure at {}",
            event_ms(&retry)
        );
        assert!(
            retry_due < anchor + (period + 1) * INTERVAL,
            "retried outside the period"
        );

        // Attempt 2 succeeds; the next due time is back on the anchor grid.
        let (wm, watch) = ctx.wm_and_watch();
        let (i, running, enqueued) = one_run(wm, watch, id).await;
        assert_eq!(
            running.attempt as u64,
            2 * period + 2,
            "fencing tokens keep growing"
        );
        assert!(ms(i.started_at.unwrap()) >= retry_due);
        let k = first_grid_point_after(
            ms(i.next_due_at.unwrap()),
            anchor,
            INTERVAL,
            0,
            event_ms(&enqueued),
        );
        assert_eq!(k, period + 1);
        assert_eq!(i.run_attempt_count, 0);
        let attempts: Vec<u32> = [runs.try_recv(), runs.try_recv()]
            .into_iter()
            .map(|r| r.expect("a run").attempt)
            .collect();
        assert_eq!(attempts, [1, 2], "attempts are counted per period");
    }
    ctx.stop_worker().await;
}

#[tokio::test]
async fn cancelled_periodic_work_runs_no_more() {
    const INTERVAL: u64 = 300;
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req =
        PeriodicWorkRequest::builder(probe("stop me", false), Duration::from_millis(INTERVAL))
            .build()
            .unwrap();
    let id = req.id();
    let mut runs = listen(id);
    ctx.wm.enqueue_periodic(req).await.unwrap();
    enqueue_event(ctx.watch(), id).await;
    let (wm, watch) = ctx.wm_and_watch();
    one_run(wm, watch, id).await;
    assert!(runs.try_recv().is_ok());

    assert_eq!(
        ctx.wm.cancel_work_by_id(id).await.unwrap(),
        CancelStatus::Cancelled
    );
    let c = ctx.info(id).await;
    assert_eq!(c.state, WorkState::Cancelled);
    assert_eq!(c.next_due_at, None);
    assert_eq!(c.last_error.as_deref(), Some("cancelled by request"));

    // A job due after two more periods: once it has run, those periods have passed.
    let sentinel = OneTimeWorkRequest::builder(Nop { i: 0 })
        .initial_delay(Duration::from_millis(2 * INTERVAL + 50))
        .build()
        .unwrap();
    ctx.wm.enqueue(sentinel.clone()).await.unwrap();
    let mut after_cancel = Vec::new();
    tokio::time::timeout(
        HANG,
        ctx.watch().wait_for(|e| {
            if e.id == id {
                after_cancel.push(e.clone());
            }
            e.id == sentinel.id() && e.state == WorkState::Succeeded
        }),
    )
    .await
    .expect("sentinel did not run")
    .unwrap();
    assert!(
        after_cancel.iter().all(|e| e.state == WorkState::Cancelled),
        "cancelled periodic work changed state again: {after_cancel:?}"
    );
    assert!(runs.try_recv().is_err(), "cancelled periodic work ran");
    let c = ctx.info(id).await;
    assert_eq!((c.state, c.run_attempt_count), (WorkState::Cancelled, 0));
    assert!(c.schedule.is_some());
    ctx.stop_worker().await;
}

#[tokio::test]
async fn cron_work_is_first_due_at_the_next_cron_time_after_redis_now() {
    let ctx = TestContext::without_watch().await;
    for (expr, step) in [("* * * * *", 60_000u64), ("*/5 * * * *", 300_000)] {
        let t0 = redis_now(&ctx.wm).await;
        let req = PeriodicWorkRequest::cron(Nop { i: 1 }, expr)
            .build()
            .unwrap();
        let out = ctx.wm.enqueue_periodic(req.clone()).await.unwrap();
        assert_eq!(out.ids, [req.id()]);
        let t1 = redis_now(&ctx.wm).await;
        let i = ctx.info(req.id()).await;
        assert_eq!(i.state, WorkState::Enqueued);
        assert_eq!(i.schedule, Some(Schedule::Cron(expr.into())));
        let due = ms(i.next_due_at.unwrap());
        assert_eq!(
            due % step,
            0,
            "{expr}: due {due} is not on a cron time (UTC)"
        );
        assert!(
            due > t0 && due <= t1 + step,
            "{expr}: due {due} is not the next cron time after Redis' now {t0}..{t1}"
        );
    }
    let bad = PeriodicWorkRequest::cron(Nop { i: 1 }, "61 * * * *").build();
    assert!(matches!(bad, Err(Error::InvalidRequest(_))), "{bad:?}");
}

#[tokio::test]
async fn unique_periodic_work_keep_keeps_and_cancel_and_reenqueue_replaces() {
    let ctx = TestContext::without_watch().await;
    let every = Duration::from_secs(600);
    let first = PeriodicWorkRequest::builder(Nop { i: 1 }, every)
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Keep, first.clone())
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.ids),
        (GraphStatus::Enqueued, vec![first.id()])
    );

    let second = PeriodicWorkRequest::builder(Nop { i: 2 }, every)
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Keep, second.clone())
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Kept, vec![first.id()]));
    assert!(ctx.wm.get_work_info(second.id()).await.unwrap().is_none());
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);

    let third = PeriodicWorkRequest::builder(Nop { i: 3 }, every)
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_periodic_work(
            "sync",
            ExistingPeriodicWorkPolicy::CancelAndReenqueue,
            third.clone(),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.ids),
        (GraphStatus::Enqueued, vec![third.id()])
    );
    let old = ctx.info(first.id()).await;
    assert_eq!(old.state, WorkState::Cancelled);
    assert_eq!(
        old.last_error.as_deref(),
        Some("replaced by new work named 'sync'")
    );
    let new = ctx.info(third.id()).await;
    assert_eq!(new.state, WorkState::Enqueued);
    assert_eq!(new.unique_name.as_deref(), Some("sync"));
    assert!(new.schedule.is_some());
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);
}

#[tokio::test]
async fn unique_periodic_work_update_keeps_id_and_schedule_and_the_next_run_uses_the_new_input() {
    const INTERVAL: u64 = 500;
    let mut ctx = TestContext::with_worker(|b| b).await;
    let every = Duration::from_millis(INTERVAL);
    let old = PeriodicWorkRequest::builder(probe("old", false), every)
        .build()
        .unwrap();
    let id = old.id();
    let mut runs = listen(id);
    ctx.wm
        .enqueue_unique_periodic_work("refresh", ExistingPeriodicWorkPolicy::Keep, old)
        .await
        .unwrap();
    enqueue_event(ctx.watch(), id).await;
    let (wm, watch) = ctx.wm_and_watch();
    let (before, ..) = one_run(wm, watch, id).await;
    assert_eq!(runs.try_recv().unwrap().note, "old");

    let new = PeriodicWorkRequest::builder(probe("new", false), every)
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_periodic_work("refresh", ExistingPeriodicWorkPolicy::Update, new.clone())
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Updated, vec![id]));
    assert!(ctx.wm.get_work_info(new.id()).await.unwrap().is_none());
    let after = ctx.info(id).await;
    assert_eq!(after.state, WorkState::Enqueued, "updated while waiting");
    assert_eq!(
        after.next_due_at, before.next_due_at,
        "the schedule is kept"
    );
    assert_eq!(after.enqueued_at, before.enqueued_at, "the anchor is kept");
    assert_eq!(after.schedule, before.schedule);
    assert_eq!(after.unique_name.as_deref(), Some("refresh"));
    assert_eq!(after.input.decode::<Probe>().unwrap().note, "new");

    let (wm, watch) = ctx.wm_and_watch();
    let (next, ..) = one_run(wm, watch, id).await;
    assert_eq!(
        runs.try_recv().unwrap().note,
        "new",
        "the next run used the new input"
    );
    assert!(next.started_at >= before.next_due_at);
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);
    ctx.stop_worker().await;
}

/// UPDATE gives the periodic job the new request's tags: queries and cancel-by-tag must
/// follow them.
#[tokio::test]
async fn update_of_unique_periodic_work_moves_it_to_its_new_tags() {
    let ctx = TestContext::without_watch().await;
    let every = Duration::from_secs(3600);
    let flex = Duration::from_secs(60);
    let old = PeriodicWorkRequest::builder(Nop { i: 1 }, every)
        .flex(flex)
        .tag("old")
        .build()
        .unwrap();
    let id = old.id();
    ctx.wm
        .enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Keep, old)
        .await
        .unwrap();
    let new = PeriodicWorkRequest::builder(Nop { i: 2 }, every)
        .flex(flex)
        .tag("new")
        .build()
        .unwrap();
    let out = ctx
        .wm
        .enqueue_unique_periodic_work("sync", ExistingPeriodicWorkPolicy::Update, new)
        .await
        .unwrap();
    assert_eq!((out.status, out.ids), (GraphStatus::Updated, vec![id]));
    assert_eq!(ctx.info(id).await.tags, ["new"]);
    let by_new: Vec<_> = ctx
        .wm
        .get_work_infos_by_tag("new")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(by_new, [id], "the job is not found by its new tag");
    let sum = ctx.wm.cancel_all_work_by_tag("old").await.unwrap();
    assert_eq!(
        sum.cancelled, 0,
        "cancelling a tag the job no longer has cancelled it"
    );
    assert_eq!(ctx.info(id).await.state, WorkState::Enqueued);
}

#[tokio::test]
async fn a_flex_window_puts_each_run_at_the_end_of_its_interval() {
    const INTERVAL: u64 = 400;
    const FLEX: u64 = 150;
    const OFFSET: u64 = INTERVAL - FLEX;
    let mut ctx = TestContext::new().await;
    let req = PeriodicWorkRequest::builder(probe("late", false), Duration::from_millis(INTERVAL))
        .flex(Duration::from_millis(FLEX))
        .build()
        .unwrap();
    let id = req.id();
    ctx.wm.enqueue_periodic(req).await.unwrap();
    enqueue_event(ctx.watch(), id).await;
    let first = ctx.info(id).await;
    let anchor = ms(first.enqueued_at);
    assert_eq!(
        first.next_due_at.map(ms),
        Some(anchor + OFFSET),
        "the first run waits for the flex window of the first interval"
    );
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let mut due = anchor + OFFSET;
    for period in 0..2u64 {
        let (wm, watch) = ctx.wm_and_watch();
        let (i, _, enqueued) = one_run(wm, watch, id).await;
        let started = ms(i.started_at.unwrap());
        assert!(
            started >= due,
            "run {period} started at {started}, before {due}"
        );
        assert!(
            started >= anchor + period * INTERVAL + OFFSET,
            "run {period} started outside its flex window"
        );
        let k = first_grid_point_after(
            ms(i.next_due_at.unwrap()),
            anchor,
            INTERVAL,
            OFFSET,
            event_ms(&enqueued),
        );
        assert_eq!(k, period + 1);
        due = ms(i.next_due_at.unwrap());
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_periodic_run_out_of_attempts_waits_for_the_next_period_instead_of_failing() {
    const INTERVAL: u64 = 300;
    let mut ctx = TestContext::new().await;
    // One attempt per run, and the first attempt of every run fails.
    let req = PeriodicWorkRequest::builder(probe("doomed", true), Duration::from_millis(INTERVAL))
        .max_attempts(1)
        .build()
        .unwrap();
    let id = req.id();
    let mut runs = listen(id);
    ctx.wm.enqueue_periodic(req).await.unwrap();
    enqueue_event(ctx.watch(), id).await;
    let anchor = ms(ctx.info(id).await.enqueued_at);
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    for period in 1..=2u64 {
        let (wm, watch) = ctx.wm_and_watch();
        let (i, _, enqueued) = one_run(wm, watch, id).await;
        assert_eq!(
            i.state,
            WorkState::Enqueued,
            "periodic work never ends FAILED"
        );
        assert_eq!(i.last_error.as_deref(), Some("attempt 1 fails on purpose"));
        assert_eq!(
            i.run_attempt_count, 0,
            "a new period starts with no attempts"
        );
        let k = first_grid_point_after(
            ms(i.next_due_at.unwrap()),
            anchor,
            INTERVAL,
            0,
            event_ms(&enqueued),
        );
        assert_eq!(
            k, period,
            "no retry inside the period: on to the next grid point"
        );
        assert_eq!(runs.try_recv().unwrap().attempt, 1);
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("failed"), None);
    worker.stop().await;
}
