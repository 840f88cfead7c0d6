//! Producers, workers and operators as the README's least-privilege ACL users, and a
//! producer at `maxmemory`: neither may send `FUNCTION LOAD`, and neither needs to.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use workq_common::internal::scripts::scripts;
use workq_producer::{
    Error, ExistingWorkPolicy, GraphStatus, OneTimeWorkRequest, WatchTarget, WorkId, WorkManager,
    WorkQuery, WorkState,
};
use workq_tests::jobs::Nop;
use workq_tests::{readme_acl_rules, RedisServer, HANG};

use crate::fixture::TestContext;
use crate::support::*;

/// Runs one command as the default user (the administrator).
async fn admin(redis: &RedisServer, args: &[String]) -> redis::RedisResult<redis::Value> {
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd(&args[0])
        .arg(&args[1..])
        .query_async(&mut con)
        .await
}

/// Creates the README's three users; returns the URL of each, by role.
async fn acl_users(redis: &RedisServer) -> [String; 3] {
    let rules = readme_acl_rules();
    assert_eq!(
        rules.len(),
        3,
        "the README gives three ACL rules: {rules:?}"
    );
    for rule in &rules {
        admin(redis, rule)
            .await
            .unwrap_or_else(|e| panic!("{rule:?}: {e}"));
    }
    ["producer", "worker", "operator"].map(|role| {
        format!(
            "redis://workq-{role}:{role}-password@127.0.0.1:{}",
            redis.port()
        )
    })
}

fn nops(n: u64) -> Vec<OneTimeWorkRequest> {
    (0..n)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect()
}

#[tokio::test]
async fn producers_workers_and_operators_work_as_the_readmes_restricted_acl_users() {
    let redis = RedisServer::start();
    let [producer_url, worker_url, operator_url] = acl_users(&redis).await;

    // A producer that may not load the library connects to a Redis without it, and its
    // first call says who can load it.
    let producer = WorkManager::connect(&producer_url)
        .await
        .expect("a producer allowed FCALL but not FUNCTION LOAD connects");
    // It can still tell the Redis version (from HELLO, which any user may send).
    let mut con = producer.connection().await.unwrap();
    let version = workq_common::internal::server::version(&mut con)
        .await
        .unwrap();
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with('7')),
        "{version:?}"
    );
    drop(con);
    let refused = producer
        .enqueue(nops(1).remove(0))
        .await
        .expect_err("no library, and this user may not load it");
    assert!(
        matches!(&refused, Error::Config(m) if m.message().contains("workq functions")),
        "{refused}"
    );
    // The operator's way of loading it (workers load it too when they start).
    admin(
        &redis,
        &["FUNCTION".into(), "LOAD".into(), scripts().library().into()],
    )
    .await
    .unwrap();

    let workers: Vec<_> = (0..2)
        .map(|_| spawn_worker(&worker_url, "default", 8, 5_000, 5_000, &[]).0)
        .collect();
    let mut watch = producer.watch_queue("default").await.unwrap();
    let ids: Vec<WorkId> = producer
        .enqueue_many(nops(50))
        .await
        .expect("the restricted producer enqueues")
        .iter()
        .map(|e| e.id)
        .collect();
    let mut pending: HashSet<WorkId> = ids.iter().copied().collect();
    while !pending.is_empty() {
        let ev = tokio::time::timeout(HANG, watch.next())
            .await
            .expect("the restricted workers did not drain the queue")
            .unwrap();
        if ev.state == WorkState::Succeeded {
            pending.remove(&ev.id);
        }
    }
    for info in producer.get_work_infos(&ids).await.unwrap() {
        assert_eq!(info.expect("kept").state, WorkState::Succeeded);
    }

    // The operator reads stats and infos, and may write nothing.
    let operator = WorkManager::connect(&operator_url)
        .await
        .expect("the operator connects");
    let stats = operator.queue_stats("default").await.expect("stats");
    assert_eq!(stats.counters.get("succeeded"), Some(&50), "{stats:?}");
    assert_eq!((stats.enqueued, stats.finished), (0, 50));
    let info = operator.get_work_info(ids[0]).await.expect("info");
    assert_eq!(info.map(|i| i.state), Some(WorkState::Succeeded));
    let e = operator
        .enqueue(nops(1).remove(0))
        .await
        .expect_err("the operator may not write");
    assert!(e.to_string().contains("no permissions"), "{e}");

    // The rest of the producer's API, as the same user: unique work in a chain, queries,
    // a watch by tag, cancel by tag and prune.
    let chain = producer
        .begin_unique_work("nightly", ExistingWorkPolicy::Keep, nops(1))
        .then(nops(1))
        .enqueue()
        .await
        .expect("a unique chain");
    assert_eq!(chain.status, GraphStatus::Enqueued);
    let mut pending: HashSet<WorkId> = chain.ids.iter().copied().collect();
    while !pending.is_empty() {
        let ev = tokio::time::timeout(HANG, watch.next())
            .await
            .expect("the chain did not run")
            .unwrap();
        if ev.state == WorkState::Succeeded {
            pending.remove(&ev.id);
        }
    }
    let by_name = producer
        .get_work_infos_for_unique_work("nightly")
        .await
        .expect("by unique name");
    assert_eq!(by_name.len(), 2);
    let succeeded = producer
        .get_work_infos_by_query(&WorkQuery::from_states([WorkState::Succeeded]))
        .await
        .expect("a query by state");
    assert_eq!(succeeded.len(), 52);
    let mut tagged = producer
        .watch(WatchTarget::Tag("later".into()))
        .await
        .expect("a watch by tag");
    let later = OneTimeWorkRequest::builder(Nop { i: 99 })
        .initial_delay(std::time::Duration::from_secs(3600))
        .tag("later")
        .build()
        .unwrap();
    let later = producer.enqueue(later).await.unwrap().id;
    assert_eq!(next_item(&mut tagged).await.id, later);
    let cancelled = producer
        .cancel_all_work_by_tag("later")
        .await
        .expect("cancel by tag");
    assert_eq!(cancelled.cancelled, 1);
    assert_eq!(next_item(&mut tagged).await.state, WorkState::Cancelled);
    assert_eq!(producer.prune_work().await.expect("prune"), 53);

    // Nor may the producer touch other keys or the functions.
    let mut con = producer.connection().await.unwrap();
    let e = redis::cmd("SET")
        .arg("other:key")
        .arg(1)
        .query_async::<()>(&mut con)
        .await
        .expect_err("a key outside workq:*");
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    let e = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query_async::<()>(&mut con)
        .await
        .expect_err("FUNCTION FLUSH");
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    drop(workers);
}

