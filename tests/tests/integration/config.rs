//! Configuration errors are errors, not outages: what waiting cannot heal (a wrong or
//! missing password, a database index out of range, an ACL that refuses FCALL) stops a
//! worker at start with `Error::Config`, and is not transient for producers; a Redis that
//! is merely down, or full, is waited for.

use std::time::Duration;

use workq_producer::{Error, OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::{Nop, NopWorker};
use workq_tests::{RedisServer, HANG};
use workq_worker::WorkerRuntime;

use crate::support::*;

/// A Redis that requires the password `PASSWORD` of its default user, and knows a user
/// `jobs` (password `jobs-pw`) that may do everything but `FCALL`.
const PASSWORD: &str = "s3cret-pw";

async fn guarded_redis() -> RedisServer {
    let redis = RedisServer::start();
    admin(
        &redis,
        &[
            "ACL", "SETUSER", "jobs", "on", ">jobs-pw", "~*", "&*", "+@all", "-fcall",
        ],
    )
    .await;
    admin(&redis, &["CONFIG", "SET", "requirepass", PASSWORD]).await;
    redis
}

fn url_with(redis: &RedisServer, userinfo: &str, db: &str) -> String {
    format!("redis://{userinfo}127.0.0.1:{}{db}", redis.port())
}

/// Runs a worker in this process until it returns (it must, by itself).
async fn run_worker(url: &str) -> workq_worker::Result<()> {
    workq_tests::init_logs();
    let rt = WorkerRuntime::builder(url)
        .register(NopWorker)
        .build()
        .expect("runtime");
    tokio::time::timeout(HANG, rt.run_until(std::future::pending()))
        .await
        .expect("the worker kept running on a configuration error")
}

/// The worker stopped at start with `Error::Config`, naming the address and not `secret`.
fn assert_config_error(r: workq_worker::Result<()>, redis: &RedisServer, secret: &str, says: &str) {
    let msg = match r {
        Err(workq_worker::Error::Config(m)) => m.to_string(),
        other => panic!("expected Error::Config, got {other:?}"),
    };
    assert!(
        msg.contains(&format!("127.0.0.1:{}", redis.port())),
        "the message names the address: {msg}"
    );
    assert!(
        !msg.contains(secret),
        "the message leaks the password: {msg}"
    );
    assert!(
        msg.contains(says),
        "the message says what to fix ({says:?}): {msg}"
    );
}

#[tokio::test]
async fn a_worker_with_a_wrong_password_stops_at_start_with_a_config_error() {
    let redis = guarded_redis().await;
    let r = run_worker(&url_with(&redis, ":wrong-pw@", "")).await;
    assert_config_error(r, &redis, "wrong-pw", "password");
}

#[tokio::test]
async fn a_worker_without_the_password_redis_requires_stops_at_start_with_a_config_error() {
    let redis = guarded_redis().await;
    let r = run_worker(&url_with(&redis, "", "")).await;
    assert_config_error(r, &redis, PASSWORD, "requires a password");
}

#[tokio::test]
async fn a_worker_on_a_database_index_out_of_range_stops_at_start_with_a_config_error() {
    let redis = RedisServer::start();
    let r = run_worker(&url_with(&redis, "", "/99")).await;
    assert_config_error(r, &redis, PASSWORD, "database index");
}

#[tokio::test]
async fn a_worker_whose_acl_user_may_not_fcall_stops_at_start_with_a_config_error() {
    let redis = guarded_redis().await;
    let r = run_worker(&url_with(&redis, "jobs:jobs-pw@", "")).await;
    assert_config_error(r, &redis, "jobs-pw", "ACL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_exits_non_zero_naming_the_address_and_not_the_password() {
    let redis = guarded_redis().await;
    let url = url_with(&redis, ":wrong-pw@", "");
    let (mut worker, _) = spawn_logging_worker(&url, "default", 3000, 1000, &log_env("info"));
    let (code, worker) = tokio::task::spawn_blocking(move || {
        let code = worker.exit_within(Duration::from_secs(60));
        (code, worker)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(1), "a failed start exits non-zero");
    let err = worker.stderr_seen();
    let last = err
        .iter()
        .find(|l| l.starts_with("test-worker: "))
        .unwrap_or_else(|| panic!("no error message: {err:#?}"));
    assert!(
        last.contains(&format!("127.0.0.1:{}", redis.port())) && last.contains("password"),
        "{last}"
    );
    assert!(
        err.iter().all(|l| !l.contains("wrong-pw")),
        "the password leaked: {err:#?}"
    );
}

#[tokio::test]
async fn a_worker_started_while_redis_is_down_waits_for_it() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.kill();
    let worker = InProcess::start(&url, "default", |b| b);
    // Down at start is an outage, not a configuration error: the worker keeps trying,
    // and works once Redis is there.
    redis.restart();
    let wm = manager(&url).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let id = wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap())
        .await
        .unwrap()
        .id;
    assert_eq!(
        finished(&wm, &mut watch, id).await.state,
        WorkState::Succeeded
    );
    worker.stop().await;
}

#[tokio::test]
async fn producers_get_non_transient_errors_for_configuration_and_transient_ones_for_a_full_redis()
{
    let redis = guarded_redis().await;
    for (url, secret) in [
        (url_with(&redis, ":wrong-pw@", ""), "wrong-pw"),
        (url_with(&redis, "", ""), PASSWORD),
        (url_with(&redis, &format!(":{PASSWORD}@"), "/99"), PASSWORD),
    ] {
        let e = WorkManager::connect(&url).await.expect_err("connect");
        assert!(!e.is_transient() && e.is_config(), "{url}: {e}");
        assert!(e.config_hint().is_some(), "{url}: {e}");
        assert!(!e.to_string().contains(secret), "{e}");
    }

    // An ACL user without FCALL connects (it may load the functions), but cannot enqueue.
    let limited = WorkManager::connect(&url_with(&redis, "jobs:jobs-pw@", ""))
        .await
        .expect("connect");
    let e = limited
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap())
        .await
        .expect_err("FCALL is refused");
    assert!(!e.is_transient() && e.is_config(), "{e}");

    // At maxmemory Redis refuses the enqueue with OOM, which clears once memory is freed.
    let wm = manager(&url_with(&redis, &format!(":{PASSWORD}@"), "")).await;
    let mut con = wm.connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap();
    let e = wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 2 }).build().unwrap())
        .await
        .expect_err("over maxmemory");
    assert!(e.to_string().contains("OOM"), "{e}");
    assert!(e.is_transient() && !e.is_config(), "{e}");
    assert!(!matches!(e, Error::Config(_)));
}

