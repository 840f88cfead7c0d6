//! The worker's HTTP endpoint (`WorkerRuntimeBuilder::http`, `workq-worker --http`):
//! `/metrics` has every metric of the observability issue with its TYPE and every
//! labelled series at zero before any job, its counters count what ran, `/readyz` turns
//! 503 when shutdown begins, `/healthz` is 200, a taken address is a configuration error
//! from `run()`, and the port is closed once `run()` returns. Real Redis, real HTTP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use workq_producer::{Job, OneTimeWorkRequest, WorkState};
use workq_tests::jobs::{Fail, Nop};
use workq_tests::{RedisServer, WorkerProcess, HANG};
use workq_worker::{Error, WorkContext, WorkError, WorkResult, Worker, WorkerRuntime};

use crate::fixture::TestContext;
use crate::support::{self, InProcess};

/// The kinds `InProcess::start` registers (workq_tests::jobs), and the shared "unknown".
const KINDS: &[&str] = &[
    "sleep", "fail", "nop", "emit", "echo", "probe", "progress", "unknown",
];
const OUTCOMES: &[&str] = &[
    "succeeded",
    "failed",
    "retry",
    "error",
    "panic",
    "timeout",
    "cancelled",
    "undecodable",
    "unknown_kind",
];
const LOOPS: &[&str] = &[
    "startup",
    "claim",
    "ack",
    "heartbeat",
    "wake",
    "memory",
    "release",
];
const SCRIPTS: &[&str] = &["claim", "ack", "heartbeat", "release", "progress"];
/// Every metric the issue names, with its Prometheus type.
const TYPES: &[(&str, &str)] = &[
    ("workq_jobs_claimed_total", "counter"),
    ("workq_attempts_total", "counter"),
    ("workq_attempt_duration_seconds", "histogram"),
    ("workq_job_lateness_seconds", "histogram"),
    ("workq_leases_lost_total", "counter"),
    ("workq_acks_refused_total", "counter"),
    ("workq_redis_errors_total", "counter"),
    ("workq_redis_call_duration_seconds", "histogram"),
    ("workq_writes_not_durable_total", "counter"),
    ("workq_worker_slots", "gauge"),
    ("workq_build_info", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
];

/// A response: status code and body.
struct Reply {
    status: u16,
    body: String,
}

/// GET `path` from `addr` with a minimal HTTP/1.1 client (the connection closes after
/// one request, so the body is what follows the headers).
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    Ok(Reply {
        status,
        body: body.to_owned(),
    })
}

