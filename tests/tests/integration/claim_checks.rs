//! What a claim does with jobs it should not run: a bad job (written by hand past the
//! enqueue checks) fails alone and its batch-mates run on their first attempt; a job of a
//! kind the claiming worker does not run waits for a worker that does, spending no attempt;
//! a record in a state a claim does not expect fails with a reason.

use std::collections::HashSet;
use std::time::Duration;

use redis::AsyncCommands;
use workq_common::internal::record::{Ext, Record};
use workq_producer::{OneTimeWorkRequest, WorkId, WorkManager, WorkState};
use workq_tests::jobs::{Echo, Nop, NopWorker, Sleep, SleepWorker};
use workq_tests::HANG;
use workq_worker::WorkerRuntime;

use crate::fixture::TestContext;
use crate::support::*;

fn nop_record() -> Vec<u8> {
    crate::wire_checks::nop_record(&Ext::default())
}

/// Writes a job straight into the queue's keys, due long ago, as a program that bypasses
/// the enqueue script would.
async fn write_by_hand(wm: &WorkManager, id: &[u8], rec: &[u8]) {
    let mut con = wm.connection().await.unwrap();
    let _: () = con.hset("workq:{default}:jobs", id, rec).await.unwrap();
    let _: () = con.zadd("workq:{default}:due", id, 1).await.unwrap();
}

async fn raw_record(wm: &WorkManager, id: &[u8]) -> Record {
    let mut con = wm.connection().await.unwrap();
    let rec: Vec<u8> = con.hget("workq:{default}:jobs", id).await.unwrap();
    Record::decode(rec).unwrap()
}

#[tokio::test]
async fn a_bad_id_kind_record_input_or_output_fails_alone_and_its_batch_mates_run_first_time() {
    let mut ctx = TestContext::new().await;
    let good: Vec<OneTimeWorkRequest> = (0..20)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    ctx.wm.enqueue_many(good.clone()).await.unwrap();
    // Ids with bytes outside the id alphabet, which the claim reply and the events'
    // comma-separated lists cannot carry.
    let bad_ids: [&[u8]; 4] = [b"01BAD\0ID", b"\xff\xfeBAD", b"01BAD\nID", b"01BAD,ID"];
    for id in bad_ids {
        write_by_hand(&ctx.wm, id, &nop_record()).await;
    }
    // A kind no worker can have (not UTF-8), garbage input, and an output over the limit.
    let bad_kind = WorkId::new();
    let mut rec = nop_record();
    rec[14..17].copy_from_slice(b"\xff\xfe\xfd");
    write_by_hand(&ctx.wm, bad_kind.to_string().as_bytes(), &rec).await;
    let bad_input =
        OneTimeWorkRequest::builder_raw("nop", workq_common::Data::from_bytes(vec![0xc1]))
            .build()
            .unwrap();
    let mut big = workq_tests::jobs::Map::new();
    big.insert("pad".into(), serde_json::Value::String("x".repeat(4096)));
    let big_output = OneTimeWorkRequest::builder(Echo(big)).build().unwrap();
    ctx.wm
        .enqueue_many(vec![bad_input.clone(), big_output.clone()])
        .await
        .unwrap();

    // One claim takes them all (concurrency above their number).
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.concurrency(64).max_output(1024)
    });
    for r in &good {
        let info = ctx.finished(r.id()).await;
        assert_eq!(info.state, WorkState::Succeeded, "{info:?}");
        assert_eq!(
            info.run_attempt_count, 1,
            "a good job paid for a bad one: {info:?}"
        );
    }
    for id in bad_ids {
        let rec = raw_record(&ctx.wm, id).await;
        assert_eq!(rec.header.state, WorkState::Failed, "{id:?}");
        let reason = rec.header.ext.error.unwrap_or_default();
        assert!(reason.contains("malformed job id"), "{id:?}: {reason}");
    }
    // (Its kind is not UTF-8, so only the raw record can be read: state and reason.)
    let rec: Vec<u8> = {
        let mut con = ctx.wm.connection().await.unwrap();
        con.hget("workq:{default}:jobs", bad_kind.to_string())
            .await
            .unwrap()
    };
    assert_eq!(rec[2], 3, "FAILED");
    assert!(rec.windows(12).any(|w| w == b"invalid kind"), "{rec:?}");
    for (r, why) in [(&bad_input, "undecodable input"), (&big_output, "output")] {
        let info = ctx.finished(r.id()).await;
        assert_eq!(info.state, WorkState::Failed, "{info:?}");
        assert_eq!(info.run_attempt_count, 1);
        assert!(
            info.last_error.as_deref().unwrap_or("").contains(why),
            "{info:?}"
        );
    }
    worker.stop().await;
}

#[tokio::test]
async fn a_record_in_a_state_no_claim_expects_fails_with_a_reason() {
    let mut ctx = TestContext::new().await;
    // RUNNING (attempt 1) with nobody holding it, and BLOCKED on nothing, both in a lane.
    let running = WorkId::new();
    let mut rec = nop_record();
    rec[2] = 1;
    rec[3] = 1;
    write_by_hand(&ctx.wm, running.to_string().as_bytes(), &rec).await;
    let blocked = WorkId::new();
    let mut rec = nop_record();
    rec[2] = 5;
    write_by_hand(&ctx.wm, blocked.to_string().as_bytes(), &rec).await;
    let good = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    ctx.wm.enqueue(good.clone()).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    assert_eq!(ctx.finished(good.id()).await.state, WorkState::Succeeded);
    for (id, why) in [
        (running, "RUNNING in a due lane with no worker"),
        (blocked, "BLOCKED in a due lane"),
    ] {
        let info = ctx.finished(id).await;
        assert_eq!(info.state, WorkState::Failed, "{info:?}");
        assert!(
            info.last_error.as_deref().unwrap_or("").contains(why),
            "{info:?}"
        );
    }
    worker.stop().await;
}

