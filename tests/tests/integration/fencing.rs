use std::time::Duration;

use workq_common::internal::record::peek_attempts;
use workq_common::internal::scripts::{
    scripts, Ack, AckOutcome, ClaimedJob, HeartbeatArgs, LeaseStatus, Retention,
};
use workq_common::internal::QueueKeys;
use workq_producer::{BackoffPolicy, OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::Sleep;

use crate::fixture::TestContext;
use crate::support::*;

async fn claim_as(
    wm: &WorkManager,
    worker: &str,
    lease: Duration,
) -> (Option<ClaimedJob>, u64, u64) {
    let r = claim_by_hand(wm, worker, "", lease).await;
    let next = r.next_due_ms.unwrap_or(r.now_ms + 1);
    (r.jobs.into_iter().next(), r.now_ms, next)
}

#[tokio::test]
async fn fenced_attempts_ignore_stale_workers() {
    let ctx = TestContext::without_watch().await;
    let keys = QueueKeys::new("default").unwrap();
    let req = OneTimeWorkRequest::builder(Sleep::ms(1))
        .backoff(BackoffPolicy::Linear, Duration::from_millis(1))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let id = req.id().to_string();

    // Worker A claims with a short lease, then stalls past it.
    let (a, ..) = claim_as(&ctx.wm, "A", Duration::from_millis(300)).await;
    let a = a.expect("A claims the job");
    let a_token = peek_attempts(&a.record).unwrap();
    assert_eq!(a_token, 1);

    // Worker B keeps looking; once A's lease has run out, B's claim requeues and takes it.
    let b = loop {
        let (job, now, next) = claim_as(&ctx.wm, "B", Duration::from_secs(30)).await;
        if let Some(j) = job {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(next.saturating_sub(now).max(1))).await;
    };
    let b_token = peek_attempts(&b.record).unwrap();
    assert_eq!(b_token, 2);

    let mut con = ctx.wm.connection().await.unwrap();
    // A's heartbeat is refused...
    let hb = scripts()
        .heartbeat(
            &mut con,
            &keys,
            &HeartbeatArgs {
                worker: "A",
                lease: Duration::from_secs(30),
                known_until: 0,
                keep_failed: Duration::from_secs(60),
                labels: "",
                held: &[(id.clone(), a_token)],
            },
        )
        .await
        .unwrap();
    assert_eq!(hb, [LeaseStatus::Lost]);
    // ...and so is its completion.
    let ack = |token: u32, output: &[u8]| Ack {
        id: id.as_str().into(),
        token,
        outcome: AckOutcome::Succeeded,
        message: String::new(),
        output: output.to_vec(),
        next_runs: (0, 0),
    };
    let refused = scripts()
        .ack(
            &mut con,
            &keys,
            "A",
            &Retention::default(),
            &[ack(a_token, b"\xa1A")],
        )
        .await
        .unwrap();
    assert_eq!(refused, [false]);
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.run_attempt_count),
        (WorkState::Running, 2)
    );
    assert_eq!(info.worker.as_deref(), Some("B"));

    // B's heartbeat and completion go through, and the output is B's.
    let hb = scripts()
        .heartbeat(
            &mut con,
            &keys,
            &HeartbeatArgs {
                worker: "B",
                lease: Duration::from_secs(30),
                known_until: 0,
                keep_failed: Duration::from_secs(60),
                labels: "",
                held: &[(id.clone(), b_token)],
            },
        )
        .await
        .unwrap();
    assert_eq!(hb, [LeaseStatus::Extended]);
    let applied = scripts()
        .ack(
            &mut con,
            &keys,
            "B",
            &Retention::default(),
            &[ack(b_token, b"\xa1B")],
        )
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Succeeded);
    assert_eq!(info.output.unwrap().decode::<String>().unwrap(), "B");
    assert!(info
        .last_error
        .unwrap()
        .contains("lease expired: worker A lost during attempt 1"));
}
