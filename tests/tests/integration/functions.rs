//! The scripts live in Redis as one function library: loaded by whoever finds it missing,
//! and flagged so that a Redis at `maxmemory` refuses new work but keeps draining.

use std::collections::HashSet;

use workq_common::internal::record;
use workq_common::internal::scripts::scripts;
use workq_producer::{OneTimeWorkRequest, WorkId, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::{RedisServer, HANG};

use crate::fixture::TestContext;
use crate::support::*;

async fn libraries(redis: &RedisServer) -> Vec<String> {
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // One array per library: name, value, name, value, ...
    let list: Vec<Vec<redis::Value>> = redis::cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut con)
        .await
        .unwrap();
    list.iter()
        .filter_map(|fields| {
            let at = fields.iter().position(
                |v| matches!(v, redis::Value::BulkString(b) if b.as_slice() == b"library_name"),
            )?;
            match fields.get(at + 1)? {
                redis::Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                _ => None,
            }
        })
        .collect()
}

#[tokio::test]
async fn the_first_call_loads_the_library_and_a_redis_that_lost_it_gets_it_back_on_the_next_call() {
    let redis = RedisServer::start();
    let url = redis.url();
    assert!(libraries(&redis).await.is_empty());
    // Connecting loads nothing (a producer may not be allowed to, and a full Redis refuses
    // it): the first call that needs the library does.
    let wm = manager(&url).await;
    assert!(libraries(&redis).await.is_empty());
    let name = scripts().library_name().to_owned();
    assert!(name.starts_with("workq_"), "{name}");

    // A new Redis, or one restarted without persistence (or flushed), has no functions:
    // the producer's next call loads them, and so does the worker's next claim.
    let mut watch = wm.watch_queue("default").await.unwrap();
    let id = wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap())
        .await
        .unwrap()
        .id;
    assert_eq!(libraries(&redis).await, vec![name.clone()]);
    admin(&redis, &["FUNCTION", "FLUSH"]).await;
    let worker = InProcess::start(&url, "default", |b| b);
    let info = finished(&wm, &mut watch, id).await;
    assert_eq!(info.state, WorkState::Succeeded);
    assert_eq!(libraries(&redis).await, vec![name]);
    worker.stop().await;
}

#[tokio::test]
async fn at_maxmemory_enqueue_is_refused_and_the_queued_work_still_drains() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    let reqs: Vec<_> = (0..200)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    let ids: Vec<_> = ctx
        .wm
        .enqueue_many(reqs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();

    // Below what Redis already uses: with noeviction, every write that could grow the
    // data set is refused from now on.
    admin(&ctx.redis, &["CONFIG", "SET", "maxmemory", "1"]).await;
    let refused = ctx
        .wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 999 }).build().unwrap())
        .await
        .expect_err("an enqueue past maxmemory");
    assert!(refused.to_string().contains("OOM"), "{refused}");

    // Every job is claimed and recorded SUCCEEDED while Redis stays at maxmemory (the
    // events say so).
    let worker = InProcess::start(&url, "default", |b| b.concurrency(16));
    let mut pending: HashSet<WorkId> = ids.iter().copied().collect();
    while !pending.is_empty() {
        let ev = tokio::time::timeout(HANG, ctx.watch().next())
            .await
            .expect("the queued jobs did not drain at maxmemory")
            .unwrap();
        if ev.state == WorkState::Succeeded {
            pending.remove(&ev.id);
        }
    }
    worker.stop().await;
    admin(&ctx.redis, &["CONFIG", "SET", "maxmemory", "0"]).await;
    // Kept SUCCEEDED, or pruned ahead of its retention to make room (memory pressure).
    for info in ctx
        .wm
        .get_work_infos(&ids)
        .await
        .unwrap()
        .into_iter()
        .flatten()
    {
        assert_eq!(info.state, WorkState::Succeeded);
    }
    let counters = ctx.wm.queue_stats("default").await.unwrap().counters;
    assert_eq!(counters.get("succeeded"), Some(&200), "{counters:?}");
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
}

#[tokio::test]
async fn a_producer_in_another_language_enqueues_through_fcall_whatever_digits_its_due_times_carry()
{
    let ctx = TestContext::without_watch().await;
    let now = redis_now(&ctx.wm).await;
    let input = workq_common::Data::encode(&Nop { i: 1 }).unwrap();
    let rec = record::encode_new(
        WorkState::Enqueued,
        "nop",
        &record::Ext::default(),
        input.as_bytes(),
    )
    .unwrap();
    // Absolute due times as another client might write them: plain digits, and with the
    // spaces and exponent that Lua's tonumber reads but ZADD does not.
    let dues = [
        format!("{}", now + 60_000),
        format!(" {} ", now + 60_000),
        "1.8e12".to_owned(),
    ];
    let ids: Vec<WorkId> = dues.iter().map(|_| WorkId::new()).collect();
    // Loaded as docs/wire-format.md says (`workq functions | redis-cli -x FUNCTION LOAD`).
    let library = scripts().library();
    let mut con = ctx
        .redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(library)
        .query_async(&mut con)
        .await
        .unwrap();
    let mut cmd = redis::cmd("FCALL");
    cmd.arg(format!("{}_enqueue", scripts().library_name()))
        .arg(1)
        .arg("workq:{default}:")
        .arg(dues.len())
        .arg("");
    for (id, due) in ids.iter().zip(&dues) {
        cmd.arg(id.to_string()).arg(due).arg(&rec);
    }
    let reply: Vec<i64> = cmd.query_async(&mut con).await.unwrap();
    assert_eq!(&reply[1..], &[1, 1, 1]);
    let _: () = redis::cmd("SADD")
        .arg("workq:queues")
        .arg("default")
        .query_async(&mut con)
        .await
        .unwrap();
    for (info, due) in ctx
        .wm
        .get_work_infos(&ids)
        .await
        .unwrap()
        .into_iter()
        .zip(&dues)
    {
        let info = info.expect("stored");
        assert_eq!(info.state, WorkState::Enqueued);
        let want: f64 = due.trim().parse().unwrap();
        let at = info.next_due_at.expect("scheduled in the lane");
        assert_eq!(ms(at) as f64, want, "due {due:?}");
    }
}
