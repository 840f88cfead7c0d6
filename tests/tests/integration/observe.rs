//! Observation: WorkQuery (also with a limit), queue watches, watch streams by id, tag and
//! unique name (also across a Redis restart), and pruning: by workers after retention, by
//! `prune_work`, down to Redis' memory baseline.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use workq_common::internal::QueueKeys;
use workq_producer::{
    BackoffPolicy, CancelStatus, Error, ExistingWorkPolicy, OneTimeWorkRequest, Retention,
    WatchTarget, WorkId, WorkInfo, WorkManager, WorkQuery, WorkState,
};
use workq_tests::jobs::{Echo, Fail, Nop, Probe, Sleep};
use workq_tests::{Persistence, RedisServer, HANG};

use crate::fixture::TestContext;
use crate::support::*;

fn delayed(tags: &[&str]) -> OneTimeWorkRequest {
    let mut b = OneTimeWorkRequest::builder(Sleep::ms(1)).initial_delay(Duration::from_secs(3600));
    for t in tags {
        b = b.tag(*t);
    }
    b.build().unwrap()
}

async fn query(wm: &WorkManager, q: WorkQuery) -> Vec<WorkId> {
    let infos = wm.get_work_infos_by_query(&q).await.unwrap();
    let ids: Vec<WorkId> = infos.iter().map(|i| i.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "results come oldest first");
    ids
}

fn sorted(mut ids: Vec<WorkId>) -> Vec<WorkId> {
    ids.sort();
    ids
}

#[tokio::test]
async fn work_queries_match_ids_tags_unique_names_and_states_and_their_combinations() {
    use WorkState::{Blocked, Cancelled, Enqueued};
    let ctx = TestContext::without_watch().await;
    let a = delayed(&["t1"]);
    let b = delayed(&["t1", "t2"]);
    let c = delayed(&[]);
    let d = delayed(&["t2"]);
    let e = delayed(&[]);
    let f = delayed(&["t3"]);
    let g = OneTimeWorkRequest::builder(Sleep::ms(1))
        .queue("other")
        .tag("t1")
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_many([a.clone(), b.clone(), g.clone()])
        .await
        .unwrap();
    ctx.wm
        .enqueue_unique_work("u1", ExistingWorkPolicy::Keep, c.clone())
        .await
        .unwrap();
    ctx.wm
        .enqueue_unique_work("u2", ExistingWorkPolicy::Keep, d.clone())
        .await
        .unwrap();
    ctx.wm
        .begin_with([e.clone()])
        .then([f.clone()])
        .enqueue()
        .await
        .unwrap();
    assert_eq!(
        ctx.wm.cancel_work_by_id(b.id()).await.unwrap(),
        CancelStatus::Cancelled
    );
    let (a, b, c, d, e, f, g) = (a.id(), b.id(), c.id(), d.id(), e.id(), f.id(), g.id());

    let cases: Vec<(&str, WorkQuery, Vec<WorkId>)> = vec![
        (
            "ids",
            WorkQuery::from_ids([a, c, WorkId::new()]),
            vec![a, c],
        ),
        ("one tag", WorkQuery::from_tags(["t1"]), vec![a, b, g]),
        (
            "any of two tags",
            WorkQuery::from_tags(["t1", "t2"]),
            vec![a, b, d, g],
        ),
        (
            "tag in one queue",
            WorkQuery::from_tags(["t1"]).queue("default"),
            vec![a, b],
        ),
        (
            "tag and state",
            WorkQuery::from_tags(["t1"]).states([Cancelled]),
            vec![b],
        ),
        (
            "unique names",
            WorkQuery::from_unique_work_names(["u1", "u2"]),
            vec![c, d],
        ),
        (
            "unique names and tag",
            WorkQuery::from_unique_work_names(["u1", "u2"]).tags(["t2"]),
            vec![d],
        ),
        ("blocked", WorkQuery::from_states([Blocked]), vec![f]),
        (
            "two states",
            WorkQuery::from_states([Cancelled, Blocked]),
            vec![b, f],
        ),
        (
            "enqueued anywhere",
            WorkQuery::from_states([Enqueued]),
            vec![a, c, d, e, g],
        ),
        (
            "enqueued in one queue",
            WorkQuery::from_states([Enqueued]).queue("default"),
            vec![a, c, d, e],
        ),
        (
            "ids and state",
            WorkQuery::from_ids([a, b, g]).states([Enqueued]),
            vec![a, g],
        ),
        (
            "ids in a queue",
            WorkQuery::from_ids([a, b, g]).queue("other"),
            vec![g],
        ),
        (
            "ids and tag",
            WorkQuery::from_ids([a, b, c]).tags(["t2"]),
            vec![b],
        ),
        (
            "no match",
            WorkQuery::from_tags(["t3"]).states([Enqueued]),
            vec![],
        ),
    ];
    for (what, q, want) in cases {
        assert_eq!(query(&ctx.wm, q).await, sorted(want), "{what}");
    }
    let limited = query(&ctx.wm, WorkQuery::from_tags(["t1"]).limit(2)).await;
    assert_eq!(
        limited,
        sorted(vec![a, b, g])[..2],
        "limit keeps the oldest"
    );
    let err = ctx
        .wm
        .get_work_infos_by_query(&WorkQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
}

/// A query for FAILED work with a limit returns failed work even when many successes are
/// retained (successes are pruned earlier, so they come first in `done`).
#[tokio::test]
async fn a_query_for_failed_work_with_a_limit_finds_it_behind_retained_successes() {
    let mut ctx = TestContext::new().await;
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
    ctx.wm
        .enqueue_many(ok.iter().cloned().chain([bad.clone()]))
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    for r in &ok {
        assert_eq!(ctx.finished(r.id()).await.state, WorkState::Succeeded);
    }
    assert_eq!(ctx.finished(bad.id()).await.state, WorkState::Failed);
    worker.stop().await;
    let got: Vec<_> = ctx
        .wm
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
    let ctx = TestContext::without_watch().await;
    let old = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(old.clone()).await.unwrap();
    let young = OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap();
    ctx.wm.enqueue(young.clone()).await.unwrap();
    assert!(old.id() < young.id());
    let got: Vec<_> = ctx
        .wm
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Enqueued]).limit(1))
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [young.id()]);
    // Without a limit that bites, both, oldest first.
    let got: Vec<_> = ctx
        .wm
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Enqueued]))
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(got, [old.id(), young.id()]);
}

