//! TLS (`rediss://`, `rediss+sentinel://`, `rediss+cluster://`, the `tls` feature):
//! producers and workers run jobs over TLS with the fixture's CA, with and without a
//! client certificate, through Sentinel and on a TLS-only Redis Cluster too; a CA that did not sign the server's certificate, a server that wants a
//! client certificate it was not given, and a CA file that is missing are configuration
//! errors, not outages. One TLS server per test.

use std::time::Duration;

use workq_common::demo::Noop;
use workq_producer::{Error, OneTimeWorkRequest, TlsConfig, WorkManager, WorkState};
use workq_tests::jobs::{Nop, NopWorker};
use workq_tests::tls::TlsCerts;
use workq_tests::{ClientAuth, OtherCa, TlsCluster, TlsServer, WorkerProcess, HANG};
use workq_worker::WorkerRuntime;

use crate::support::*;

/// The fixture's CA, and its client certificate.
fn with_client_cert(certs: &TlsCerts) -> TlsConfig {
    TlsConfig::new()
        .ca_file(certs.ca_cert())
        .client_cert(certs.client_cert(), certs.client_key())
}

fn ca_only(certs: &TlsCerts) -> TlsConfig {
    TlsConfig::new().ca_file(certs.ca_cert())
}

async fn producer(url: &str, tls: TlsConfig) -> WorkManager {
    WorkManager::builder(url)
        .tls(tls)
        .connect()
        .await
        .expect("connect over TLS")
}

/// Enqueues a `Nop` on `queue` and waits until it finished; its final state.
async fn run_one(wm: &WorkManager, queue: &str) -> WorkState {
    let mut watch = wm.watch_queue(queue).await.expect("watch");
    let req = OneTimeWorkRequest::builder(Nop { i: 1 })
        .queue(queue)
        .build()
        .unwrap();
    let id = wm.enqueue(req).await.expect("enqueue").id;
    finished(wm, &mut watch, id).await.state
}

/// Runs a worker in this process until it returns (on a configuration error, it must).
async fn run_worker_until_error(url: &str, tls: TlsConfig) -> workq_worker::Result<()> {
    workq_tests::init_logs();
    let rt = WorkerRuntime::builder(url)
        .register(NopWorker)
        .tls(tls)
        .build()
        .expect("runtime");
    tokio::time::timeout(HANG, rt.run_until(std::future::pending()))
        .await
        .expect("the worker kept running on a configuration error")
}

