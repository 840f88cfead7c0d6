//! A worker says what happened: Redis losing its data, a fenced completion, permanent
//! failures, an unusable log filter, and the attempt number of periodic work, as they are
//! (each test reads the worker process' logs).

use std::time::Duration;

use workq_producer::{OneTimeWorkRequest, PeriodicWorkRequest, WorkState};
use workq_tests::jobs::{Fail, Sleep};
use workq_tests::RedisServer;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_redis_restarted_empty_says_redis_lost_its_data() {
    let mut redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let (mut worker, _) = spawn_logging_worker(&redis.url(), "default", 900, 500, &log_env("warn"));
    // Its start-up check has read Redis' INFO (and its run_id) once it warns about it.
    worker.wait_stderr(&["WARN", "AOF off"]);
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    worker.wait_line(&format!("START {} 1", req.id()));

    // No persistence: Redis comes back empty, and the worker's next heartbeat finds its job
    // gone.
    redis.restart();
    let line = worker.wait_stderr(&["ERROR", "Redis lost its data"]);
    assert!(line.contains("jobs=1"), "{line}");
    assert!(
        worker
            .stderr_seen()
            .iter()
            .all(|l| !l.contains("lost the lease to another worker")),
        "{:#?}",
        worker.stderr_seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_fail_for_good_are_logged_as_warnings() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let (mut worker, _) =
        spawn_logging_worker(&redis.url(), "default", 30_000, 500, &log_env("warn"));
    let failure = OneTimeWorkRequest::builder(Fail {
        mode: "failure".into(),
    })
    .build()
    .unwrap();
    // (A kind no worker runs does not fail: it waits for a worker of its kind.)
    let undecodable =
        OneTimeWorkRequest::builder_raw("fail", workq_common::Data::from_bytes(vec![0xc1]))
            .build()
            .unwrap();
    let exhausted = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .max_attempts(1)
    .build()
    .unwrap();
    for req in [&failure, &undecodable, &exhausted] {
        wm.enqueue(req.clone()).await.unwrap();
    }
    // Each job's reason, to be found in its warning; the three may finish (and be
    // logged) in any order.
    let mut pending: Vec<(String, String)> = Vec::new();
    for req in [&failure, &undecodable, &exhausted] {
        let info = finished(&wm, &mut watch, req.id()).await;
        assert_eq!(info.state, WorkState::Failed, "{info:?}");
        let reason = info.last_error.clone().unwrap_or_else(|| "?".to_owned());
        pending.push((req.id().to_string(), reason));
    }
    while !pending.is_empty() {
        let line = worker.wait_stderr(&["WARN", "job failed for good"]);
        if let Some(at) = pending
            .iter()
            .position(|(id, _)| line.contains(id.as_str()))
        {
            let (_, reason) = pending.remove(at);
            assert!(
                line.contains(&reason),
                "the warning gives the reason: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_s_log_span_gives_the_attempt_ctx_attempt_gives() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let (mut worker, _) =
        spawn_logging_worker(&redis.url(), "default", 30_000, 500, &log_env("info"));
    // One attempt per period, failing each time: every period's attempt is attempt 1.
    let req = PeriodicWorkRequest::builder(
        Fail {
            mode: "error".into(),
        },
        Duration::from_millis(200),
    )
    .max_attempts(1)
    .build()
    .unwrap();
    let id = req.id().to_string();
    wm.enqueue_periodic(req).await.unwrap();
    for period in 1..=2 {
        // The worker's message quotes ctx.attempt(); the span says `attempt=..`.
        let line = worker.wait_stderr(&[id.as_str(), "attempt 1 broke"]);
        assert!(
            line.contains("attempt=1}"),
            "period {period}: the span's attempt differs from ctx.attempt(): {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_filter_that_does_not_parse_is_reported() {
    let redis = RedisServer::start();
    let (mut worker, _) =
        spawn_logging_worker(&redis.url(), "default", 30_000, 500, &log_env("workq=loud"));
    let line = worker.wait_stderr(&["WORKQ_LOG", "workq=loud", "does not parse"]);
    assert!(line.contains("logging at error"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_after_a_pause_is_reported_as_fenced_not_as_an_outage() {
    const RUN: Duration = Duration::from_millis(1000);
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let (mut first, _) = spawn_logging_worker(&redis.url(), "default", 600, 500, &log_env("warn"));
    let req = OneTimeWorkRequest::builder(Sleep {
        ms: RUN.as_millis() as u64,
        retry_ms: Some(10),
    })
    .build()
    .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    first.wait_line(&format!("START {} 1", req.id()));
    // The first worker stops dead (a GC pause, a frozen VM) mid-attempt; its lease runs
    // out, and a second worker takes the job over and finishes it.
    first.signal("STOP");
    let second = InProcess::start(&redis.url(), "default", |b| b);
    let done = finished(&wm, &mut watch, req.id()).await;
    assert_eq!(
        (done.state, done.run_attempt_count),
        (WorkState::Succeeded, 2)
    );
    // The first worker runs again, and its attempt finishes and sends its outcome. Redis
    // is frozen meanwhile, so that the first worker's heartbeat cannot report the job lost
    // (and abort the attempt) before it finishes: Redis sees the stale outcome either way.
    redis.pause();
    first.signal("CONT");
    first.wait_line(&format!("DONE {} 1", req.id()));
    redis.resume();
    let id = req.id().to_string();
    let line = first.wait_stderr(&["WARN", "fenced", id.as_str()]);
    assert!(line.contains("another attempt owns the job"), "{line}");
    assert!(
        first
            .stderr_seen()
            .iter()
            .all(|l| !l.contains("an outage") && !l.contains("gave up recording")),
        "no outage happened: {:#?}",
        first.stderr_seen()
    );
    // Redis kept the second attempt's outcome.
    assert_eq!(info(&wm, req.id()).await.run_attempt_count, 2);
    second.stop().await;
    // And the first worker counted the fenced outcome.
    first.signal("TERM");
    let fenced = tokio::task::spawn_blocking(move || {
        assert_eq!(first.exit_within(Duration::from_secs(60)), Some(0));
        first
            .lines_seen()
            .iter()
            .find_map(|l| l.strip_prefix("FENCED ").map(str::to_owned))
    })
    .await
    .unwrap();
    assert_eq!(fenced.as_deref(), Some("1"), "workq_acks_refused_total");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_workq_log_format_json_each_line_is_a_json_object_with_the_attempt_span() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    let mut env = log_env("info");
    env.push(("WORKQ_LOG_FORMAT".to_owned(), "json".to_owned()));
    let (mut worker, _) = spawn_logging_worker(&redis.url(), "default", 30_000, 500, &env);
    let req = OneTimeWorkRequest::builder(Fail {
        mode: "error".into(),
    })
    .max_attempts(1)
    .build()
    .unwrap();
    let id = req.id().to_string();
    wm.enqueue(req).await.unwrap();
    let line = worker.wait_stderr(&["job failed for good", id.as_str()]);
    let event: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(event["level"], "WARN", "{line}");
    assert_eq!(
        event["fields"]["message"], "job failed for good: out of attempts",
        "{line}"
    );
    let span = &event["span"];
    assert_eq!(span["id"], id.as_str(), "the attempt span's fields: {line}");
    assert_eq!(span["attempt"], 1, "{line}");
    assert_eq!(span["queue"], "default", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_format_that_is_neither_json_nor_text_is_reported() {
    let redis = RedisServer::start();
    let mut env = log_env("info");
    env.push(("WORKQ_LOG_FORMAT".to_owned(), "xml".to_owned()));
    let (mut worker, _) = spawn_logging_worker(&redis.url(), "default", 30_000, 500, &env);
    worker.wait_stderr(&["WORKQ_LOG_FORMAT", "'xml'", "writing text"]);
}
