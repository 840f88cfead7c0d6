use redis::AsyncCommands;
use workq_producer::{Data, OneTimeWorkRequest, WorkState};
use workq_tests::jobs::Sleep;

use crate::fixture::TestContext;
use crate::support::*;

#[tokio::test]
async fn a_poison_payload_fails_alone_with_a_reason_and_an_unknown_kind_waits_unclaimed() {
    let mut ctx = TestContext::new().await;
    // 0xc1 is never valid MessagePack.
    let poison = OneTimeWorkRequest::builder_raw("sleep", Data::from_bytes(vec![0xc1, 0xc1]))
        .max_attempts(5)
        .build()
        .unwrap();
    let unknown = OneTimeWorkRequest::builder_raw("teleport", Data::encode(&1).unwrap())
        .max_attempts(5)
        .build()
        .unwrap();
    let good = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    // Enqueued together before any worker runs, so one claim takes them as a batch.
    ctx.wm
        .enqueue_many(vec![poison.clone(), unknown.clone(), good.clone()])
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b.concurrency(8));

    let good = ctx.finished(good.id()).await;
    assert_eq!(good.state, WorkState::Succeeded);
    let poison = ctx.finished(poison.id()).await;
    assert_eq!(poison.state, WorkState::Failed);
    assert_eq!(
        poison.run_attempt_count, 1,
        "a poison payload must not loop"
    );
    let reason = poison.last_error.unwrap();
    assert!(
        reason.contains("undecodable input for kind 'sleep'"),
        "{reason}"
    );
    // No worker runs "teleport": it waits, no attempt spent, for one that does.
    worker.stop().await;
    let unknown = ctx.wm.get_work_info(unknown.id()).await.unwrap().unwrap();
    assert_eq!(unknown.state, WorkState::Enqueued, "{unknown:?}");
    assert_eq!(unknown.run_attempt_count, 0);
    assert_eq!(
        ctx.wm.queue_stats("default").await.unwrap().unsatisfiable,
        1
    );
}

#[tokio::test]
async fn a_record_that_is_not_workq_format_fails_alone() {
    let mut ctx = TestContext::new().await;
    let good = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    ctx.wm.enqueue(good.clone()).await.unwrap();
    // Another program wrote garbage straight into the queue's keys.
    let garbage_id = workq_producer::WorkId::new();
    {
        let mut con = ctx.wm.connection().await.unwrap();
        let _: () = con
            .hset(
                "workq:{default}:jobs",
                garbage_id.to_string(),
                b"\xc1not msgpack".as_slice(),
            )
            .await
            .unwrap();
        let _: () = con
            .zadd("workq:{default}:due", garbage_id.to_string(), 0)
            .await
            .unwrap();
    }
    let worker = InProcess::start(&ctx.url(), "default", |b| b);
    let good = ctx.finished(good.id()).await;
    assert_eq!(good.state, WorkState::Succeeded);
    let bad = ctx.finished(garbage_id).await;
    assert_eq!(bad.state, WorkState::Failed);
    assert!(
        bad.last_error
            .as_deref()
            .unwrap()
            .contains("undecodable record header"),
        "{:?}",
        bad.last_error
    );
    // The original bytes are kept for inspection.
    assert_eq!(bad.input.as_bytes(), b"\xc1not msgpack");
    worker.stop().await;
}

#[tokio::test]
async fn an_undecodable_record_is_an_error_alone_and_hides_nothing_among_others() {
    let ctx = TestContext::without_watch().await;
    let good = OneTimeWorkRequest::builder(Sleep::ms(1))
        .tag("batch")
        .initial_delay(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(good.clone()).await.unwrap();
    // Another program wrote garbage under an id that carries the same tag.
    let garbage_id = workq_producer::WorkId::new();
    {
        let mut con = ctx.wm.connection().await.unwrap();
        let _: () = con
            .hset(
                "workq:{default}:jobs",
                garbage_id.to_string(),
                b"\xc1not msgpack".as_slice(),
            )
            .await
            .unwrap();
        let _: () = con
            .sadd("workq:{default}:tag:batch", garbage_id.to_string())
            .await
            .unwrap();
    }
    let err = ctx.wm.get_work_info(garbage_id).await.unwrap_err();
    assert!(
        matches!(err, workq_producer::Error::Record(_))
            && err.to_string().contains(&garbage_id.to_string()),
        "{err}"
    );
    let tagged: Vec<_> = ctx
        .wm
        .get_work_infos_by_tag("batch")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(tagged, [good.id()]);
    let both = ctx
        .wm
        .get_work_infos(&[good.id(), garbage_id])
        .await
        .unwrap();
    assert_eq!(
        both.iter()
            .map(|i| i.as_ref().map(|i| i.id))
            .collect::<Vec<_>>(),
        [Some(good.id()), None]
    );
}
