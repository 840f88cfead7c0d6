use std::time::Duration;

use workq_producer::{OneTimeWorkRequest, WorkState};
use workq_tests::jobs::{Sleep, Slept};

use crate::fixture::TestContext;
use crate::support::*;

/// The worker's fallback poll is far longer than the delay, so a start close to the due
/// time can only come from the worker sleeping until exactly that time.
const IDLE_POLL: Duration = Duration::from_secs(600);

#[tokio::test]
async fn a_delayed_job_starts_at_its_due_time_not_before_and_not_at_the_next_poll() {
    let mut ctx = TestContext::with_worker(|b| b.idle_poll(IDLE_POLL)).await;
    let req = OneTimeWorkRequest::builder(Sleep::ms(1))
        .initial_delay(Duration::from_millis(1500))
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded);
    let due = ms(info.enqueued_at) + 1500;
    let started = ms(info.started_at.unwrap());
    assert!(started >= due, "started {started} before due {due}");
    assert!(
        started < due + IDLE_POLL.as_millis() as u64,
        "started only at the fallback poll"
    );
    assert_eq!(info.output_as::<Slept>().unwrap().unwrap().attempt, 1);
    ctx.stop_worker().await;
}

#[tokio::test]
async fn a_worker_already_sleeping_for_a_later_job_is_woken_for_an_earlier_one() {
    let mut ctx = TestContext::with_worker(|b| b.idle_poll(IDLE_POLL)).await;
    let late = OneTimeWorkRequest::builder(Sleep::ms(1))
        .initial_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    ctx.wm.enqueue(late.clone()).await.unwrap();
    let now = OneTimeWorkRequest::builder(Sleep::ms(1)).build().unwrap();
    ctx.wm.enqueue(now.clone()).await.unwrap();
    let info = ctx.finished(now.id()).await;
    assert_eq!(info.state, WorkState::Succeeded);
    let late_info = ctx.wm.get_work_info(late.id()).await.unwrap().unwrap();
    assert_eq!(late_info.state, WorkState::Enqueued);
    ctx.stop_worker().await;
}