#[tokio::test]
async fn a_watch_on_one_id_sees_every_transition_in_order() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Probe {
        note: "flaky".into(),
        fail_first: true,
    })
    .backoff(BackoffPolicy::Linear, Duration::from_millis(10))
    .build()
    .unwrap();
    let mut stream = ctx.wm.watch(WatchTarget::Id(req.id())).await.unwrap();
    // Other work in the queue is not reported.
    let other = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue_many([other, req.clone()]).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);

    let mut seen = Vec::new();
    let mut retry_error = None;
    while seen.last().map(|(s, _)| *s) != Some(WorkState::Succeeded) {
        let i = next_item(&mut stream).await;
        assert_eq!(i.id, req.id());
        if seen.len() == 2 {
            retry_error = i.last_error.clone();
        }
        seen.push((i.state, i.run_attempt_count));
    }
    use WorkState::{Enqueued, Running, Succeeded};
    assert_eq!(
        seen,
        [
            (Enqueued, 0),
            (Running, 1),
            (Enqueued, 1),
            (Running, 2),
            (Succeeded, 2)
        ]
    );
    assert_eq!(retry_error.as_deref(), Some("attempt 1 fails on purpose"));
    worker.stop().await;
}

/// Collects watch items until `done` says stop; returns the states seen per job.
async fn collect(
    stream: &mut workq_producer::WorkInfoStream,
    mut done: impl FnMut(&HashMap<WorkId, Vec<WorkState>>) -> bool,
) -> HashMap<WorkId, Vec<WorkState>> {
    let mut seen: HashMap<WorkId, Vec<WorkState>> = HashMap::new();
    while !done(&seen) {
        let i = next_item(stream).await;
        seen.entry(i.id).or_default().push(i.state);
    }
    seen
}

