//! Progress (WorkManager's `setProgress`): what a running attempt reports reaches producers
//! through `WorkInfo::progress`, queue events and watch streams, and is cleared when the
//! job finishes; oversized and stale reports are refused. Output is stored with the
//! finished state, and output over the worker's limit fails the job with both sizes.

use std::time::Duration;

use workq_common::internal::record::peek_attempts;
use workq_common::internal::scripts::scripts;
use workq_common::internal::QueueKeys;
use workq_producer::{Data, OneTimeWorkRequest, WatchTarget, WorkState};
use workq_tests::jobs::{gate, Progress, ProgressDone, Step};
use workq_tests::HANG;

use crate::fixture::TestContext;
use crate::support::*;

async fn progress_entries(wm: &workq_producer::WorkManager) -> u64 {
    let mut con = wm.connection().await.unwrap();
    redis::cmd("HLEN")
        .arg(QueueKeys::new("default").unwrap().progress())
        .query_async(&mut con)
        .await
        .unwrap()
}

#[tokio::test]
async fn progress_reaches_producers_in_order_while_running_and_is_cleared_when_done() {
    const STEPS: u32 = 3;
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Progress {
        steps: STEPS,
        oversized: 0,
    })
    .build()
    .unwrap();
    let id = req.id();
    let gate = gate(id);
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    let mut stream = ctx.wm.watch(WatchTarget::Id(id)).await.unwrap();
    ctx.wm.enqueue(req).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b);

    let item = next_item(&mut stream).await;
    assert_eq!((item.state, item.progress), (WorkState::Enqueued, None));
    let item = next_item(&mut stream).await;
    assert_eq!(item.state, WorkState::Running, "claimed");
    for step in 1..=STEPS {
        // The job waits at its gate after each report, so what we read is that report.
        let item = next_item(&mut stream).await;
        assert_eq!(item.state, WorkState::Running);
        let seen: Step = item.progress.expect("a progress item").decode().unwrap();
        assert_eq!(seen, Step { step });
        let i = ctx.info(id).await;
        assert_eq!(i.state, WorkState::Running);
        let read: Step = i.progress.expect("progress in WorkInfo").decode().unwrap();
        assert_eq!(read, Step { step });
        gate.add_permits(1);
    }
    let item = next_item(&mut stream).await;
    assert_eq!(item.state, WorkState::Succeeded);

    // The queue's events carried the same reports, flagged as progress, in order.
    let mut reports = Vec::new();
    loop {
        let e = tokio::time::timeout(HANG, watch.wait_for(|e| e.id == id))
            .await
            .unwrap()
            .unwrap();
        if e.progress {
            assert_eq!(e.state, WorkState::Running);
            reports.push(e.attempt);
        }
        if e.state == WorkState::Succeeded {
            break;
        }
    }
    assert_eq!(reports, vec![1; STEPS as usize], "one event per report");

    let done = ctx.info(id).await;
    assert_eq!(done.state, WorkState::Succeeded);
    assert_eq!(
        done.progress, None,
        "progress is cleared when the job finishes"
    );
    assert_eq!(
        progress_entries(&ctx.wm).await,
        0,
        "nothing left in the progress hash"
    );
    let out: ProgressDone = done.output_as().unwrap().unwrap();
    assert_eq!(out.steps, STEPS);
    worker.stop().await;
}

