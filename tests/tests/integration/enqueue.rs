use std::time::Duration;

use workq_producer::{EnqueueStatus, Error, OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::{Nop, Sleep};
use workq_tests::RedisServer;

use crate::fixture::TestContext;
use crate::support::*;

#[tokio::test]
async fn enqueueing_an_existing_id_changes_nothing_and_says_so() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let first = ctx.wm.enqueue(req.clone()).await.unwrap();
    assert_eq!(first.status, EnqueueStatus::Enqueued);
    let before = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();

    // The same id with other settings: nothing changes.
    let again = OneTimeWorkRequest::builder(Nop { i: 2 })
        .id(req.id())
        .tag("other")
        .build()
        .unwrap();
    let second = ctx.wm.enqueue(again).await.unwrap();
    assert_eq!(second.status, EnqueueStatus::Existed);
    let after = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(before, after);
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 1);
}

#[tokio::test]
async fn an_oversized_payload_is_refused_with_its_size_and_the_limit() {
    let redis = RedisServer::start();
    let wm = WorkManager::builder(&redis.url())
        .max_payload(1024)
        .connect()
        .await
        .unwrap();
    let small = OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap();
    let big_input = workq_producer::Data::encode(&vec![7u8; 4000]).unwrap();
    let size = big_input.len();
    let big = OneTimeWorkRequest::builder_raw("nop", big_input)
        .build()
        .unwrap();
    let err = wm.enqueue_many(vec![small.clone(), big]).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { size: s, limit: 1024, .. } if s == size));
    let msg = err.to_string();
    assert!(
        msg.contains(&size.to_string()) && msg.contains("1024"),
        "{msg}"
    );
    // Nothing of the batch was stored.
    assert!(wm.get_work_info(small.id()).await.unwrap().is_none());
}

#[tokio::test]
async fn enqueued_time_and_due_time_come_from_redis() {
    let ctx = TestContext::without_watch().await;
    let before = redis_now(&ctx.wm).await;
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(Duration::from_secs(60))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let after = redis_now(&ctx.wm).await;
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    let enq = ms(info.enqueued_at);
    assert!(
        before <= enq && enq <= after,
        "{before} <= {enq} <= {after}"
    );
    assert_eq!(ms(info.next_due_at.unwrap()), enq + 60_000);
    assert_eq!(info.state, WorkState::Enqueued);
    assert_eq!(info.run_attempt_count, 0);
}

#[tokio::test]
async fn many_requests_across_queues_enqueue_in_order_and_query_by_tag() {
    let ctx = TestContext::without_watch().await;
    let reqs: Vec<_> = (0..2500)
        .map(|i| {
            OneTimeWorkRequest::builder(Sleep::ms(1))
                .queue(if i % 2 == 0 { "even" } else { "odd" })
                .tag(if i % 5 == 0 { "fives" } else { "rest" })
                .initial_delay(Duration::from_secs(600))
                .build()
                .unwrap()
        })
        .collect();
    let out = ctx.wm.enqueue_many(reqs.clone()).await.unwrap();
    assert_eq!(out.len(), reqs.len());
    for (r, o) in reqs.iter().zip(&out) {
        assert_eq!((r.id(), o.status), (o.id, EnqueueStatus::Enqueued));
    }
    let fives = ctx.wm.get_work_infos_by_tag("fives").await.unwrap();
    assert_eq!(fives.len(), 500);
    assert!(fives.iter().all(|i| i.tags == ["fives"]));
    assert_eq!(ctx.wm.queues().await.unwrap(), ["even", "odd"]);
    assert_eq!(ctx.wm.queue_stats("even").await.unwrap().enqueued, 1250);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_anything_is_sent() {
    let bad = [
        OneTimeWorkRequest::builder(Nop { i: 1 })
            .max_attempts(0)
            .build(),
        OneTimeWorkRequest::builder(Nop { i: 1 })
            .queue("a{b}")
            .build(),
        OneTimeWorkRequest::builder(Nop { i: 1 }).tag("").build(),
        OneTimeWorkRequest::builder(Nop { i: 1 })
            .backoff(workq_producer::BackoffPolicy::Linear, Duration::ZERO)
            .build(),
    ];
    for r in bad {
        assert!(matches!(r, Err(Error::InvalidRequest(_))), "{r:?}");
    }
}
