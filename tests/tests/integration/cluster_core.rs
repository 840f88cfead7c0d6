//! The core suite's crash, SIGTERM, fencing and Redis-restart scenarios, run once against
//! a Redis Cluster (issue 10): one six-node cluster (`RedisCluster` fixture, three
//! primaries, three replicas, every node with an append-only file fsynced on every write),
//! started once for the group; each scenario has queues of its own, on named primaries.
//!
//! - crash: as `crash::a_sigkilled_worker_s_job_is_finished_by_another_process_after_the_lease`;
//! - SIGTERM: as `crash::sigterm_hands_an_unfinished_job_back_before_its_lease_ends`;
//! - fencing: as `fencing::fenced_attempts_ignore_stale_workers`;
//! - restart: as `restart::workers_survive_a_redis_restart_and_no_acknowledged_job_is_lost`,
//!   the restart being of the whole cluster: every node SIGKILLed while enqueues and jobs
//!   are in flight, then started again on its port with its nodes.conf and its AOF.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use tokio::task::block_in_place;
use workq_common::internal::record::peek_attempts;
use workq_common::internal::scripts::{
    scripts, Ack, AckOutcome, ClaimedJob, HeartbeatArgs, LeaseStatus, Retention,
};
use workq_common::internal::QueueKeys;
use workq_producer::{BackoffPolicy, OneTimeWorkRequest, WorkId, WorkManager, WorkState};
use workq_tests::jobs::{Sleep, Slept};
use workq_tests::{Persistence, RedisCluster, HANG};

use crate::restart::enqueue_through_outages;
use crate::support::*;

fn cluster_url(c: &RedisCluster) -> String {
    let seeds: Vec<String> = c.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!("redis+cluster://{}", seeds.join(","))
}

