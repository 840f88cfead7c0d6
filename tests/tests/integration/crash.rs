use std::time::Duration;

use workq_producer::{BackoffPolicy, OneTimeWorkRequest, WorkState};
use workq_tests::jobs::{Sleep, Slept};

use crate::fixture::TestContext;
use crate::support::*;

#[tokio::test]
async fn a_sigkilled_worker_s_job_is_finished_by_another_process_after_the_lease() {
    let mut ctx = TestContext::new().await;
    let (mut first, first_id, _) = spawn_worker(&ctx.url(), "default", 4, 1000, 5000, &[]);
    let req = OneTimeWorkRequest::builder(Sleep {
        ms: 600_000,
        retry_ms: Some(10),
    })
    .backoff(BackoffPolicy::Exponential, Duration::from_secs(3600))
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    first.wait_line(&format!("START {} 1", req.id()));
    let info = ctx.wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(info.worker.as_deref(), Some(first_id.as_str()));

    let (second, second_id, _) = spawn_worker(&ctx.url(), "default", 4, 1000, 5000, &[]);
    first.signal("KILL");
    assert_eq!(first.wait(), None, "killed by a signal");

    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded);
    assert_eq!(info.run_attempt_count, 2);
    let out: Slept = info.output_as().unwrap().unwrap();
    assert_eq!(
        out,
        Slept {
            attempt: 2,
            pid: second.pid()
        }
    );
    // Recovered through the lease, not the hour-long backoff.
    let err = info.last_error.unwrap();
    assert!(
        err.contains(&format!(
            "lease expired: worker {first_id} lost during attempt 1"
        )),
        "{err}"
    );
    // Exactly one outcome was recorded.
    let stats = ctx.wm.queue_stats("default").await.unwrap();
    assert_eq!(stats.counters.get("succeeded"), Some(&1));
    assert_eq!(stats.counters.get("lease_expired"), Some(&1));
    assert!(!second_id.is_empty());
}

#[tokio::test]
async fn sigterm_hands_an_unfinished_job_back_before_its_lease_ends() {
    let mut ctx = TestContext::new().await;
    // A lease far longer than the test: only a hand-back can free the job in time.
    let lease_ms = 600_000;
    let (mut first, _, _) = spawn_worker(&ctx.url(), "default", 4, lease_ms, 300, &[]);
    let req = OneTimeWorkRequest::builder(Sleep {
        ms: 600_000,
        retry_ms: Some(10),
    })
    .build()
    .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    first.wait_line(&format!("START {} 1", req.id()));
    let started_first = ctx
        .wm
        .get_work_info(req.id())
        .await
        .unwrap()
        .unwrap()
        .started_at
        .unwrap();

    let (second, _, _) = spawn_worker(&ctx.url(), "default", 4, lease_ms, 300, &[]);
    first.signal("TERM");
    assert_eq!(first.wait(), Some(0), "a graceful exit");
    assert!(first.lines_seen().iter().any(|l| l.starts_with("EXIT ")));

    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded);
    assert_eq!(info.run_attempt_count, 2);
    assert_eq!(
        info.last_error.as_deref(),
        Some("handed back: worker shutting down")
    );
    let out: Slept = info.output_as().unwrap().unwrap();
    assert_eq!(out.pid, second.pid());
    assert!(
        ms(info.started_at.unwrap()) < ms(started_first) + lease_ms,
        "the second attempt started only after the first lease ended"
    );
}

#[tokio::test]
async fn sigterm_lets_a_running_job_finish_within_the_grace_period() {
    let mut ctx = TestContext::new().await;
    let (mut worker, _, _) = spawn_worker(&ctx.url(), "default", 4, 30_000, 60_000, &[]);
    let req = OneTimeWorkRequest::builder(Sleep::ms(700)).build().unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    worker.wait_line(&format!("START {} 1", req.id()));
    let pid = worker.pid();
    worker.signal("TERM");
    worker.wait_line(&format!("DONE {} 1", req.id()));
    assert_eq!(worker.wait(), Some(0));
    let info = ctx.finished(req.id()).await;
    assert_eq!(
        (info.state, info.run_attempt_count),
        (WorkState::Succeeded, 1)
    );
    assert_eq!(info.output_as::<Slept>().unwrap().unwrap().pid, pid);
}
