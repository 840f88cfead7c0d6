//! A worker stops when it is told to, whatever Redis does: every wait on Redis has a
//! timeout and races the stop signal, and after the grace period handing back and the last
//! acks get a bounded time.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use workq_producer::{OneTimeWorkRequest, WorkState};
use workq_tests::jobs::Sleep;
use workq_tests::{RedisServer, HANG};

use crate::support::*;

/// A hang guard for a worker's exit, far above its grace period plus the few seconds it
/// may take to give up on Redis (not a performance bound).
const EXIT_WATCHDOG: Duration = Duration::from_secs(60);

/// A TCP server that accepts connections and never answers (a hung Redis, a half-open
/// connection, a black-holed route). Returns its URL and the number of connections it
/// holds.
async fn silent_server() -> (String, watch::Receiver<usize>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "redis://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = watch::channel(0);
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            tx.send_replace(held.len());
        }
    });
    (url, rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_worker_whose_redis_accepts_connections_and_never_answers() {
    let (url, mut accepted, server) = silent_server().await;
    let (mut worker, _) = spawn_logging_worker(&url, "default", 3000, 1000, &log_env("warn"));
    // The worker's loops are all waiting on Redis: its start-up check, its claim loop, its
    // wake-up subscription and its first heartbeat (or their retries).
    tokio::time::timeout(HANG, accepted.wait_for(|n| *n >= 4))
        .await
        .expect("the worker never connected")
        .unwrap();
    worker.signal("TERM");
    let code = tokio::task::spawn_blocking(move || {
        let code = worker.exit_within(EXIT_WATCHDOG);
        (code, worker)
    })
    .await
    .unwrap();
    let (code, mut worker) = code;
    assert_eq!(code, Some(0), "a graceful exit");
    assert!(worker.lines_seen().iter().any(|l| l.starts_with("EXIT ")));
    // Every loop stopped on its own: none had to be aborted at the end of the drain.
    let err = worker.stderr_seen();
    assert!(err.iter().all(|l| !l.contains("did not stop")), "{err:#?}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_worker_holding_jobs_when_redis_goes_silent() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    // A lease far longer than the test: a worker that waited for Redis to take the
    // hand-back until the lease ends would outlive the watchdog.
    let (mut worker, _, _) = spawn_worker(&redis.url(), "default", 4, 600_000, 500, &[]);
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    worker.wait_line(&format!("START {} 1", req.id()));

    // Redis freezes with the worker's connections open, then the worker is told to stop.
    redis.pause();
    worker.signal("TERM");
    let (code, mut worker) = tokio::task::spawn_blocking(move || {
        let code = worker.exit_within(EXIT_WATCHDOG);
        (code, worker)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "a graceful exit");
    assert!(worker.lines_seen().iter().any(|l| l.starts_with("EXIT ")));

    // Redis never took the hand-back: the job stays with the gone worker until its lease
    // ends, and nothing was lost.
    redis.resume();
    let info = info(&wm, req.id()).await;
    assert_eq!(
        (info.state, info.run_attempt_count),
        (WorkState::Running, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_a_worker_in_a_long_grace_period_while_redis_is_silent() {
    let redis = RedisServer::start();
    let wm = manager(&redis.url()).await;
    // A grace period and a lease far longer than the watchdog: only the second signal,
    // and a bounded hand-back, can end the worker in time.
    let (mut worker, _) =
        spawn_logging_worker(&redis.url(), "default", 600_000, 600_000, &log_env("info"));
    let req = OneTimeWorkRequest::builder(Sleep::ms(600_000))
        .build()
        .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    worker.wait_line(&format!("START {} 1", req.id()));

    redis.pause();
    worker.signal("TERM");
    worker.wait_stderr(&["shutting down: no new claims"]);
    worker.signal("TERM");
    let (code, mut worker) = tokio::task::spawn_blocking(move || {
        let code = worker.exit_within(EXIT_WATCHDOG);
        (code, worker)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "a graceful exit");
    assert!(worker.lines_seen().iter().any(|l| l.starts_with("EXIT ")));
    assert!(worker
        .stderr_seen()
        .iter()
        .any(|l| l.contains("second signal")));
    redis.resume();
}