/// The primary that owns `queue`'s keys.
fn owner(cluster: &RedisCluster, queue: &str) -> u16 {
    block_in_place(|| cluster.owner_of_key(&format!("workq:{{{queue}}}:jobs")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigterm_fencing_and_a_whole_cluster_restart_on_a_redis_cluster() {
    workq_tests::init_logs();
    let mut cluster = block_in_place(|| RedisCluster::start_with(Persistence::AofAlways));
    let url = cluster_url(&cluster);
    // Two queues per primary.
    let names = block_in_place(|| cluster.spread_queue_names(2));
    let primaries: BTreeSet<u16> = block_in_place(|| cluster.primaries()).into_iter().collect();
    let mut by_owner: HashMap<u16, Vec<String>> = HashMap::new();
    for q in &names {
        by_owner
            .entry(owner(&cluster, q))
            .or_default()
            .push(q.clone());
    }
    let owners: BTreeSet<u16> = by_owner.keys().copied().collect();
    assert_eq!(
        owners, primaries,
        "the queues spread over all three primaries"
    );
    let mut ports: Vec<u16> = primaries.iter().copied().collect();
    ports.sort_unstable();
    // Crash, SIGTERM and fencing each on a primary of its own; the restart on all three.
    let first = |p: u16| by_owner[&p][0].clone();
    let second = |p: u16| by_owner[&p][1].clone();
    let (crash_q, term_q, fence_q) = (first(ports[0]), first(ports[1]), first(ports[2]));
    let restart_qs: Vec<String> = ports.iter().map(|&p| second(p)).collect();
    for (scenario, q, p) in [
        ("crash", &crash_q, ports[0]),
        ("sigterm", &term_q, ports[1]),
        ("fencing", &fence_q, ports[2]),
    ] {
        assert_eq!(
            owner(&cluster, q),
            p,
            "{scenario}: queue {q} on primary {p}"
        );
    }
    let restart_owners: BTreeSet<u16> = restart_qs.iter().map(|q| owner(&cluster, q)).collect();
    assert_eq!(
        restart_owners, primaries,
        "restart: the queues {restart_qs:?} are on all three primaries"
    );
    tracing::info!(
        "cluster_core: crash {crash_q} on {}, sigterm {term_q} on {}, fencing {fence_q} on {}, restart {restart_qs:?}",
        ports[0],
        ports[1],
        ports[2]
    );

    let wm = WorkManager::connect(&url).await.unwrap();
    crash(&url, &wm, &crash_q).await;
    sigterm(&url, &wm, &term_q).await;
    fencing(&wm, &fence_q).await;
    restart(&mut cluster, &url, &restart_qs).await;
}

/// A real worker process SIGKILLed holding a job; another process finishes it once the
/// lease has run out (not after the hour-long backoff): attempt 2, the lease expiry as the
/// last error, one outcome counted.
async fn crash(url: &str, wm: &WorkManager, q: &str) {
    let mut watch = wm.watch_queue(q).await.unwrap();
    let (mut first, first_id, _) = spawn_worker(url, q, 4, 1000, 5000, &[]);
    let req = OneTimeWorkRequest::builder(Sleep {
        ms: 600_000,
        retry_ms: Some(10),
    })
    .queue(q)
    .backoff(BackoffPolicy::Exponential, Duration::from_secs(3600))
    .build()
    .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    first.wait_line(&format!("START {} 1", req.id()));
    let info = wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(
        info.worker.as_deref(),
        Some(first_id.as_str()),
        "crash: the first worker runs the job"
    );

    let (second, second_id, _) = spawn_worker(url, q, 4, 1000, 5000, &[]);
    first.signal("KILL");
    assert_eq!(first.wait(), None, "crash: killed by a signal");

    let info = finished(wm, &mut watch, req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded, "crash: {info:?}");
    assert_eq!(info.run_attempt_count, 2, "crash: {info:?}");
    let out: Slept = info.output_as().unwrap().unwrap();
    assert_eq!(
        out,
        Slept {
            attempt: 2,
            pid: second.pid()
        },
        "crash: the second process finished attempt 2"
    );
    let err = info.last_error.unwrap();
    assert!(
        err.contains(&format!(
            "lease expired: worker {first_id} lost during attempt 1"
        )),
        "crash: recovered through the lease, not the backoff: {err}"
    );
    let stats = wm.queue_stats(q).await.unwrap();
    assert_eq!(
        stats.counters.get("succeeded"),
        Some(&1),
        "crash: {stats:?}"
    );
    assert_eq!(
        stats.counters.get("lease_expired"),
        Some(&1),
        "crash: {stats:?}"
    );
    assert!(!second_id.is_empty());
}

/// SIGTERM makes a worker hand its unfinished job back at once: another process runs
/// attempt 2 long before the 10-minute lease would have ended.
async fn sigterm(url: &str, wm: &WorkManager, q: &str) {
    let mut watch = wm.watch_queue(q).await.unwrap();
    let lease_ms = 600_000;
    let (mut first, _, _) = spawn_worker(url, q, 4, lease_ms, 300, &[]);
    let req = OneTimeWorkRequest::builder(Sleep {
        ms: 600_000,
        retry_ms: Some(10),
    })
    .queue(q)
    .build()
    .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    first.wait_line(&format!("START {} 1", req.id()));
    let started_first = wm
        .get_work_info(req.id())
        .await
        .unwrap()
        .unwrap()
        .started_at
        .unwrap();

    let (second, _, _) = spawn_worker(url, q, 4, lease_ms, 300, &[]);
    first.signal("TERM");
    assert_eq!(first.wait(), Some(0), "sigterm: a graceful exit");
    assert!(
        first.lines_seen().iter().any(|l| l.starts_with("EXIT ")),
        "sigterm: the worker said EXIT"
    );

    let info = finished(wm, &mut watch, req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded, "sigterm: {info:?}");
    assert_eq!(info.run_attempt_count, 2, "sigterm: {info:?}");
    assert_eq!(
        info.last_error.as_deref(),
        Some("handed back: worker shutting down"),
        "sigterm: {info:?}"
    );
    let out: Slept = info.output_as().unwrap().unwrap();
    assert_eq!(
        out.pid,
        second.pid(),
        "sigterm: the second process ran attempt 2"
    );
    assert!(
        ms(info.started_at.unwrap()) < ms(started_first) + lease_ms,
        "sigterm: the second attempt started only after the first lease ended"
    );
}

async fn claim_as(
    wm: &WorkManager,
    q: &str,
    worker: &str,
    lease: Duration,
) -> (Option<ClaimedJob>, u64, u64) {
    let r = claim_by_hand_in(wm, q, worker, "", lease).await;
    let next = r.next_due_ms.unwrap_or(r.now_ms + 1);
    (r.jobs.into_iter().next(), r.now_ms, next)
}

/// Worker A's lease runs out and B claims the job (attempt 2): A's heartbeat and ack are
/// refused, B's go through. The scripts are called by hand on the manager's (Cluster)
/// connection, which routes them to the queue's primary. No watch on this queue: its
/// event stream stays off, as in the single-server test.
async fn fencing(wm: &WorkManager, q: &str) {
    let keys = QueueKeys::new(q).unwrap();
    let req = OneTimeWorkRequest::builder(Sleep::ms(1))
        .queue(q)
        .backoff(BackoffPolicy::Linear, Duration::from_millis(1))
        .build()
        .unwrap();
    wm.enqueue(req.clone()).await.unwrap();
    let id = req.id().to_string();

    let (a, ..) = claim_as(wm, q, "A", Duration::from_millis(300)).await;
    let a = a.expect("fencing: A claims the job");
    let a_token = peek_attempts(&a.record).unwrap();
    assert_eq!(a_token, 1, "fencing: A's attempt");

    // B keeps looking; once A's lease has run out, B's claim requeues and takes it.
    let b = loop {
        let (job, now, next) = claim_as(wm, q, "B", Duration::from_secs(30)).await;
        if let Some(j) = job {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(next.saturating_sub(now).max(1))).await;
    };
    let b_token = peek_attempts(&b.record).unwrap();
    assert_eq!(b_token, 2, "fencing: B's attempt");

    let mut con = wm.connection().await.unwrap();
    assert!(con.is_cluster(), "fencing: a Cluster connection");
    let (a_held, b_held) = ([(id.clone(), a_token)], [(id.clone(), b_token)]);
    let heartbeat = |worker, held| HeartbeatArgs {
        worker,
        lease: Duration::from_secs(30),
        known_until: 0,
        keep_failed: Duration::from_secs(60),
        labels: "",
        held,
    };
    let hb = scripts()
        .heartbeat(&mut con, &keys, &heartbeat("A", &a_held))
        .await
        .unwrap();
    assert_eq!(hb, [LeaseStatus::Lost], "fencing: A's heartbeat is refused");
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
    assert_eq!(refused, [false], "fencing: A's ack is refused");
    let info = wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.run_attempt_count),
        (WorkState::Running, 2),
        "fencing: still B's attempt after A's ack"
    );
    assert_eq!(info.worker.as_deref(), Some("B"), "fencing: {info:?}");

    let hb = scripts()
        .heartbeat(&mut con, &keys, &heartbeat("B", &b_held))
        .await
        .unwrap();
    assert_eq!(
        hb,
        [LeaseStatus::Extended],
        "fencing: B's heartbeat goes through"
    );
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
    assert_eq!(applied, [true], "fencing: B's ack goes through");
    let info = wm.get_work_info(req.id()).await.unwrap().unwrap();
    assert_eq!(info.state, WorkState::Succeeded, "fencing: {info:?}");
    assert_eq!(
        info.output.unwrap().decode::<String>().unwrap(),
        "B",
        "fencing: the output is B's"
    );
    let err = info.last_error.unwrap();
    assert!(
        err.contains("lease expired: worker A lost during attempt 1"),
        "fencing: {err}"
    );
}

const RESTART_JOBS: usize = 3000;

/// Every node of the cluster SIGKILLed while a producer enqueues (to queues on all three
/// primaries) and worker processes run jobs; each node started again on its port with
/// its nodes.conf and AOF. The producer and the workers carry on without restart, and
/// every enqueue the cluster acknowledged completes.
async fn restart(cluster: &mut RedisCluster, url: &str, queues: &[String]) {
    let wm = WorkManager::builder(url)
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let mut watches = Vec::new();
    for q in queues {
        watches.push(wm.watch_queue(q).await.unwrap());
    }
    // One worker process per queue (a test-worker serves one queue).
    let mut workers: Vec<_> = queues
        .iter()
        .map(|q| spawn_worker(url, q, 16, 2000, 5000, &[]).0)
        .collect();

    let reqs: Vec<_> = (0..RESTART_JOBS)
        .map(|i| {
            OneTimeWorkRequest::builder(Sleep::ms(2))
                .queue(&queues[i % queues.len()])
                .build()
                .unwrap()
        })
        .collect();
    let queue_of: HashMap<WorkId, usize> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id(), i % queues.len()))
        .collect();
    let (tx, mut progress) = tokio::sync::watch::channel(0);
    let producer = tokio::spawn(enqueue_through_outages(wm.clone(), reqs, tx));

    progress.wait_for(|n| *n >= RESTART_JOBS / 3).await.unwrap();
    block_in_place(|| cluster.kill_all());
    // Acknowledged when every node was dead: the rest is enqueued through the outage.
    let at_kill = *progress.borrow();
    let down = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await; // an outage, not a blip
    block_in_place(|| cluster.start_all());
    tracing::info!(
        "cluster_core restart: {at_kill} acknowledged before the kill, every node back and the cluster ok after {:?}",
        down.elapsed()
    );

    let acked = tokio::time::timeout(HANG, producer)
        .await
        .expect("restart: the producer did not finish")
        .unwrap();
    assert_eq!(
        acked.len(),
        RESTART_JOBS,
        "restart: every batch acknowledged"
    );
    assert!(
        at_kill < RESTART_JOBS,
        "restart: the cluster went down while enqueues were in flight"
    );
    let mut pending: Vec<HashSet<WorkId>> = vec![HashSet::new(); queues.len()];
    for (id, info) in acked.iter().zip(wm.get_work_infos(&acked).await.unwrap()) {
        let info = info.unwrap_or_else(|| panic!("restart: acknowledged job {id} was lost"));
        if info.state != WorkState::Succeeded {
            pending[queue_of[id]].insert(*id);
        }
    }
    for ((q, watch), pending) in queues.iter().zip(&mut watches).zip(&mut pending) {
        while !pending.is_empty() {
            let Ok(ev) = tokio::time::timeout(HANG, watch.next()).await else {
                let stats = wm.queue_stats(q).await.unwrap();
                let left: Vec<WorkId> = pending.iter().take(3).copied().collect();
                let infos = wm.get_work_infos(&left).await;
                panic!(
                    "restart: jobs of {q} stopped completing: {} left, {stats:?}, e.g. {infos:?}",
                    pending.len()
                );
            };
            let ev = ev.unwrap();
            if ev.state == WorkState::Succeeded {
                pending.remove(&ev.id);
            }
        }
    }
    let infos = wm.get_work_infos(&acked).await.unwrap();
    assert!(
        infos
            .iter()
            .all(|i| i.as_ref().is_some_and(|i| i.state == WorkState::Succeeded)),
        "restart: every acknowledged job succeeded"
    );
    for w in &mut workers {
        let alive = w.lines_seen().iter().all(|l| !l.starts_with("EXIT"));
        assert!(alive, "restart: a worker exited during the outage");
    }
}