/// Polls `path` until it answers `status` (connection refused counts as not yet; a
/// hang fails the test) and returns the body.
async fn wait_for(addr: SocketAddr, path: &str, status: u16) -> String {
    let poll = async {
        loop {
            if let Ok(r) = get(addr, path).await {
                if r.status == status {
                    return r.body;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(HANG, poll)
        .await
        .unwrap_or_else(|_| panic!("{path} never answered {status}"))
}

/// A sample line of the text format: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let labels = rest
                        .trim_end_matches('}')
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once('=').expect("label");
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            (name.to_owned(), labels, value.parse().expect("value"))
        })
        .collect()
}

/// The value of the series `name` with exactly these labels; it must exist.
fn value(all: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no series {name}{labels:?}"))
}

/// An address nobody listens on now, for a worker to bind.
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], workq_tests::free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_has_every_issue_metric_with_its_type_and_every_series_at_zero_before_any_job() {
    let addr = free_addr();
    let mut ctx = TestContext::with_worker(|b| b.concurrency(3).http(addr)).await;
    wait_for(addr, "/readyz", 200).await;
    let text = get(addr, "/metrics").await.unwrap();
    assert_eq!(text.status, 200);
    let text = text.body;
    for (name, kind) in TYPES {
        assert!(
            text.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "no `# TYPE {name} {kind}` in:\n{text}"
        );
    }
    let all = samples(&text);
    let q = ("queue", "default");
    for kind in KINDS {
        for outcome in OUTCOMES {
            let labels = [("kind", *kind), ("outcome", *outcome), q];
            assert_eq!(value(&all, "workq_attempts_total", &labels), 0.0);
        }
        let labels = [("kind", *kind), q];
        assert_eq!(
            value(&all, "workq_attempt_duration_seconds_count", &labels),
            0.0
        );
    }
    for name in [
        "workq_jobs_claimed_total",
        "workq_leases_lost_total",
        "workq_acks_refused_total",
        "workq_job_lateness_seconds_count",
    ] {
        assert_eq!(value(&all, name, &[q]), 0.0, "{name}");
    }
    for l in LOOPS {
        assert_eq!(value(&all, "workq_redis_errors_total", &[("loop", l)]), 0.0);
    }
    for s in ["claim", "ack"] {
        let at = value(&all, "workq_writes_not_durable_total", &[("script", s)]);
        assert_eq!(at, 0.0, "{s}");
    }
    for s in SCRIPTS {
        // Claims have run (the worker is ready), the others may not have yet.
        value(
            &all,
            "workq_redis_call_duration_seconds_count",
            &[("script", s)],
        );
    }
    assert_eq!(value(&all, "workq_worker_slots", &[("state", "busy")]), 0.0);
    assert_eq!(value(&all, "workq_worker_slots", &[("state", "idle")]), 3.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&all, "workq_build_info", &[("version", version)]),
        1.0
    );
    assert!(value(&all, "process_open_fds", &[]) > 0.0);
    // Ids and tags never become labels.
    for (name, labels, _) in &all {
        for k in labels.keys() {
            assert!(
                ["queue", "kind", "outcome", "loop", "script", "state", "version", "le"]
                    .contains(&k.as_str()),
                "{name} has label {k}"
            );
        }
    }
    assert_eq!(get(addr, "/healthz").await.unwrap().status, 200);
    assert_eq!(get(addr, "/nope").await.unwrap().status, 404);
    ctx.stop_worker().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_count_the_jobs_that_succeeded_and_failed() {
    const N: usize = 7;
    const M: usize = 4;
    let addr = free_addr();
    let mut ctx = TestContext::with_worker(|b| b.http(addr)).await;
    let mut ids = Vec::new();
    for i in 0..N {
        let req = OneTimeWorkRequest::builder(Nop { i: i as u64 })
            .build()
            .unwrap();
        ids.push(req.id());
        ctx.wm.enqueue(req).await.unwrap();
    }
    for _ in 0..M {
        let fail = Fail {
            mode: "failure".into(),
        };
        let req = OneTimeWorkRequest::builder(fail).build().unwrap();
        ids.push(req.id());
        ctx.wm.enqueue(req).await.unwrap();
    }
    for id in ids {
        ctx.finished(id).await;
    }
    let all = samples(&get(addr, "/metrics").await.unwrap().body);
    let q = ("queue", "default");
    let attempts = |kind, outcome| {
        value(
            &all,
            "workq_attempts_total",
            &[("kind", kind), ("outcome", outcome), q],
        )
    };
    assert_eq!(attempts("nop", "succeeded"), N as f64);
    assert_eq!(attempts("fail", "failed"), M as f64);
    assert_eq!(attempts("nop", "failed"), 0.0);
    assert_eq!(attempts("fail", "succeeded"), 0.0);
    assert_eq!(
        value(&all, "workq_jobs_claimed_total", &[q]),
        (N + M) as f64
    );
    let count = |kind| {
        value(
            &all,
            "workq_attempt_duration_seconds_count",
            &[("kind", kind), q],
        )
    };
    assert_eq!((count("nop"), count("fail")), (N as f64, M as f64));
    assert!(value(&all, "workq_job_lateness_seconds_count", &[q]) >= 1.0);
    assert!(
        value(
            &all,
            "workq_redis_call_duration_seconds_count",
            &[("script", "ack")]
        ) >= 1.0
    );
    ctx.stop_worker().await;
}

/// Lateness is observed per job, not per claim: twenty jobs taken by one claim give
/// twenty observations, and the one that was due a minute before it was enqueued is the
/// only one past the 30 s bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lateness_is_observed_once_per_job_against_its_own_due_time() {
    const N: usize = 20;
    let addr = free_addr();
    let mut ctx = TestContext::new().await;
    let mut ids = Vec::new();
    for i in 0..N {
        let mut b = OneTimeWorkRequest::builder(Nop { i: i as u64 });
        if i == 0 {
            b = b.run_at(std::time::SystemTime::now() - std::time::Duration::from_secs(60));
        }
        let req = b.build().unwrap();
        ids.push(req.id());
        ctx.wm.enqueue(req).await.unwrap();
    }
    // Enqueued before the worker starts, so that its first claims take several at once.
    ctx.start_worker(|b| b.http(addr));
    for id in ids {
        ctx.finished(id).await;
    }
    let all = samples(&get(addr, "/metrics").await.unwrap().body);
    let q = ("queue", "default");
    assert_eq!(
        value(&all, "workq_job_lateness_seconds_count", &[q]),
        N as f64
    );
    assert_eq!(
        value(
            &all,
            "workq_job_lateness_seconds_bucket",
            &[q, ("le", "30")]
        ),
        (N - 1) as f64,
        "only the job due a minute ago was that late"
    );
    ctx.stop_worker().await;
}

