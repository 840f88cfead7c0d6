use std::time::Duration;

use workq_producer::{CancelStatus, OneTimeWorkRequest, WorkState};
use workq_tests::jobs::Sleep;

use crate::fixture::TestContext;

#[tokio::test]
async fn cancelling_an_enqueued_job_cancels_it_at_once() {
    let ctx = TestContext::without_watch().await;
    let req = OneTimeWorkRequest::builder(Sleep::ms(1))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    assert_eq!(
        ctx.wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::Cancelled
    );
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Cancelled);
    assert_eq!(info.last_error.as_deref(), Some("cancelled by request"));
    assert_eq!(info.next_due_at, None);
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().enqueued, 0);
    // Cancelling again reports it finished; an unknown id reports not found.
    assert_eq!(
        ctx.wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::AlreadyFinished
    );
    assert_eq!(
        ctx.wm
            .cancel_work_by_id(workq_producer::WorkId::new())
            .await
            .unwrap(),
        CancelStatus::NotFound
    );
}

#[tokio::test]
async fn cancelling_a_running_job_fires_its_signal_and_ends_it_cancelled_without_retry() {
    // A short lease means frequent heartbeats, which carry the cancellation.
    let mut ctx = TestContext::with_worker(|b| b.lease(Duration::from_millis(900))).await;
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .max_attempts(5)
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    ctx.reaches(req.id(), WorkState::Running).await;
    assert_eq!(
        ctx.wm.cancel_work_by_id(req.id()).await.unwrap(),
        CancelStatus::Requested
    );
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Cancelled);
    assert_eq!(info.run_attempt_count, 1);
    assert_eq!(info.last_error.as_deref(), Some("cancelled by request"));
    ctx.stop_worker().await;
    // Nothing was rescheduled.
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!((stats.enqueued, stats.running), (0, 0));
}

#[tokio::test]
async fn cancelling_by_tag_cancels_waiting_and_running_work_with_the_tag_only() {
    let mut ctx = TestContext::with_worker(|b| b.lease(Duration::from_millis(900))).await;
    let running = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .tag("batch-7")
        .build()
        .unwrap();
    ctx.wm.enqueue(running.clone()).await.unwrap();
    ctx.reaches(running.id(), WorkState::Running).await;
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            OneTimeWorkRequest::builder(Sleep::ms(1))
                .tag("batch-7")
                .initial_delay(Duration::from_secs(3600))
                .build()
                .unwrap()
        })
        .collect();
    let other = OneTimeWorkRequest::builder(Sleep::ms(1))
        .tag("batch-8")
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm
        .enqueue_many(waiting.iter().cloned().chain([other.clone()]))
        .await
        .unwrap();
    let sum = ctx.wm.cancel_all_work_by_tag("batch-7").await.unwrap();
    assert_eq!((sum.cancelled, sum.requested), (3, 1));
    let info = ctx.finished(running.id()).await;
    assert_eq!(info.state, WorkState::Cancelled);
    assert_eq!(
        info.last_error.as_deref(),
        Some("cancelled by tag 'batch-7'")
    );
    for w in &waiting {
        let i = ctx.wm.get_work_info(w.id()).await.unwrap().unwrap();
        assert_eq!(i.state, WorkState::Cancelled);
    }
    let o = ctx.wm.get_work_info(other.id()).await.unwrap().unwrap();
    assert_eq!(o.state, WorkState::Enqueued);
    ctx.stop_worker().await;
}