#[tokio::test]
async fn a_watch_by_tag_sees_the_transitions_of_tagged_work_only() {
    use WorkState::{Enqueued, Running, Succeeded};
    let ctx = TestContext::without_watch().await;
    let mut stream = ctx
        .wm
        .watch(WatchTarget::Tag("batch".into()))
        .await
        .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    // Untagged and otherwise-tagged work runs first: its transitions precede the others.
    let untagged = OneTimeWorkRequest::builder(Nop { i: 0 }).build().unwrap();
    let elsewhere = OneTimeWorkRequest::builder(Nop { i: 0 })
        .tag("other")
        .build()
        .unwrap();
    ctx.wm
        .enqueue_many([untagged.clone(), elsewhere.clone()])
        .await
        .unwrap();
    finished(&ctx.wm, &mut watch, untagged.id()).await;
    finished(&ctx.wm, &mut watch, elsewhere.id()).await;

    let tagged: Vec<_> = (0..2)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .tag("batch")
                .build()
                .unwrap()
        })
        .collect();
    ctx.wm.enqueue_many(tagged.clone()).await.unwrap();
    let ids: Vec<WorkId> = tagged.iter().map(OneTimeWorkRequest::id).collect();
    let seen = collect(&mut stream, |s| {
        ids.iter()
            .all(|id| s.get(id).is_some_and(|v| v.last() == Some(&Succeeded)))
    })
    .await;
    assert_eq!(seen.len(), 2, "only tagged work: {seen:?}");
    for id in &ids {
        assert_eq!(seen[id], [Enqueued, Running, Succeeded]);
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_watch_by_unique_name_follows_the_work_of_that_name_across_a_replace() {
    use WorkState::{Cancelled, Enqueued, Running, Succeeded};
    let ctx = TestContext::without_watch().await;
    let mut stream = ctx
        .wm
        .watch(WatchTarget::UniqueName("nightly".into()))
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.lease(Duration::from_millis(600))
    });
    let unrelated = OneTimeWorkRequest::builder(Nop { i: 0 }).build().unwrap();
    ctx.wm
        .enqueue_unique_work("other", ExistingWorkPolicy::Keep, unrelated.clone())
        .await
        .unwrap();
    let old = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_unique_work("nightly", ExistingWorkPolicy::Keep, old.clone())
        .await
        .unwrap();
    let seen = collect(&mut stream, |s| {
        s.get(&old.id()).is_some_and(|v| v.contains(&Running))
    })
    .await;
    assert_eq!(seen.get(&old.id()).unwrap(), &[Enqueued, Running]);

    let new = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm
        .enqueue_unique_work("nightly", ExistingWorkPolicy::Replace, new.clone())
        .await
        .unwrap();
    let seen = collect(&mut stream, |s| {
        s.get(&old.id()).is_some_and(|v| v.contains(&Cancelled))
            && s.get(&new.id()).is_some_and(|v| v.contains(&Succeeded))
    })
    .await;
    assert_eq!(seen.get(&old.id()).unwrap(), &[Cancelled]);
    assert_eq!(
        seen.get(&new.id()).unwrap(),
        &[Enqueued, Running, Succeeded]
    );
    assert!(!seen.contains_key(&unrelated.id()), "{seen:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_stream_survives_a_redis_restart_and_misses_no_transition() {
    let mut redis = RedisServer::start_with(Persistence::AofAlways);
    let url = redis.url();
    let wm = WorkManager::builder(&url)
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let worker = InProcess::start(&url, "default", |b| b.lease(Duration::from_secs(3)));
    // Attempt 1 fails; the retry is due well after Redis is back.
    let req = OneTimeWorkRequest::builder(Probe {
        note: "restart".into(),
        fail_first: true,
    })
    .backoff(BackoffPolicy::Linear, Duration::from_millis(1500))
    .build()
    .unwrap();
    let mut stream = wm.watch(WatchTarget::Id(req.id())).await.unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let i = next_item(&mut stream).await;
        seen.push((i.state, i.run_attempt_count));
    }

    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await; // an outage, not a blip
    redis.restart();

    while seen.last().map(|(s, _)| *s) != Some(WorkState::Succeeded) {
        let i = next_item(&mut stream).await;
        seen.push((i.state, i.run_attempt_count));
    }
    use WorkState::{Enqueued, Running, Succeeded};
    assert_eq!(
        seen,
        [
            (Enqueued, 0),
            (Running, 1),
            (Enqueued, 1),
            (Running, 2),
            (Succeeded, 2)
        ]
    );
    worker.stop().await;
}

