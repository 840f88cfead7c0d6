//! Redis Sentinel (`redis+sentinel://`): a producer and a worker that know only the
//! sentinels drain a queue through a forced failover mid-drain, without a restart. One
//! primary, one replica, three sentinels (the `SentinelSetup` fixture).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use workq_producer::{OneTimeWorkRequest, WorkId, WorkManager, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::{SentinelSetup, HANG};

use crate::support::InProcess;

fn sentinel_url(s: &SentinelSetup) -> String {
    let hosts: Vec<String> = s
        .sentinel_ports()
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    format!("redis+sentinel://{}/{}", hosts.join(","), s.master_name())
}

/// Enqueues `reqs`, retrying while the failover makes calls fail transiently (a client
/// retries those: enqueue is idempotent by id). Returns how many calls failed so.
async fn enqueue_through(wm: &WorkManager, reqs: Vec<OneTimeWorkRequest>) -> usize {
    let deadline = Instant::now() + HANG * 3;
    let mut transient = 0;
    loop {
        match wm.enqueue_many(reqs.clone()).await {
            Ok(_) => return transient,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                transient += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("enqueue through the failover: {e}"),
        }
    }
}

async fn succeeded(wm: &WorkManager) -> u64 {
    loop {
        match wm.queue_stats("default").await {
            Ok(s) => return s.counters.get("succeeded").copied().unwrap_or(0),
            Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("queue_stats: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_and_a_worker_follow_a_forced_failover_mid_drain_and_lose_nothing() {
    const BEFORE: u64 = 3000;
    const AFTER: u64 = 500;
    let mut setup = tokio::task::block_in_place(SentinelSetup::start);
    let url = sentinel_url(&setup);
    let first = setup.primary();
    let wm = WorkManager::connect(&url).await.unwrap();
    let mut ids: Vec<WorkId> = Vec::new();
    let reqs: Vec<OneTimeWorkRequest> = (0..BEFORE)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    ids.extend(reqs.iter().map(|r| r.id()));
    enqueue_through(&wm, reqs).await;
    let worker = InProcess::start(&url, "default", |b| {
        b.lease(Duration::from_secs(3)).concurrency(8)
    });
    // Mid-drain: some done, most not.
    let deadline = Instant::now() + HANG * 3;
    while succeeded(&wm).await < BEFORE / 10 {
        assert!(Instant::now() < deadline, "the drain never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let at_failover = succeeded(&wm).await;
    let second = tokio::task::block_in_place(|| setup.failover());
    assert_ne!(first, second);
    // The same producer enqueues on the new primary, without a restart.
    let reqs: Vec<OneTimeWorkRequest> = (BEFORE..BEFORE + AFTER)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    ids.extend(reqs.iter().map(|r| r.id()));
    let retried = enqueue_through(&wm, reqs).await;
    // Every job, from before and after, ends SUCCEEDED on the new primary.
    let deadline = Instant::now() + HANG * 6;
    let mut pending: HashSet<WorkId> = ids.iter().copied().collect();
    let mut lost = 0;
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} jobs never succeeded (e.g. {:?})",
            pending.len(),
            pending.iter().next()
        );
        let batch: Vec<WorkId> = pending.iter().copied().take(500).collect();
        for id in batch {
            match wm.get_work_info(id).await {
                Ok(Some(i)) if i.state == WorkState::Succeeded => {
                    pending.remove(&id);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    // An acknowledged enqueue the failover lost.
                    lost += 1;
                    pending.remove(&id);
                }
                Err(e) if e.is_transient() => {}
                Err(e) => panic!("get_work_info: {e}"),
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eprintln!(
        "sentinel failover {first} -> {second} after {at_failover} of {BEFORE} jobs: \
         {lost} acknowledged enqueues lost, {retried} enqueue calls retried after a transient error"
    );
    // A forced failover waits for the replica to catch up (writes are paused meanwhile):
    // nothing acknowledged is lost.
    assert_eq!(lost, 0);
    worker.stop().await;
}
