//! Redis Cluster (`redis+cluster://`): twelve queues spread over three primaries, drained by
//! workers that serve all of them, through two primary failovers (one with the producer's
//! durability setting, one without), and a queue's slot migrated to another primary while
//! its jobs run. Real six-node cluster (`RedisCluster` fixture: three primaries, three
//! replicas, node timeout 1 s).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use workq_producer::{Durability, OneTimeWorkRequest, WorkId, WorkManager, WorkQuery, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::{RedisCluster, HANG};

use crate::support::InProcess;

fn cluster_url(c: &RedisCluster) -> String {
    let seeds: Vec<String> = c.ports().iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!("redis+cluster://{}", seeds.join(","))
}

/// A worker runtime serving every one of `queues`.
fn worker(url: &str, queues: &[String]) -> InProcess {
    let rest: Vec<String> = queues[1..].to_vec();
    InProcess::start(url, &queues[0], move |mut b| {
        for q in rest {
            b = b.queue(q);
        }
        b.lease(Duration::from_secs(3)).concurrency(32)
    })
}

fn nop(i: u64, queue: &str) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Nop { i })
        .queue(queue)
        .build()
        .unwrap()
}

/// Enqueues `reqs` in batches of 100, retrying a batch while the cluster fails over (the
/// same requests: enqueue is idempotent by id); returns the ids Redis acknowledged.
async fn enqueue_acknowledged(wm: &WorkManager, reqs: Vec<OneTimeWorkRequest>) -> Vec<WorkId> {
    let (acked, _) = enqueue_until(wm, reqs, None, &AtomicUsize::new(0)).await;
    acked
}

/// Like [`enqueue_acknowledged`], one batch of 100 at a time until `stop` is set (if
/// given); returns the ids acknowledged, and those whose enqueue was applied but not
/// durable (`Error::NotDurable`: not acknowledged, not retried).
async fn enqueue_until(
    wm: &WorkManager,
    reqs: Vec<OneTimeWorkRequest>,
    stop: Option<Arc<AtomicBool>>,
    count: &AtomicUsize,
) -> (Vec<WorkId>, Vec<WorkId>) {
    let mut acked = Vec::with_capacity(reqs.len());
    let mut not_durable = Vec::new();
    for batch in reqs.chunks(100) {
        if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let deadline = Instant::now() + HANG * 3;
        loop {
            match wm.enqueue_many(batch.to_vec()).await {
                Ok(_) => {
                    acked.extend(batch.iter().map(OneTimeWorkRequest::id));
                    count.fetch_add(batch.len(), Ordering::Relaxed);
                    break;
                }
                Err(workq_producer::Error::NotDurable(_)) => {
                    not_durable.extend(batch.iter().map(OneTimeWorkRequest::id));
                    break;
                }
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("enqueue: {e}"),
            }
        }
    }
    (acked, not_durable)
}

/// Succeeded jobs over `queues` (the scripts' counters).
async fn succeeded(wm: &WorkManager, queues: &[String]) -> u64 {
    let mut n = 0;
    for q in queues {
        loop {
            match wm.queue_stats(q).await {
                Ok(s) => {
                    n += s.counters.get("succeeded").copied().unwrap_or(0);
                    break;
                }
                Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("queue_stats: {e}"),
            }
        }
    }
    n
}