/// Redis keyspace notifications for one key: a change of that key is an event to wait on.
struct KeyChanges {
    key: String,
    messages: redis::aio::PubSubStream,
}

impl KeyChanges {
    async fn subscribe(redis: &RedisServer, wm: &WorkManager, key: &str) -> Self {
        let mut con = wm.connection().await.unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg("Kgh")
            .query_async(&mut con)
            .await
            .unwrap();
        let mut ps = redis.client().get_async_pubsub().await.unwrap();
        ps.subscribe(format!("__keyspace@0__:{key}")).await.unwrap();
        KeyChanges {
            key: key.to_owned(),
            messages: ps.into_on_message(),
        }
    }

    /// Waits until `check` holds, checking once now and again after each change of the key
    /// (so nothing is missed between subscribing and waiting).
    async fn until<F, Fut>(&mut self, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        while !check().await {
            tokio::time::timeout(HANG, self.messages.next())
                .await
                .unwrap_or_else(|_| panic!("{} stopped changing", self.key))
                .expect("subscription ended");
        }
    }
}

#[tokio::test]
async fn workers_prune_finished_jobs_once_their_retention_has_passed() {
    const KEEP: u64 = 300;
    let mut ctx = TestContext::with_worker(|b| {
        b.retention(Retention::new(
            Duration::from_millis(KEEP),
            Duration::from_millis(KEEP),
        ))
    })
    .await;
    let ok = OneTimeWorkRequest::builder(Echo(map(serde_json::json!({"keep": "me"}))))
        .tag("short-lived")
        .build()
        .unwrap();
    let bad = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    let lasting = OneTimeWorkRequest::builder(Nop { i: 0 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_many([ok.clone(), bad.clone(), lasting.clone()])
        .await
        .unwrap();
    // Both are queryable once finished...
    let o = ctx.finished(ok.id()).await;
    let f = ctx.finished(bad.id()).await;
    assert_eq!(
        (o.state, f.state),
        (WorkState::Succeeded, WorkState::Failed)
    );
    let finished_at = ms(o.finished_at.unwrap()).max(ms(f.finished_at.unwrap()));

    // ...and gone once the worker has pruned them.
    let ids = [ok.id(), bad.id()];
    let jobs = QueueKeys::new("default").unwrap().jobs();
    let mut changes = KeyChanges::subscribe(&ctx.redis, &ctx.wm, &jobs).await;
    changes
        .until(|| async {
            let infos = ctx.wm.get_work_infos(&ids).await.unwrap();
            infos.iter().all(Option::is_none)
        })
        .await;
    let gone_at = redis_now(&ctx.wm).await;
    assert!(
        gone_at >= finished_at + KEEP,
        "pruned at {gone_at}, before the retention ended at {}",
        finished_at + KEEP
    );
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("pruned"), Some(&2));
    assert_eq!(stats.finished, 0);
    assert!(ctx
        .wm
        .get_work_infos_by_tag("short-lived")
        .await
        .unwrap()
        .is_empty());
    // Unfinished work is never pruned.
    assert_eq!(ctx.info(lasting.id()).await.state, WorkState::Enqueued);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn prune_work_prunes_every_finished_job_now() {
    // Default retention: an hour for successes, a week for failures.
    let mut ctx = TestContext::with_worker(|b| b).await;
    let done: Vec<OneTimeWorkRequest> = (0..3)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .tag("prune")
                .build()
                .unwrap()
        })
        .collect();
    let failed = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    let waiting = OneTimeWorkRequest::builder(Nop { i: 9 })
        .tag("prune")
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let unique = OneTimeWorkRequest::builder(Nop { i: 10 }).build().unwrap();
    ctx.wm
        .enqueue_many(
            done.iter()
                .cloned()
                .chain([failed.clone(), waiting.clone()]),
        )
        .await
        .unwrap();
    ctx.wm
        .enqueue_unique_work("pruned-name", ExistingWorkPolicy::Keep, unique.clone())
        .await
        .unwrap();
    let mut finished_ids: Vec<WorkId> = done.iter().map(OneTimeWorkRequest::id).collect();
    finished_ids.extend([failed.id(), unique.id()]);
    for id in &finished_ids {
        assert!(ctx.finished(*id).await.state.is_finished());
    }

    assert_eq!(ctx.wm.prune_work().await.unwrap(), finished_ids.len());
    let infos = ctx.wm.get_work_infos(&finished_ids).await.unwrap();
    assert!(infos.iter().all(Option::is_none), "{infos:?}");
    let left: Vec<WorkInfo> = ctx.wm.get_work_infos_by_tag("prune").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].id, left[0].state),
        (waiting.id(), WorkState::Enqueued)
    );
    assert!(ctx
        .wm
        .get_work_infos_for_unique_work("pruned-name")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ctx.wm.prune_work().await.unwrap(),
        0,
        "nothing left to prune"
    );
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.finished, stats.enqueued), (0, 1));
    ctx.stop_worker().await;
}

