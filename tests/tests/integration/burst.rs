use std::time::{Duration, UNIX_EPOCH};

use workq_producer::{OneTimeWorkRequest, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::HANG;

use crate::fixture::TestContext;
use crate::support::*;

/// apalis-redis 1.0 breaks past ~8,000 due jobs (Lua unpack of an unbounded range).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_jobs_due_at_the_same_moment_all_drain() {
    const N: u64 = 20_000;
    let ctx = TestContext::without_watch().await;
    let due = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let reqs = (0..N).map(|i| {
        OneTimeWorkRequest::builder(Nop { i })
            .run_at(due)
            .build()
            .unwrap()
    });
    let out = ctx.wm.enqueue_many(reqs).await.unwrap();
    assert_eq!(out.len() as u64, N);
    {
        let mut con = ctx.wm.connection().await.unwrap();
        let same: u64 = redis::cmd("ZCOUNT")
            .arg("workq:{default}:due")
            .arg(1_700_000_000_000u64)
            .arg(1_700_000_000_000u64)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(same, N, "all due at one moment");
    }
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let workers = [
        InProcess::start(&ctx.url(), "default", |b| b.concurrency(100)),
        InProcess::start(&ctx.url(), "default", |b| b.concurrency(100)),
    ];
    let mut done = 0;
    while done < N {
        let ev = tokio::time::timeout(HANG, watch.next())
            .await
            .expect("drain stalled")
            .unwrap();
        if ev.state == WorkState::Succeeded {
            done += 1;
        }
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.enqueued, stats.running), (0, 0));
    assert_eq!(stats.counters.get("succeeded"), Some(&N));
    assert_eq!(stats.counters.get("claimed"), Some(&N), "each job ran once");
    for w in workers {
        w.stop().await;
    }
}
