use workq_producer::{WorkId, WorkState};
use workq_tests::faketime_env;

use crate::fixture::TestContext;
use crate::support::*;

const MINUTE_MS: u64 = 60_000;

/// Workers 10 minutes behind and ahead, and a producer 7 minutes ahead, agree with Redis:
/// nothing starts before its due time, and no lease is taken for expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_and_workers_with_wrong_clocks_schedule_and_lease_correctly() {
    let mut ctx = TestContext::new().await;
    let url = ctx.url();
    let now = redis_now(&ctx.wm).await;
    let (_slow, _, slow_clock) =
        spawn_worker(&url, "default", 4, 900, 5000, &faketime_env("-600s"));
    let (_fast, _, fast_clock) =
        spawn_worker(&url, "default", 4, 900, 5000, &faketime_env("+600s"));
    assert!(
        slow_clock + 9 * MINUTE_MS < now,
        "the slow worker's clock is behind"
    );
    assert!(
        fast_clock > now + 9 * MINUTE_MS,
        "the fast worker's clock is ahead"
    );

    // Jobs due 1 s after Redis receives them, each running for longer than a lease.
    let before = redis_now(&ctx.wm).await;
    let mut producer = workq_tests::WorkerProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_test-worker")),
        &[
            "enqueue".into(),
            url.clone(),
            "6".into(),
            "1000".into(),
            "2000".into(),
        ],
        &faketime_env("+420s"),
    );
    let mut ids = Vec::new();
    let clock = loop {
        let line = producer.wait_line("");
        if let Some(id) = line.strip_prefix("ENQUEUED ") {
            ids.push(id.parse::<WorkId>().unwrap());
        } else if let Some(c) = line.strip_prefix("CLOCK ") {
            break c.parse::<u64>().unwrap();
        }
    };
    let after = redis_now(&ctx.wm).await;
    assert!(
        clock > after + 6 * MINUTE_MS,
        "the producer's clock is ahead"
    );

    for id in ids {
        let info = ctx.finished(id).await;
        assert_eq!(info.state, WorkState::Succeeded);
        let enq = ms(info.enqueued_at);
        assert!(before <= enq && enq <= after, "enqueued at Redis time");
        assert!(
            ms(info.started_at.unwrap()) >= enq + 1000,
            "started before due"
        );
        assert_eq!(
            info.run_attempt_count, 1,
            "a lease was wrongly taken for expired"
        );
    }
}