/// Waits until every one of `ids` has SUCCEEDED or is gone; returns (gone, attempts of
/// each SUCCEEDED one).
async fn settle(wm: &WorkManager, ids: &[WorkId]) -> (usize, HashMap<WorkId, u32>) {
    let deadline = Instant::now() + HANG * 12;
    let mut pending: BTreeSet<WorkId> = ids.iter().copied().collect();
    let mut attempts = HashMap::new();
    loop {
        let chunk: Vec<WorkId> = pending.iter().copied().collect();
        let mut found: BTreeSet<WorkId> = BTreeSet::new();
        for part in chunk.chunks(1000) {
            match wm
                .get_work_infos_by_query(&WorkQuery::from_ids(part.iter().copied()).limit(1000))
                .await
            {
                Ok(infos) => {
                    for i in infos {
                        found.insert(i.id);
                        if i.state == WorkState::Succeeded {
                            attempts.insert(i.id, i.run_attempt_count);
                            pending.remove(&i.id);
                        }
                    }
                }
                Err(e) if e.is_transient() => {}
                Err(e) => panic!("query: {e}"),
            }
        }
        // What no queue has at all is gone, once the queues answered for it.
        let gone: Vec<WorkId> = chunk
            .iter()
            .copied()
            .filter(|i| !found.contains(i))
            .collect();
        if pending.iter().all(|i| gone.contains(i)) {
            return (pending.len(), attempts);
        }
        assert!(
            Instant::now() < deadline,
            "{} jobs never finished (e.g. {:?})",
            pending.len(),
            pending.iter().next()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_queues_on_three_primaries_drain_30000_jobs_through_two_primary_failovers() {
    let mut cluster = tokio::task::block_in_place(RedisCluster::start);
    let queues = cluster.spread_queue_names(4);
    assert_eq!(queues.len(), 12);
    let owners: BTreeSet<u16> = queues
        .iter()
        .map(|q| cluster.owner_of_key(&format!("workq:{{{q}}}:jobs")))
        .collect();
    let primaries: BTreeSet<u16> = cluster.primaries().into_iter().collect();
    assert_eq!(
        owners, primaries,
        "the queues spread over all three primaries"
    );
    let url = cluster_url(&cluster);
    let wm = WorkManager::connect(&url).await.unwrap();
    let durable = WorkManager::builder(&url)
        .durability(Durability::replicas(1, Duration::from_secs(2)))
        .connect()
        .await
        .unwrap();
    let reqs = |from: u64, n: u64| -> Vec<OneTimeWorkRequest> {
        (from..from + n)
            .map(|i| nop(i, &queues[(i % 12) as usize]))
            .collect()
    };
    let mut all = enqueue_acknowledged(&wm, reqs(0, 28_000)).await;
    let mut unpromised = Vec::new();
    let workers = [worker(&url, &queues), worker(&url, &queues)];

    // Two rounds: a primary SIGKILLed while a producer enqueues (until a little after
    // the failover) and the workers drain; first without the durability setting, then
    // with it.
    let mut lost_by_round = Vec::new();
    for (round, producer) in [(1u64, &wm), (2, &durable)] {
        let deadline = Instant::now() + HANG * 6;
        while succeeded(&wm, &queues).await < 6_000 * round {
            assert!(Instant::now() < deadline, "the drain stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A primary that still has a replica to take over (the first round's promoted
        // replica has none).
        let victim = cluster
            .primaries()
            .into_iter()
            .find(|&p| !cluster.replicas_of(p).is_empty())
            .expect("a primary with a replica");
        // The producer enqueues to the victim's queues: those whose writes a failover can
        // lose (and, after the first round, the queues of a primary without a replica
        // could never be durable).
        let at_risk: Vec<String> = queues
            .iter()
            .filter(|q| cluster.owner_of_key(&format!("workq:{{{q}}}:jobs")) == victim)
            .cloned()
            .collect();
        assert!(!at_risk.is_empty());
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let producing = {
            let producer = producer.clone();
            let count = Arc::clone(&count);
            let reqs: Vec<OneTimeWorkRequest> = (round * 100_000..round * 100_000 + 20_000)
                .map(|i| nop(i, &at_risk[i as usize % at_risk.len()]))
                .collect();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { enqueue_until(&producer, reqs, Some(stop), &count).await })
        };
        // Kill once the producer has had a thousand jobs acknowledged by the victim.
        let deadline = Instant::now() + HANG * 3;
        while count.load(Ordering::Relaxed) < 1_000 {
            assert!(Instant::now() < deadline, "the producer made no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::task::block_in_place(|| {
            cluster.kill_primary(victim);
            cluster.wait_for_failover(victim);
        });
        // A few more batches on the new primary, then stop.
        let at_failover = succeeded(&wm, &queues).await;
        let deadline = Instant::now() + HANG * 3;
        while succeeded(&wm, &queues).await < at_failover + 500 {
            assert!(Instant::now() < deadline, "no progress after the failover");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let (acked, not_durable) = producing.await.unwrap();
        let (lost, _) = settle(&wm, &acked).await;
        lost_by_round.push((victim, lost, acked.len(), not_durable.len()));
        all.extend(acked);
        unpromised.extend(not_durable);
    }
    let (lost_total, attempts) = settle(&wm, &all).await;
    for w in workers {
        w.stop().await;
    }
    let (unpromised_lost, _) = settle(&wm, &unpromised).await;
    let (without, with) = (lost_by_round[0], lost_by_round[1]);
    eprintln!(
        "cluster failovers: without durability primary {} killed, {} of {} acknowledged enqueues lost; \
         with Durability::replicas(1, 2 s) primary {} killed, {} of {} acknowledged lost \
         ({} more returned NotDurable, {} of those lost); {} of {} jobs SUCCEEDED, {} ran more \
         than once (at least once: a lost ack or claim)",
        without.0,
        without.1,
        without.2,
        with.0,
        with.1,
        with.2,
        with.3,
        unpromised_lost,
        attempts.len(),
        all.len(),
        attempts.values().filter(|&&a| a > 1).count()
    );
    assert_eq!(with.1, 0, "a durable enqueue was lost");
    assert_eq!(attempts.len() + lost_total, all.len());
    assert!(all.len() >= 30_000, "{} jobs", all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_whose_slot_migrates_while_its_jobs_run_loses_nothing_and_runs_nothing_twice() {
    const N: u64 = 3_000;
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    let queue = cluster.spread_queue_names(1)[0].clone();
    let url = cluster_url(&cluster);
    let wm = WorkManager::connect(&url).await.unwrap();
    let reqs: Vec<OneTimeWorkRequest> = (0..N).map(|i| nop(i, &queue)).collect();
    let ids = enqueue_acknowledged(&wm, reqs).await;
    let queues = vec![queue.clone()];
    let w = worker(&url, &queues);
    let deadline = Instant::now() + HANG * 3;
    while succeeded(&wm, &queues).await < N / 10 {
        assert!(Instant::now() < deadline, "the drain never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let key = format!("workq:{{{queue}}}:jobs");
    let from = cluster.owner_of_key(&key);
    let to = *cluster
        .primaries()
        .iter()
        .find(|&&p| p != from)
        .expect("another primary");
    let slot = cluster.keyslot(&key);
    let moved = Arc::new(Mutex::new(None));
    tokio::task::block_in_place(|| {
        let started = Instant::now();
        cluster.migrate_slot(slot, from, to);
        *moved.lock().unwrap() = Some(started.elapsed());
    });
    assert_eq!(cluster.owner_of_key(&key), to);
    let done_at_move = succeeded(&wm, &queues).await;
    let (lost, attempts) = settle(&wm, &ids).await;
    w.stop().await;
    eprintln!(
        "slot {slot} of queue {queue} moved {from} -> {to} in {:?} with {done_at_move} of {N} done",
        moved.lock().unwrap()
    );
    assert_eq!(lost, 0, "jobs lost in the migration");
    let twice: Vec<_> = attempts.iter().filter(|(_, &a)| a != 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
    assert_eq!(attempts.len() as u64, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_enqueue_waits_for_the_replica_of_its_queues_primary() {
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    let queues = cluster.spread_queue_names(1);
    let url = cluster_url(&cluster);
    let durable = WorkManager::builder(&url)
        .durability(Durability::replicas(1, Duration::from_secs(2)))
        .connect()
        .await
        .unwrap();
    for q in &queues {
        let req = nop(1, q);
        let id = req.id();
        durable.enqueue(req).await.unwrap();
        // Once WAIT said so, the replica of the queue's primary has the job.
        let primary = cluster.owner_of_key(&format!("workq:{{{q}}}:jobs"));
        let replica = cluster.replicas_of(primary)[0];
        let mut con = cluster
            .node_client(replica)
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("READONLY").query_async(&mut con).await.unwrap();
        let there: bool = redis::cmd("HEXISTS")
            .arg(format!("workq:{{{q}}}:jobs"))
            .arg(id.to_string())
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(
            there,
            "the replica {replica} of {primary} lacks {id} of {q}"
        );
    }
}
