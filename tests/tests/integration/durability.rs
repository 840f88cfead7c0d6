//! Durable writes (`Durability`): a producer's enqueue waits for the replicas and, when
//! they do not answer in time, returns `Error::NotDurable` while the job exists on the
//! primary; a worker's claims and acks wait too, and a shortfall is counted and logged
//! while the work goes on. Real primary and replica (`REPLICAOF`), the replica frozen with
//! SIGSTOP to make it miss the timeout.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use workq_producer::{Durability, Error, OneTimeWorkRequest, WorkManager, WorkState};
use workq_tests::jobs::{Nop, NopWorker};
use workq_tests::{RedisServer, HANG};
use workq_worker::WorkerRuntime;

use crate::support::finished;

/// A primary and a replica that has caught up with it.
async fn primary_and_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    let mut con = replica
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port())
        .query_async(&mut con)
        .await
        .unwrap();
    let deadline = Instant::now() + HANG;
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut con)
            .await
            .unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never synced: {info}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (primary, replica)
}

async fn producer(url: &str, durability: Durability) -> WorkManager {
    WorkManager::builder(url)
        .durability(durability)
        .connect()
        .await
        .unwrap()
}

fn nop(i: u64) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Nop { i }).build().unwrap()
}

#[tokio::test]
async fn an_enqueue_returns_once_the_replica_has_the_job() {
    let (primary, replica) = primary_and_replica().await;
    let wm = producer(&primary.url(), Durability::replicas(1, HANG)).await;
    let req = nop(1);
    let id = req.id();
    wm.enqueue(req).await.unwrap();
    // WAIT returned 1: the replica has the record now, without waiting for it.
    let mut con = replica
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let there: bool = con
        .hexists("workq:{default}:jobs", id.to_string())
        .await
        .unwrap();
    assert!(
        there,
        "the replica lacks the job the enqueue reported durable"
    );
}

#[tokio::test]
async fn an_enqueue_the_replicas_miss_is_not_durable_and_the_job_exists_on_the_primary() {
    let (primary, replica) = primary_and_replica().await;
    let wm = producer(
        &primary.url(),
        Durability::replicas(1, Duration::from_millis(200)),
    )
    .await;
    replica.pause();
    let req = nop(1);
    let id = req.id();
    let err = wm.enqueue(req).await.unwrap_err();
    replica.resume();
    let Error::NotDurable(n) = &err else {
        panic!("expected NotDurable, got {err:?}");
    };
    assert_eq!((n.replicas, n.wanted, n.what), (0, 1, "enqueue"));
    assert!(!err.is_transient() && !err.is_config(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("reached 0 of 1 replicas") && msg.contains("may be lost"),
        "{msg}"
    );
    let info = wm.get_work_info(id).await.unwrap().expect("the job exists");
    assert_eq!(info.state, WorkState::Enqueued);
    // Once the replica has caught up (a durable enqueue returns when it has), more
    // replicas than there are: never durable, whatever the wait.
    producer(&primary.url(), Durability::replicas(1, HANG))
        .await
        .enqueue(nop(3))
        .await
        .unwrap();
    let wm = producer(
        &primary.url(),
        Durability::replicas(2, Duration::from_millis(100)),
    )
    .await;
    let Err(Error::NotDurable(n)) = wm.enqueue(nop(2)).await else {
        panic!("two replicas asked of one");
    };
    assert_eq!((n.replicas, n.wanted), (1, 2));
}

#[tokio::test]
async fn a_zero_timeout_and_waitaof_on_a_server_without_it_are_configuration_errors() {
    let (primary, _replica) = primary_and_replica().await;
    let err = WorkManager::builder(&primary.url())
        .durability(Durability::replicas(1, Duration::ZERO))
        .connect()
        .await
        .unwrap_err();
    assert!(
        err.is_config() && err.to_string().contains("durability"),
        "{err}"
    );
    let err = WorkerRuntime::builder(&primary.url())
        .register(NopWorker)
        .durability(Durability::replicas(1, Duration::ZERO))
        .build()
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    // WAITAOF came with Redis 7.2.
    let mut con = primary
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .unwrap();
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or_default()
        .to_owned();
    let wm = producer(
        &primary.url(),
        Durability::replicas_aof(false, 1, Duration::from_millis(200)),
    )
    .await;
    let r = wm.enqueue(nop(1)).await;
    let old = {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) < (7, 2)
    };
    if old {
        let err = r.unwrap_err();
        assert!(
            err.is_config() && err.to_string().contains("7.2"),
            "Redis {version}: {err}"
        );
    } else {
        // The replica has no AOF: it never acknowledges an fsync.
        assert!(
            matches!(r, Err(Error::NotDurable(_))),
            "Redis {version}: {r:?}"
        );
    }
}

/// The value of `workq_writes_not_durable_total{script}` in a worker's registry.
fn not_durable(metrics: &workq_worker::Metrics, script: &str) -> f64 {
    metrics
        .registry()
        .gather()
        .iter()
        .filter(|f| f.name() == "workq_writes_not_durable_total")
        .flat_map(|f| f.get_metric())
        .find(|m| m.get_label().iter().any(|l| l.value() == script))
        .map_or(-1.0, |m| m.get_counter().get_value())
}

#[tokio::test]
async fn a_worker_whose_replica_misses_the_timeout_counts_it_and_finishes_the_work() {
    let (primary, replica) = primary_and_replica().await;
    let wm = WorkManager::connect(&primary.url()).await.unwrap();
    let mut watch = wm.watch_queue("default").await.unwrap();
    let rt = WorkerRuntime::builder(&primary.url())
        .register(NopWorker)
        .durability(Durability::replicas(1, Duration::from_millis(100)))
        .build()
        .unwrap();
    let metrics = rt.metrics().clone();
    assert_eq!(
        (not_durable(&metrics, "claim"), not_durable(&metrics, "ack")),
        (0.0, 0.0),
        "both series exist at zero"
    );
    replica.pause();
    let req = nop(1);
    let id = req.id();
    wm.enqueue(req).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(rt.run_until(async {
        let _ = rx.await;
    }));
    let info = finished(&wm, &mut watch, id).await;
    assert_eq!(info.state, WorkState::Succeeded);
    assert!(
        not_durable(&metrics, "claim") >= 1.0,
        "the claim waited first"
    );
    // The ack's WAIT follows the ack's reply, which made the job SUCCEEDED.
    let deadline = Instant::now() + HANG;
    while not_durable(&metrics, "ack") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the ack's shortfall was never counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replica.resume();
    let _ = tx.send(());
    run.await.unwrap().unwrap();
}
