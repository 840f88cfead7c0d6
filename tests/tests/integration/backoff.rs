use std::time::Duration;

use workq_common::internal::scripts::{scripts, Ack, AckOutcome, Retention};
use workq_common::internal::QueueKeys;
use workq_producer::{BackoffPolicy, OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::Fail;

use crate::fixture::TestContext;
use crate::support::*;

/// Claims the job as soon as it is due (polling the schedule, which is the event here)
/// and fails the attempt; returns the due time Redis gave the retry and the Redis time
/// window in which the failure was recorded.
async fn fail_once(wm: &WorkManager, keys: &QueueKeys) -> (Option<u64>, u64, u64, u32) {
    let mut con = wm.connection().await.unwrap();
    let job = loop {
        let reply = claim_by_hand(wm, "test", "", Duration::from_secs(30)).await;
        if let Some(j) = reply.jobs.into_iter().next() {
            break j;
        }
        let wait = reply.next_due_ms.unwrap().saturating_sub(reply.now_ms);
        tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
    };
    let token = workq_common::internal::record::peek_attempts(&job.record).unwrap();
    let t0 = redis_now(wm).await;
    let applied = scripts()
        .ack(
            &mut con,
            keys,
            "test",
            &Retention::default(),
            &[Ack {
                id: job.id.as_str().into(),
                token,
                outcome: AckOutcome::Retry,
                message: format!("failure {token}"),
                output: vec![],
                next_runs: (0, 0),
            }],
        )
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let t1 = redis_now(wm).await;
    let info = wm
        .get_work_info(job.id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    (info.next_due_at.map(ms), t0, t1, token)
}

async fn check(policy: BackoffPolicy, expected_ms: &[u64]) {
    let ctx = TestContext::without_watch().await;
    let keys = QueueKeys::new("default").unwrap();
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .backoff(policy, Duration::from_millis(100))
    .max_backoff(Duration::from_millis(350))
    .max_attempts(expected_ms.len() as u32 + 1)
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    for (n, want) in expected_ms.iter().enumerate() {
        let (due, t0, t1, token) = fail_once(&ctx.wm, &keys).await;
        assert_eq!(token as usize, n + 1);
        let due = due.expect("requeued with a due time");
        assert!(
            t0 + want <= due && due <= t1 + want,
            "attempt {token}: due {due} not within [{t0}, {t1}] + {want}"
        );
    }
    // The last attempt fails for good, keeping the last error.
    let (due, ..) = fail_once(&ctx.wm, &keys).await;
    assert_eq!(due, None);
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, expected_ms.len() as u32 + 1);
    assert_eq!(
        info.last_error.as_deref(),
        Some(format!("failure {}", expected_ms.len() + 1).as_str())
    );
}

#[tokio::test]
async fn linear_backoff_grows_by_the_initial_delay_up_to_the_cap() {
    check(BackoffPolicy::Linear, &[100, 200, 300, 350]).await;
}

#[tokio::test]
async fn exponential_backoff_doubles_up_to_the_cap() {
    check(BackoffPolicy::Exponential, &[100, 200, 350, 350]).await;
}

#[tokio::test]
async fn a_worker_error_retries_until_max_attempts_then_fails_with_the_last_error() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .backoff(BackoffPolicy::Linear, Duration::from_millis(10))
    .max_attempts(3)
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, 3);
    assert_eq!(info.last_error.as_deref(), Some("attempt 3 broke"));
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_panic_is_retried_with_the_panic_message_recorded() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "panic".into(),
    })
    .backoff(BackoffPolicy::Linear, Duration::from_millis(10))
    .max_attempts(2)
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, 2);
    assert_eq!(
        info.last_error.as_deref(),
        Some("panicked: attempt 2 panicked on purpose")
    );
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_terminal_failure_is_not_retried() {
    let mut ctx = TestContext::with_worker(|b| b).await;
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .max_attempts(5)
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Failed);
    assert_eq!(info.run_attempt_count, 1);
    assert_eq!(info.last_error.as_deref(), Some("gave up at attempt 1"));
    ctx.stop_worker().await;
}
