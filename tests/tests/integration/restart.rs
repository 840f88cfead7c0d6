use std::collections::HashSet;
use std::time::Duration;

use workq_producer::{OneTimeWorkRequest, WorkId, WorkManager, WorkState};
use workq_tests::jobs::Sleep;
use workq_tests::{Persistence, RedisServer, HANG};

use crate::support::*;

const JOBS: usize = 3000;
const BATCH: usize = 100;

/// Enqueues `reqs` batch by batch; a batch that fails is sent again with the same ids
/// (enqueue is idempotent) until Redis acknowledges it. Sends the number acknowledged so
/// far after each batch.
pub(crate) async fn enqueue_through_outages(
    wm: WorkManager,
    reqs: Vec<OneTimeWorkRequest>,
    progress: tokio::sync::watch::Sender<usize>,
) -> Vec<WorkId> {
    let mut acked = Vec::new();
    for batch in reqs.chunks(BATCH) {
        loop {
            match wm.enqueue_many(batch.to_vec()).await {
                Ok(out) => {
                    acked.extend(out.iter().map(|e| e.id));
                    break;
                }
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => panic!("enqueue failed for a reason other than the outage: {e}"),
            }
        }
        progress.send_replace(acked.len());
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_a_redis_restart_and_no_acknowledged_job_is_lost() {
    let mut redis = RedisServer::start_with(Persistence::AofAlways);
    let url = redis.url();
    let wm = WorkManager::builder(&url)
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let mut watch = wm.watch_queue("default").await.unwrap();
    let mut workers: Vec<_> = (0..2)
        .map(|_| spawn_worker(&url, "default", 16, 2000, 5000, &[]).0)
        .collect();

    let reqs: Vec<_> = (0..JOBS)
        .map(|_| OneTimeWorkRequest::builder(Sleep::ms(2)).build().unwrap())
        .collect();
    let (tx, mut progress) = tokio::sync::watch::channel(0);
    let producer = tokio::spawn(enqueue_through_outages(wm.clone(), reqs, tx));

    // Kill Redis (no shutdown save) while enqueues and jobs are in flight; bring it back
    // on the same port with its append-only file.
    progress.wait_for(|n| *n >= JOBS / 3).await.unwrap();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(300)).await; // an outage, not a blip
    redis.restart();

    let acked = tokio::time::timeout(HANG, producer).await.unwrap().unwrap();
    assert_eq!(acked.len(), JOBS);
    let mut pending: HashSet<WorkId> = acked.iter().copied().collect();
    // Jobs that had already finished before the watch resumed are checked directly.
    for (id, info) in acked.iter().zip(wm.get_work_infos(&acked).await.unwrap()) {
        let info = info.unwrap_or_else(|| panic!("acknowledged job {id} was lost"));
        if info.state == WorkState::Succeeded {
            pending.remove(id);
        }
    }
    while !pending.is_empty() {
        let Ok(ev) = tokio::time::timeout(HANG, watch.next()).await else {
            let stats = wm.queue_stats("default").await.unwrap();
            let left: Vec<_> = pending.iter().take(3).collect();
            let infos = wm
                .get_work_infos(&left.iter().map(|i| **i).collect::<Vec<_>>())
                .await;
            panic!(
                "jobs stopped completing: {} left, {stats:?}, e.g. {infos:?}",
                pending.len()
            );
        };
        let ev = ev.unwrap();
        if ev.state == WorkState::Succeeded {
            pending.remove(&ev.id);
        }
    }
    let infos = wm.get_work_infos(&acked).await.unwrap();
    assert!(infos
        .iter()
        .all(|i| i.as_ref().is_some_and(|i| i.state == WorkState::Succeeded)));
    for w in &mut workers {
        let alive = w.lines_seen().iter().all(|l| !l.starts_with("EXIT"));
        assert!(alive, "a worker exited during the outage");
    }
}