/// The `Error::Config` message of a worker's `run`.
fn config_message(r: workq_worker::Result<()>) -> String {
    match r {
        Err(workq_worker::Error::Config(m)) => m.to_string(),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_with_a_client_certificate_and_one_is_required() {
    let server = TlsServer::start(ClientAuth::Required);
    assert!(server.plain_ping_fails(), "the server speaks only TLS");
    let certs = server.certs();
    let url = server.url();
    let wm = producer(&url, with_client_cert(certs)).await;
    let worker = InProcess::start(&url, "tls-mtls", |b| b.tls(with_client_cert(certs)));
    assert_eq!(run_one(&wm, "tls-mtls").await, WorkState::Succeeded);
    worker.stop().await;

    // Without the client certificate the server ends the handshake: a config error.
    let e = WorkManager::builder(&url)
        .tls(ca_only(certs))
        .connect()
        .await
        .expect_err("connect without a client certificate");
    assert!(e.is_config() && !e.is_transient(), "{e}");
    let fix = e.config_hint().expect("what to fix");
    assert!(fix.contains("client certificate"), "{fix}");
    let msg = config_message(run_worker_until_error(&url, ca_only(certs)).await);
    assert!(
        msg.contains("TLS") && msg.contains("client certificate"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_with_only_a_ca_file() {
    let server = TlsServer::start(ClientAuth::No);
    let certs = server.certs();
    let url = server.url();
    let wm = producer(&url, ca_only(certs)).await;
    let worker = InProcess::start(&url, "tls-ca", |b| b.tls(ca_only(certs)));
    assert_eq!(run_one(&wm, "tls-ca").await, WorkState::Succeeded);
    // The wake-up subscription is over TLS too (the server has no plain port): it
    // subscribes to the queue's wake channel.
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let channels = server.cli(&["PUBSUB", "CHANNELS"]).expect("PUBSUB");
        if channels.lines().any(|c| c.trim() == "workq:{tls-ca}:wake") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no wake subscription: {channels:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_to_the_primary_a_sentinel_names() {
    let server = TlsServer::start(ClientAuth::Required);
    let sentinel = server.start_sentinel("tlsmaster");
    let url = format!("rediss+sentinel://127.0.0.1:{}/tlsmaster", sentinel.port());
    let certs = server.certs();
    let wm = producer(&url, with_client_cert(certs)).await;
    let worker = InProcess::start(&url, "tls-sentinel", |b| b.tls(with_client_cert(certs)));
    assert_eq!(run_one(&wm, "tls-sentinel").await, WorkState::Succeeded);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_over_tls_on_every_primary_of_a_cluster() {
    let cluster = tokio::task::spawn_blocking(TlsCluster::start)
        .await
        .unwrap();
    let certs = cluster.certs();
    let url = cluster.url();
    // One queue on each primary.
    let mut queues: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let q = format!("tls-cl-{i}");
        let owner = cluster.owner_of_slot(workq_tests::cluster::queue_slot(&q));
        if queues.iter().all(|(_, o)| *o != owner) {
            queues.push((q, owner));
        }
        if queues.len() == 3 {
            break;
        }
    }
    let wm = producer(&url, with_client_cert(certs)).await;
    let mut b = WorkerRuntime::builder(&url)
        .register(NopWorker)
        .tls(with_client_cert(certs));
    for (q, _) in &queues {
        b = b.queue(q.clone());
    }
    let worker = InProcess::run(b);
    for (q, owner) in &queues {
        assert_eq!(run_one(&wm, q).await, WorkState::Succeeded, "queue {q}");
        // The job's keys are on the node that owns the queue's slot.
        let key = format!("workq:{{{q}}}:jobs");
        let held = cluster.cli(*owner, &["EXISTS", &key]).expect("EXISTS");
        assert_eq!(held.trim(), "1", "{key} on {owner}");
    }
    for (q, _) in &queues {
        let s = wm.queue_stats(q).await.expect("stats");
        assert_eq!(s.retained_succeeded, 1, "{q}: {s:?}");
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_that_did_not_sign_the_servers_certificate_is_a_config_error() {
    let server = TlsServer::start(ClientAuth::No);
    let other = OtherCa::generate();
    let wrong = ca_only(other.certs());
    let e = WorkManager::builder(&server.url())
        .tls(wrong.clone())
        .connect()
        .await
        .expect_err("connect with the wrong CA");
    assert!(e.is_config() && !e.is_transient(), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
    let fix = e.config_hint().expect("what to fix");
    assert!(fix.contains("CA"), "{fix}");
    let msg = config_message(run_worker_until_error(&server.url(), wrong).await);
    assert!(
        msg.contains("TLS certificate") && msg.contains(&format!("127.0.0.1:{}", server.port())),
        "{msg}"
    );
}

#[tokio::test]
async fn a_missing_ca_file_is_a_config_error_naming_the_file() {
    let missing = std::env::temp_dir().join("workq-no-such-dir/ca.crt");
    let tls = TlsConfig::new().ca_file(&missing);
    // Nothing listens there: the files are read before any connection.
    let url = "rediss://127.0.0.1:1";
    match WorkManager::builder(url).tls(tls.clone()).connect().await {
        Err(Error::Config(c)) => {
            assert_eq!(c.setting(), "tls");
            assert!(c.message().contains(&missing.display().to_string()), "{c}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let msg = config_message(run_worker_until_error(url, tls).await);
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    // TLS settings with a plain URL are refused too, rather than silently unused.
    match WorkManager::builder("redis://127.0.0.1:1")
        .tls(TlsConfig::new())
        .connect()
        .await
    {
        Err(Error::Config(c)) => assert_eq!(c.setting(), "tls"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_runs_jobs_over_tls_with_the_flags() {
    let server = TlsServer::start(ClientAuth::Required);
    let certs = server.certs();
    let bin = tokio::task::spawn_blocking(|| workspace_bin("workq-worker", "workq-worker"))
        .await
        .unwrap();
    let wm = producer(&server.url(), with_client_cert(certs)).await;
    let mut watch = wm.watch_queue("tls-bin").await.expect("watch");
    let path = |p: std::path::PathBuf| p.display().to_string();
    let args = [
        "--redis".to_owned(),
        server.url(),
        "--queue".to_owned(),
        "tls-bin".to_owned(),
        "--tls-ca".to_owned(),
        path(certs.ca_cert()),
        "--tls-cert".to_owned(),
        path(certs.client_cert()),
        "--tls-key".to_owned(),
        path(certs.client_key()),
    ];
    let env = [("NO_COLOR".to_owned(), "1".to_owned())];
    let mut worker = WorkerProcess::spawn(&bin, &args, &env);
    let req = OneTimeWorkRequest::builder(Noop { i: 7 })
        .queue("tls-bin")
        .build()
        .unwrap();
    let id = wm.enqueue(req).await.expect("enqueue").id;
    let info = finished(&wm, &mut watch, id).await;
    assert_eq!(info.state, WorkState::Succeeded, "{info:?}");
    worker.signal("TERM");
    let code = tokio::task::spawn_blocking(move || worker.exit_within(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}