/// A log subscriber for this thread that keeps what it prints.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Buf(Arc::clone(&buf));
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(sub))
}

#[tokio::test]
async fn a_producer_warns_at_connect_when_redis_would_evict_or_has_aof_off_if_it_may_read_info() {
    let redis = RedisServer::start(); // AOF off
    let [producer_url, ..] = acl_users(&redis).await;
    admin(
        &redis,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"].map(String::from),
    )
    .await
    .unwrap();

    let (logs, guard) = capture_logs();
    let wm = WorkManager::connect(&redis.url()).await.expect("connect");
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("maxmemory-policy allkeys-lru"), "{text}");
    assert!(text.contains("AOF off"), "{text}");
    drop((wm, guard));

    // The README's producer may not read INFO: it connects, and skips the check quietly.
    let (logs, guard) = capture_logs();
    WorkManager::connect(&producer_url)
        .await
        .expect("connect without INFO");
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.is_empty(), "{text}");
    drop(guard);
}

/// `INFO memory`'s `used_memory`.
async fn used_memory(redis: &RedisServer) -> u64 {
    let info = admin(redis, &["INFO".into(), "memory".into()])
        .await
        .unwrap();
    let info: String = redis::from_redis_value(info).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

#[tokio::test]
async fn at_maxmemory_a_producer_connects_and_its_lookups_and_stats_answer() {
    let ctx = TestContext::without_watch().await;
    let reqs: Vec<_> = (0..20)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .initial_delay(std::time::Duration::from_secs(3600))
                .tag("before-full")
                .build()
                .unwrap()
        })
        .collect();
    let ids: Vec<WorkId> = ctx
        .wm
        .enqueue_many(reqs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();

    // Fill Redis up to a limit a little above what it uses (noeviction: writes are then
    // refused with OOM), then set the limit a little under what the data now takes, so
    // that it stays full whatever the connections' buffers take meanwhile.
    let limit = used_memory(&ctx.redis).await + (1 << 20);
    admin(
        &ctx.redis,
        &[
            "CONFIG".into(),
            "SET".into(),
            "maxmemory".into(),
            limit.to_string(),
        ],
    )
    .await
    .unwrap();
    let mut con = ctx
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let filler = "x".repeat(1024);
    let mut full = false;
    for i in 0..100_000 {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query_async(&mut con)
            .await;
        if let Err(e) = set {
            assert_eq!(e.code(), Some("OOM"), "{e}");
            full = true;
            break;
        }
    }
    assert!(full, "Redis never reached maxmemory");
    let under = used_memory(&ctx.redis).await - (64 << 10);
    admin(
        &ctx.redis,
        &[
            "CONFIG".into(),
            "SET".into(),
            "maxmemory".into(),
            under.to_string(),
        ],
    )
    .await
    .unwrap();
    let refused = ctx
        .wm
        .enqueue(nops(1).remove(0))
        .await
        .expect_err("an enqueue at maxmemory");
    assert!(refused.to_string().contains("OOM"), "{refused}");

    let late = WorkManager::connect(&ctx.url())
        .await
        .expect("a producer connects at maxmemory");
    let stats = late
        .queue_stats("default")
        .await
        .expect("stats at maxmemory");
    assert_eq!(stats.enqueued, 20, "{stats:?}");
    let info = late
        .get_work_info(ids[0])
        .await
        .expect("a lookup at maxmemory")
        .expect("the job");
    assert_eq!(info.state, WorkState::Enqueued);
    assert!(info.next_due_at.is_some(), "{info:?}");
    let infos = late
        .get_work_infos(&ids)
        .await
        .expect("lookups at maxmemory");
    assert!(infos.iter().all(|i| i.is_some()), "{infos:?}");
    let tagged = late
        .get_work_infos_by_query(&WorkQuery::from_tags(["before-full"]))
        .await
        .expect("a query at maxmemory");
    assert_eq!(tagged.len(), 20);
}