async fn used_memory(wm: &WorkManager) -> i64 {
    let mut con = wm.connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut con)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// The keys of workq in Redis and the bytes each takes (`MEMORY USAGE`, every element
/// counted): the data itself, without client buffers or script caches.
async fn workq_keys(wm: &WorkManager) -> std::collections::BTreeMap<String, i64> {
    let mut con = wm.connection().await.unwrap();
    let mut keys = std::collections::BTreeMap::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("workq:*")
            .query_async(&mut con)
            .await
            .unwrap();
        for k in batch {
            let bytes: Option<i64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&k)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut con)
                .await
                .unwrap();
            keys.insert(k, bytes.unwrap_or(0));
        }
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_returns_to_its_baseline_after_ten_thousand_jobs_are_run_and_pruned() {
    const JOBS: u64 = 10_000;
    // What used_memory may keep after pruning (client buffers, allocator pages: Redis
    // 7.4's jemalloc kept some 270 KiB); the workq keys themselves are checked exactly
    // below.
    const SLACK: i64 = 384 * 1024;
    let ctx = TestContext::without_watch().await;
    let stats_key = QueueKeys::new("default").unwrap().stats();
    // No watch_queue here: the events stream it turns on is memory of its own.
    let succeeded = |n: u64| {
        let wm = ctx.wm.clone();
        move || {
            let wm = wm.clone();
            async move {
                let s = wm.queue_stats("default").await.unwrap();
                s.counters.get("succeeded").copied().unwrap_or(0) >= n
            }
        }
    };
    let mut changes = KeyChanges::subscribe(&ctx.redis, &ctx.wm, &stats_key).await;
    let worker = InProcess::start(&ctx.url(), "default", |b| b.concurrency(64));
    // Warm up every path once (enqueue, claim, ack, prune: scripts loaded, the queue's
    // bookkeeping keys created), so the baseline has what any running system has.
    ctx.wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 0 }).build().unwrap())
        .await
        .unwrap();
    changes.until(succeeded(1)).await;
    assert_eq!(ctx.wm.prune_work().await.unwrap(), 1);
    let baseline = used_memory(&ctx.wm).await;
    let baseline_keys = workq_keys(&ctx.wm).await;

    let reqs = (1..=JOBS).map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap());
    ctx.wm.enqueue_many(reqs).await.unwrap();
    changes.until(succeeded(JOBS + 1)).await;
    let stored = used_memory(&ctx.wm).await;
    let stored_keys = workq_keys(&ctx.wm).await;
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.finished, JOBS, "all retained until pruned");

    assert_eq!(ctx.wm.prune_work().await.unwrap(), JOBS as usize);
    let after = used_memory(&ctx.wm).await;
    let after_keys = workq_keys(&ctx.wm).await;
    let total = |k: &std::collections::BTreeMap<String, i64>| k.values().sum::<i64>();
    println!(
        "workq keys (MEMORY USAGE): baseline {} B, stored {} B, after pruning {} B",
        total(&baseline_keys),
        total(&stored_keys),
        total(&after_keys)
    );
    println!(
        "used_memory: baseline {baseline} B, with {JOBS} finished jobs stored {stored} B \
         (+{} B), after pruning {after} B ({:+} B)",
        stored - baseline,
        after - baseline
    );
    // (Redis 7.4 stores these 10,000 jobs in about 2.4 MB, 7.0 in more.)
    assert!(
        stored - baseline > 2 * 1024 * 1024,
        "the stored jobs should take far more than the slack: +{} B",
        stored - baseline
    );
    assert!(
        after - baseline <= SLACK,
        "Redis kept {} B after pruning every job (baseline {baseline}, after {after})",
        after - baseline
    );
    // The data itself, without Redis' client buffers (which Redis resizes on its own
    // schedule, and which move used_memory by some 100 KiB either way): the same keys,
    // within a few bytes (counters grew by some digits).
    assert_eq!(
        after_keys.keys().collect::<Vec<_>>(),
        baseline_keys.keys().collect::<Vec<_>>(),
        "keys left behind or lost"
    );
    assert!(
        total(&after_keys) - total(&baseline_keys) <= 1024,
        "workq keys grew from {baseline_keys:?} to {after_keys:?}"
    );
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.enqueued, stats.running, stats.finished), (0, 0, 0));
    worker.stop().await;
}

