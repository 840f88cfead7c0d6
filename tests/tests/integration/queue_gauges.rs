//! The backlog figures of `queue_stats` (what the exporter serves): ready against
//! scheduled, and how long the oldest ready job has waited, across lanes.

use std::time::{Duration, SystemTime};

use workq_producer::OneTimeWorkRequest;
use workq_tests::jobs::Nop;

use crate::fixture::TestContext;

/// Redis' clock, in milliseconds.
async fn redis_now(ctx: &TestContext) -> u64 {
    let mut con = ctx.wm.connection().await.unwrap();
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    s * 1000 + us / 1000
}

#[tokio::test]
async fn ready_scheduled_and_the_oldest_ready_age_count_every_lane() {
    let ctx = TestContext::without_watch().await;
    let nop = |i| OneTimeWorkRequest::builder(Nop { i });
    // Redis runs on this machine: its clock is the one run_at is read from.
    let start = redis_now(&ctx).await;
    let overdue_by = Duration::from_secs(60);
    let reqs = vec![
        nop(1).build().unwrap(),
        nop(2).build().unwrap(),
        nop(3).expedited().build().unwrap(),
        nop(4).require_label("gpu").build().unwrap(),
        // Due a minute ago: the oldest ready job, in a lane of its own.
        nop(5)
            .require_label("cpu")
            .run_at(SystemTime::now() - overdue_by)
            .build()
            .unwrap(),
        nop(6)
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap(),
        nop(7)
            .expedited()
            .initial_delay(Duration::from_secs(3600))
            .build()
            .unwrap(),
    ];
    for r in reqs {
        ctx.wm.enqueue(r).await.unwrap();
    }
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    let after = redis_now(&ctx).await;
    assert_eq!(stats.enqueued, 7, "{stats:?}");
    assert_eq!((stats.ready, stats.scheduled), (5, 2), "{stats:?}");
    let age = stats.oldest_ready_age_ms.expect("a ready job");
    // The age is counted from the overdue job's due time (a minute before it was
    // enqueued), not from the newer jobs'.
    let overdue = u64::try_from(overdue_by.as_millis()).unwrap();
    assert!(age >= overdue, "{age} ms");
    assert!(age <= overdue + (after - start), "{age} ms");
}

#[tokio::test]
async fn a_queue_with_only_scheduled_work_has_no_ready_job_and_no_age() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(req).await.unwrap();
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.ready, stats.scheduled), (0, 1), "{stats:?}");
    assert_eq!(stats.oldest_ready_age_ms, None);
}