/// How many FCALLs Redis refused (its ACL refusals among them).
async fn acl_denials(redis: &RedisServer) -> u64 {
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut con)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_fcall:"))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("rejected_calls=")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_that_refuses_fcall_mid_run_is_logged_once_as_an_error_and_the_worker_carries_on() {
    let redis = RedisServer::start();
    admin(
        &redis,
        &[
            "ACL", "SETUSER", "jobs", "on", ">jobs-pw", "~*", "&*", "+@all",
        ],
    )
    .await;
    let url = url_with(&redis, "jobs:jobs-pw@", "");
    let wm = manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let (mut worker, _) = spawn_logging_worker(&url, "default", 3000, 500, &log_env("error"));
    let nop = |i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap();
    let first = wm.enqueue(nop(1)).await.unwrap().id;
    assert_eq!(
        finished(&wm, &mut watch, first).await.state,
        WorkState::Succeeded
    );

    // An operator takes FCALL away from the worker's user while it runs.
    admin(&redis, &["ACL", "SETUSER", "jobs", "-fcall"]).await;
    let line = worker.wait_stderr(&["ERROR", "loop_=\"claim\"", "waiting will not fix"]);
    assert!(line.contains("ACL"), "{line}");
    // Let the claim loop retry a few times (Redis counts each refusal).
    let seen = acl_denials(&redis).await;
    tokio::time::timeout(HANG, async {
        while acl_denials(&redis).await < seen + 3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the worker stopped retrying");
    admin(&redis, &["ACL", "SETUSER", "jobs", "+fcall"]).await;
    let second = wm.enqueue(nop(2)).await.unwrap().id;
    assert_eq!(
        finished(&wm, &mut watch, second).await.state,
        WorkState::Succeeded
    );

    let claim_errors = worker
        .stderr_seen()
        .iter()
        .filter(|l| l.contains("ERROR") && l.contains("loop_=\"claim\""))
        .count();
    assert_eq!(
        claim_errors,
        1,
        "one ERROR per outage: {:#?}",
        worker.stderr_seen()
    );
    assert!(
        worker.lines_seen().iter().all(|l| !l.starts_with("EXIT")),
        "the worker kept running"
    );
}