#[tokio::test]
async fn progress_over_the_limit_is_refused_with_both_sizes() {
    const LIMIT: usize = 100;
    const PAYLOAD: usize = 1000;
    let mut ctx = TestContext::with_worker(|b| b.max_progress(LIMIT)).await;
    let req = OneTimeWorkRequest::builder(Progress {
        steps: 1,
        oversized: PAYLOAD,
    })
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let done = ctx.finished(req.id()).await;
    assert_eq!(done.state, WorkState::Succeeded);
    let out: ProgressDone = done.output_as().unwrap().unwrap();
    let size = Data::encode(&vec![0u8; PAYLOAD]).unwrap().len();
    assert!(out.too_large, "not Error::PayloadTooLarge: {out:?}");
    let msg = out
        .oversized_error
        .expect("the oversized report was refused");
    assert!(
        msg.contains(&format!("{size} bytes")) && msg.contains(&format!("{LIMIT} bytes")),
        "{msg}"
    );
    assert_eq!(progress_entries(&ctx.wm).await, 0);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn progress_from_a_stale_attempt_is_refused() {
    let ctx = TestContext::without_watch().await;
    let keys = QueueKeys::new("default").unwrap();
    let req = OneTimeWorkRequest::builder(Progress {
        steps: 1,
        oversized: 0,
    })
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let id = req.id().to_string();
    let mut con = ctx.wm.connection().await.unwrap();
    let step = |n: u32| Data::encode(&Step { step: n }).unwrap();

    // Not running yet: nobody may report.
    let r = scripts()
        .progress(&mut con, &keys, &id, 0, step(0).as_bytes())
        .await
        .unwrap();
    assert!(!r, "progress accepted for a job that is not running");

    let reply = claim_by_hand(&ctx.wm, "w1", "", Duration::from_secs(30)).await;
    let job = reply.jobs.into_iter().next().expect("claimed");
    let token = peek_attempts(&job.record).unwrap();
    assert_eq!(token, 1);

    for wrong in [token - 1, token + 1] {
        let r = scripts()
            .progress(&mut con, &keys, &id, wrong, step(9).as_bytes())
            .await
            .unwrap();
        assert!(
            !r,
            "progress with token {wrong} accepted; the attempt is {token}"
        );
    }
    assert_eq!(ctx.info(req.id()).await.progress, None);

    let r = scripts()
        .progress(&mut con, &keys, &id, token, step(1).as_bytes())
        .await
        .unwrap();
    assert!(r, "the attempt holding the job may report");
    let seen: Step = ctx.info(req.id()).await.progress.unwrap().decode().unwrap();
    assert_eq!(seen, Step { step: 1 });
}

#[tokio::test]
async fn output_is_stored_with_the_finished_state_and_output_over_the_limit_fails_the_job() {
    use workq_tests::jobs::Echo;
    const LIMIT: usize = 1024;
    let ctx = TestContext::without_watch().await;
    let small = OneTimeWorkRequest::builder(Echo(map(serde_json::json!({"k": "fits"}))))
        .build()
        .unwrap();
    let big =
        OneTimeWorkRequest::builder(Echo(map(serde_json::json!({"k": "x".repeat(2 * LIMIT)}))))
            .build()
            .unwrap();
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm
        .enqueue_many(vec![small.clone(), big.clone()])
        .await
        .unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| b.max_output(LIMIT));

    let done = finished(&ctx.wm, &mut watch, small.id()).await;
    assert_eq!(done.state, WorkState::Succeeded);
    assert_eq!(
        done.output_as::<serde_json::Value>().unwrap(),
        Some(serde_json::json!({"k": "fits"}))
    );

    let refused = finished(&ctx.wm, &mut watch, big.id()).await;
    assert_eq!(refused.state, WorkState::Failed);
    assert_eq!(refused.run_attempt_count, 1, "not retried: {refused:?}");
    let reason = refused.last_error.clone().unwrap_or_default();
    assert!(
        reason.starts_with("output is ")
            && reason.ends_with(&format!("over the limit of {LIMIT} bytes")),
        "{reason}"
    );
    assert_eq!(refused.output_as::<serde_json::Value>().unwrap(), None);
    worker.stop().await;
}

#[tokio::test]
async fn progress_of_an_attempt_handed_back_at_shutdown_is_cleared() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Progress {
        steps: 2,
        oversized: 0,
    })
    .build()
    .unwrap();
    let id = req.id();
    // Never opened: the attempt reports step 1 and waits there until shutdown drops it.
    let _gate = gate(id);
    let mut watch = ctx.wm.watch_queue("default").await.unwrap();
    ctx.wm.enqueue(req).await.unwrap();
    let worker = InProcess::start(&ctx.url(), "default", |b| {
        b.grace_period(Duration::from_millis(100))
    });
    tokio::time::timeout(HANG, watch.wait_for(|e| e.id == id && e.progress))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress_entries(&ctx.wm).await, 1);

    worker.stop().await;
    let i = ctx.info(id).await;
    assert_eq!(
        (i.state, i.last_error.as_deref().is_some()),
        (WorkState::Enqueued, true),
        "handed back: {i:?}"
    );
    assert_eq!(
        progress_entries(&ctx.wm).await,
        0,
        "the handed-back attempt's progress went with it"
    );
}