/// A job that runs until the test releases it.
#[derive(Serialize, Deserialize)]
struct Hold;
impl Job for Hold {
    const KIND: &'static str = "http_hold";
}
fn release() -> &'static Notify {
    static RELEASE: OnceLock<Notify> = OnceLock::new();
    RELEASE.get_or_init(Notify::new)
}
struct HoldWorker;
impl Worker for HoldWorker {
    type Job = Hold;
    async fn do_work(&self, _: &WorkContext, _: Hold) -> Result<WorkResult, WorkError> {
        release().notified().await;
        Ok(WorkResult::success())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_from_the_start_of_shutdown_and_the_port_closes_when_run_returns() {
    let redis = RedisServer::start();
    let wm = support::manager(&redis.url()).await;
    let mut watch = wm.watch_queue("default").await.unwrap();
    let addr = free_addr();
    let worker = InProcess::run(
        WorkerRuntime::builder(&redis.url())
            .register(HoldWorker)
            .grace_period(HANG * 2)
            .http(addr),
    );
    assert_eq!(wait_for(addr, "/readyz", 200).await, "ready\n");
    assert_eq!(get(addr, "/healthz").await.unwrap().status, 200);

    let req = OneTimeWorkRequest::builder(Hold).build().unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    support::reaches(&mut watch, req.id(), WorkState::Running).await;
    // Shutdown begins; the held job keeps the runtime in its grace period.
    let stopped = tokio::spawn(worker.stop());
    let body = wait_for(addr, "/readyz", 503).await;
    assert!(body.contains("shutting down"), "{body}");
    // Alive all the same: its loops are stopping because they were told to.
    assert_eq!(get(addr, "/healthz").await.unwrap().status, 200);
    assert!(!stopped.is_finished());

    // (A permit, if the attempt has not reached its wait yet.)
    release().notify_one();
    tokio::time::timeout(HANG, stopped)
        .await
        .expect("shutdown")
        .expect("runtime task");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the endpoint still listens after run() returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_http_address_is_a_config_error_from_run_naming_it() {
    let redis = RedisServer::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let rt = WorkerRuntime::builder(&redis.url())
        .register(HoldWorker)
        .http(addr)
        .build()
        .unwrap();
    let res = tokio::time::timeout(HANG, rt.run_until(std::future::pending()))
        .await
        .expect("run() returns");
    match res {
        Err(Error::Config(e)) => {
            assert_eq!(e.setting(), "http");
            assert!(e.message().contains(&addr.to_string()), "{}", e.message());
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// The `workq-worker` binary (built with its `cli` feature once per test run).
fn workq_worker_bin() -> PathBuf {
    crate::support::workspace_bin("workq-worker", "workq-worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workq_worker_http_serves_the_endpoint_at_the_address_it_logs() {
    let redis = RedisServer::start();
    let bin = tokio::task::spawn_blocking(workq_worker_bin).await.unwrap();
    let args = [
        "--redis".to_owned(),
        redis.url(),
        "--http".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let env = [("NO_COLOR".to_owned(), "1".to_owned())];
    let (mut worker, addr) = tokio::task::spawn_blocking(move || {
        let mut worker = WorkerProcess::spawn(&bin, &args, &env);
        let addr: SocketAddr = loop {
            let line = worker.wait_line("");
            if line.contains("serving /metrics") {
                let at = line.split("addr=").nth(1).expect("addr= in the log line");
                break at.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        (worker, addr)
    })
    .await
    .unwrap();
    wait_for(addr, "/readyz", 200).await;
    let metrics = get(addr, "/metrics").await.unwrap();
    assert_eq!(metrics.status, 200);
    let all = samples(&metrics.body);
    let labels = [
        ("kind", "noop"),
        ("outcome", "succeeded"),
        ("queue", "default"),
    ];
    assert_eq!(value(&all, "workq_attempts_total", &labels), 0.0);
    worker.signal("TERM");
    let code = tokio::task::spawn_blocking(move || worker.exit_within(HANG))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(TcpStream::connect(addr).await.is_err());
}