#[tokio::test]
async fn a_watch_started_before_its_queue_exists_sees_the_work_there() {
    use WorkState::{Enqueued, Running, Succeeded};
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .queue("mail")
        .tag("newsletter")
        .build()
        .unwrap();
    // Nothing exists yet, not even the queue.
    let mut by_id = ctx.wm.watch(WatchTarget::Id(req.id())).await.unwrap();
    let mut by_tag = ctx
        .wm
        .watch(WatchTarget::Tag("newsletter".into()))
        .await
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "mail", |b| b);
    for stream in [&mut by_id, &mut by_tag] {
        let mut seen = Vec::new();
        while seen.last() != Some(&Succeeded) {
            let i = next_item(stream).await;
            assert_eq!(i.id, req.id());
            seen.push(i.state);
        }
        assert_eq!(seen, [Enqueued, Running, Succeeded]);
    }
    worker.stop().await;
}

/// A queue watch delivers every event written after `watch_queue` returned, including one
/// written within the same millisecond (its stream id is then `<start ms>-0`, which an XREAD
/// after `<start ms>-0` would skip). Each round starts a watch on a fresh queue and enqueues
/// right away; the second job's event proves whether the first one's was skipped.
#[tokio::test]
async fn a_queue_watch_sees_an_event_written_in_the_millisecond_it_started() {
    let ctx = TestContext::without_watch().await;
    for round in 0..40 {
        let q = format!("q{round}");
        // Registers the queue (no watch yet, so no event is written).
        ctx.wm
            .enqueue(
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
        let mut w = ctx.wm.watch_queue(&q).await.unwrap();
        ctx.wm.enqueue(first.clone()).await.unwrap();
        ctx.wm.enqueue(second.clone()).await.unwrap();
        let ev = tokio::time::timeout(HANG, w.next())
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