#[tokio::test]
async fn in_a_rolling_deploy_new_kinds_wait_for_new_workers_and_no_attempt_is_spent() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    let a: Vec<OneTimeWorkRequest> = (0..30)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    let b: Vec<OneTimeWorkRequest> = (0..30)
        .map(|_| {
            OneTimeWorkRequest::builder(Sleep::ms(1))
                .max_attempts(1)
                .build()
                .unwrap()
        })
        .collect();
    ctx.wm
        .enqueue_many(a.iter().chain(&b).cloned())
        .await
        .unwrap();

    // Version 1 runs kind A ("nop") only.
    let v1 = InProcess::run(
        WorkerRuntime::builder(&url)
            .queue("default")
            .worker_id("v1")
            .register(NopWorker)
            .concurrency(8),
    );
    for r in &a {
        assert_eq!(ctx.finished(r.id()).await.state, WorkState::Succeeded);
    }
    // Every B job was looked at by v1 and passed on: waiting, unsatisfiable, no attempt.
    tokio::time::timeout(HANG, async {
        while ctx.wm.queue_stats("default").await.unwrap().unsatisfiable < 30 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("B jobs never showed as unsatisfiable");
    let ids: Vec<WorkId> = b.iter().map(OneTimeWorkRequest::id).collect();
    for info in ctx.wm.get_work_infos(&ids).await.unwrap() {
        let info = info.unwrap();
        assert_eq!(info.state, WorkState::Enqueued, "{info:?}");
        assert_eq!(info.run_attempt_count, 0, "{info:?}");
        assert!(info.next_due_at.is_some(), "B waits in a lane: {info:?}");
    }

    // Version 2 runs A and B: it takes every B job, each on its first attempt.
    let v2 = InProcess::run(
        WorkerRuntime::builder(&url)
            .queue("default")
            .worker_id("v2")
            .register(NopWorker)
            .register(SleepWorker)
            .concurrency(8),
    );
    let mut ran: HashSet<WorkId> = HashSet::new();
    for r in &b {
        let info = ctx.finished(r.id()).await;
        assert_eq!(info.state, WorkState::Succeeded, "{info:?}");
        assert_eq!(info.run_attempt_count, 1, "{info:?}");
        assert_eq!(info.worker.as_deref(), Some("v2"), "{info:?}");
        ran.insert(info.id);
    }
    assert_eq!(ran.len(), 30);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.unsatisfiable, 0, "{stats:?}");
    assert_eq!(stats.counters.get("failed"), None, "{stats:?}");
    v1.stop().await;
    v2.stop().await;
}

#[tokio::test]
async fn a_full_redis_with_default_retention_makes_room_by_itself_once_drained() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    {
        let mut con = ctx.wm.connection().await.unwrap();
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut con)
            .await
            .unwrap();
        let used: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(used + (4 << 20))
            .query_async(&mut con)
            .await
            .unwrap();
    }
    // Fill it: enqueue until Redis refuses (OOM).
    let mut ids: Vec<WorkId> = Vec::new();
    let mut refused = None;
    for round in 0..200u64 {
        let reqs: Vec<_> = (0..500)
            .map(|i| {
                OneTimeWorkRequest::builder(Nop { i: round * 500 + i })
                    .build()
                    .unwrap()
            })
            .collect();
        match ctx.wm.enqueue_many(reqs.clone()).await {
            Ok(_) => ids.extend(reqs.iter().map(OneTimeWorkRequest::id)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("Redis never filled up");
    assert!(refused.to_string().contains("OOM"), "{refused}");
    assert!(
        refused.is_transient(),
        "OOM clears when memory is freed: {refused}"
    );

    // Default settings: successes retained an hour. Drain everything that was stored.
    let worker = InProcess::start(&url, "default", |b| b.concurrency(50));
    let mut pending: HashSet<WorkId> = ids.iter().copied().collect();
    while !pending.is_empty() {
        let ev = tokio::time::timeout(HANG, ctx.watch().next())
            .await
            .expect("the queue did not drain")
            .unwrap();
        if ev.state == WorkState::Succeeded {
            pending.remove(&ev.id);
        }
    }
    // With no operator: new work is accepted again (once the workers have pruned the
    // oldest retained successes).
    let again = OneTimeWorkRequest::builder(Nop { i: u64::MAX })
        .build()
        .unwrap();
    tokio::time::timeout(HANG, async {
        loop {
            match ctx.wm.enqueue(again.clone()).await {
                Ok(_) => break,
                Err(e) if e.to_string().contains("OOM") => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("Redis stayed full after the drain");
    assert_eq!(ctx.finished(again.id()).await.state, WorkState::Succeeded);
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert!(
        stats.counters.get("pruned_early").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    worker.stop().await;
}
