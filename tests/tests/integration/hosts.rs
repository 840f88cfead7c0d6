//! The scale-out issue's "Separate hosts": Redis, a producer and three workers, each on a
//! host of its own (network namespaces on a bridge: `workq_tests::netns`), talking over
//! the bridge only. A worker host whose link is cut loses its jobs to the others once its
//! lease ends; when the link comes back it is fenced out of them (Redis refuses its
//! heartbeat or its ack), carries on with new work, and no job is recorded as completed
//! twice. A SIGTERM to another worker host hands its jobs back at once, long before its
//! lease would have freed them.
//!
//! The jobs come from the producer host (the `test-worker enqueue` process). The test
//! process watches Redis (and scrapes the cut worker's `/metrics`) from the root
//! namespace, through the bridge's address there. Needs root: elsewhere it prints
//! "SKIPPED: ..." and passes.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use workq_producer::{WorkId, WorkManager, WorkState};
use workq_tests::jobs::Slept;
use workq_tests::prom_server::http_get;
use workq_tests::{Host, Hosts, WorkerProcess};

use crate::support::{info, manager, ms};

/// Slots per worker.
const SLOTS: usize = 3;
/// The lease of the workers on hosts 0 and 1 (heartbeats every 500 ms).
const LEASE_MS: u64 = 1500;
/// The lease of the worker on host 2, the one stopped with SIGTERM: far longer than the
/// test, so only a hand-back can free its jobs in time.
const LONG_LEASE_MS: u64 = 60_000;
/// How long the partition's jobs sleep: the cut worker must still be running them when
/// its link comes back (the others take them over about 2 s after the cut).
const CUT_JOBS_MS: u64 = 6000;
/// How long the partition's short job sleeps: it ends after the cut and before the others
/// take it over (the lease ends 1.5 s after the claim), and its ack, sent into the cut
/// link, reaches Redis by TCP retransmission once the link is back, to be refused.
const SHORT_JOB_MS: u64 = 1000;
/// How long the hand-back's jobs sleep.
const TERM_JOBS_MS: u64 = 4000;
/// The cut worker's HTTP endpoint port, on its own address.
const HTTP_PORT: u16 = 9464;
/// What a worker logs (at WARN) when it is fenced out of a job: a heartbeat found its
/// lease lost, or its outcome was refused.
const FENCED_LOGS: &[&str] = &[
    "lost the lease to another worker",
    "outcome not recorded: fenced",
];
const POLL: Duration = Duration::from_millis(50);

/// A `test-worker` process on a worker host.
struct Worker {
    process: WorkerProcess,
    id: String,
    pid: u32,
}

fn test_worker() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_test-worker"))
}

/// Starts a worker on worker host `i` serving "default" with Redis over the bridge (its
/// stderr kept), and waits until it runs.
fn start_worker(
    hosts: &Hosts,
    i: usize,
    lease_ms: u64,
    grace_ms: u64,
    env: &[(String, String)],
) -> Worker {
    let args = [
        hosts.redis_url(),
        "default".to_owned(),
        SLOTS.to_string(),
        lease_ms.to_string(),
        grace_ms.to_string(),
    ];
    let mut process = hosts.spawn_capturing(Host::Worker(i), test_worker(), &args, env);
    let line = process.wait_line("WORKER ");
    let mut parts = line.split_whitespace().skip(1);
    let pid: u32 = parts.next().and_then(|p| p.parse().ok()).expect("pid");
    // `ip netns exec` execs the worker itself: signals to the child reach it.
    assert_eq!(pid, process.pid(), "the worker is the spawned process");
    let id = parts.next().expect("worker id").to_owned();
    Worker { process, id, pid }
}

/// Enqueues `count` sleep jobs of `sleep_ms` from the producer host; returns their ids.
fn enqueue(hosts: &Hosts, count: usize, sleep_ms: u64) -> Vec<WorkId> {
    let out = hosts
        .command(Host::Producer, test_worker())
        .args(["enqueue", &hosts.redis_url(), &count.to_string(), "0"])
        .arg(sleep_ms.to_string())
        .output()
        .expect("run the producer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "producer failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<WorkId> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ENQUEUED "))
        .map(|id| id.parse().expect("a job id"))
        .collect();
    assert_eq!(ids.len(), count, "{stdout}");
    ids
}

/// Polls `f` until it returns `Ok`, failing the test with `what` and the last reason after
/// `within`.
async fn until<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(why) if started.elapsed() >= within => {
                panic!("timed out after {within:?} waiting for {what}: {why}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// The sum of every series of counter `name` on the `/metrics` page at `addr`.
fn counter(addr: &str, name: &str) -> Result<f64, String> {
    let (status, body) =
        http_get(addr, "/metrics").ok_or_else(|| format!("no answer at {addr}"))?;
    if status != 200 {
        return Err(format!("/metrics at {addr}: {status}"));
    }
    Ok(body
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Every job in `ids` is in `state`, or why not.
async fn all_in(wm: &WorkManager, ids: &[WorkId], state: WorkState) -> Result<(), String> {
    for &id in ids {
        let i = info(wm, id).await;
        if i.state != state {
            return Err(format!(
                "{id} is {} (attempt {})",
                i.state, i.run_attempt_count
            ));
        }
    }
    Ok(())
}

/// The (id, attempt) of every `DONE <id> <attempt>` line in `lines`.
fn done(lines: &[String]) -> Vec<(String, u32)> {
    lines
        .iter()
        .filter_map(|l| {
            let mut p = l.strip_prefix("DONE ")?.split_whitespace();
            Some((p.next()?.to_owned(), p.next()?.parse().ok()?))
        })
        .collect()
}

async fn counters(wm: &WorkManager) -> HashMap<String, u64> {
    wm.queue_stats("default").await.expect("stats").counters
}

#[tokio::test]
async fn a_cut_off_worker_host_is_fenced_out_and_a_sigtermed_one_hands_back_at_once() {
    let hosts = match Hosts::start(3) {
        Ok(h) => h,
        Err(why) => {
            eprintln!("SKIPPED: network namespaces not permitted here: {why}");
            return;
        }
    };
    let began = Instant::now();
    let wm = manager(&hosts.redis_url()).await;
    let endpoint = format!("{}:{HTTP_PORT}", hosts.addr(Host::Worker(0)));
    let mut cut = start_worker(
        &hosts,
        0,
        LEASE_MS,
        5000,
        &[
            ("WORKQ_TEST_HTTP".to_owned(), endpoint.clone()),
            ("WORKQ_LOG".to_owned(), "workq_worker=warn".to_owned()),
        ],
    );

    // A first job, so that the worker's ack loop holds an established connection.
    let warm_up = enqueue(&hosts, 1, 10);
    until(
        "the warm-up job to succeed",
        Duration::from_secs(20),
        || all_in(&wm, &warm_up, WorkState::Succeeded),
    )
    .await;

    // Part 1: the worker on host 0 holds jobs when its link is cut: two long ones, and a
    // short one that ends while it is cut off (its ack goes out into the void).
    let long = enqueue(&hosts, SLOTS - 1, CUT_JOBS_MS);
    let short = enqueue(&hosts, 1, SHORT_JOB_MS);
    let first: Vec<WorkId> = long.iter().chain(&short).copied().collect();
    let long_started = until(
        "host 0's worker to run the first jobs",
        Duration::from_secs(20),
        || {
            let (wm, first, long, cut_id) = (&wm, &first, &long, &cut.id);
            async move {
                let mut started = Vec::new();
                for &id in first {
                    let i = info(wm, id).await;
                    if i.state != WorkState::Running || i.worker.as_deref() != Some(cut_id) {
                        return Err(format!("{id}: {} on {:?}", i.state, i.worker));
                    }
                    if long.contains(&id) {
                        started.push(ms(i.started_at.expect("started")));
                    }
                }
                Ok(started.into_iter().min().expect("jobs"))
            }
        },
    )
    .await;
    hosts.cut(Host::Worker(0));
    let mut other = start_worker(&hosts, 1, LEASE_MS, 5000, &[]);
    let mut term = start_worker(&hosts, 2, LONG_LEASE_MS, 200, &[]);
    assert!(
        !hosts.reachable(Host::Worker(0), HTTP_PORT, Duration::from_millis(300)),
        "host 0 is still reachable after the cut"
    );

    // Its lease runs out and the others take the jobs over while it still runs the long
    // ones.
    until(
        "the other hosts to take the first jobs over",
        Duration::from_secs(20),
        || {
            let (wm, first, cut_id) = (&wm, &first, &cut.id);
            async move {
                for &id in first {
                    let i = info(wm, id).await;
                    assert!(
                        i.state != WorkState::Succeeded || i.run_attempt_count > 1,
                        "{id} succeeded on host 0 before its link was cut: the cut came late"
                    );
                    if i.run_attempt_count < 2 || i.worker.as_deref() == Some(cut_id) {
                        return Err(format!(
                            "{id}: {} attempt {} on {:?}",
                            i.state, i.run_attempt_count, i.worker
                        ));
                    }
                }
                Ok(())
            }
        },
    )
    .await;
    let now = ms(SystemTime::now());
    assert!(
        now + 1000 < long_started + CUT_JOBS_MS,
        "the take-over came {} ms after host 0's long attempts began: too late for them to be still running when its link comes back",
        now - long_started
    );
    let finished_cut_off = done(cut.process.lines_seen());
    assert!(
        finished_cut_off
            .iter()
            .all(|(id, _)| !long.iter().any(|l| l.to_string() == *id)),
        "host 0 finished a long attempt while cut off: {finished_cut_off:?}"
    );
    hosts.heal(Host::Worker(0));

    // Back on the network, it is fenced out of every job it lost: Redis refuses its
    // heartbeat for the job (the lease is lost: a running attempt is aborted) or the ack of
    // an attempt that finished (the short one's, which reaches Redis once the link is
    // back). It logs each, with the job's id.
    let fence_lines = until(
        "host 0's worker to be fenced out of each job it lost",
        Duration::from_secs(30),
        || {
            let (first, logs) = (&first, cut.process.stderr_seen());
            async move {
                let mut lines = Vec::new();
                for id in first.iter().map(ToString::to_string) {
                    let fenced: Vec<&String> = logs
                        .iter()
                        .filter(|l| l.contains(&id) && FENCED_LOGS.iter().any(|m| l.contains(m)))
                        .collect();
                    if fenced.is_empty() {
                        return Err(format!("no fencing line for {id}"));
                    }
                    lines.extend(fenced.into_iter().cloned());
                }
                Ok(lines)
            }
        },
    )
    .await;
    let lost = counter(&endpoint, "workq_leases_lost_total").unwrap();
    let refused = counter(&endpoint, "workq_acks_refused_total").unwrap();
    eprintln!("host 0 fenced out: {lost} leases lost, {refused} acks refused: {fence_lines:#?}");
    // Each lost job is counted once or twice (a finished attempt's lease can be found lost
    // by a heartbeat while its ack is on its way, to be refused too).
    assert!(
        lost + refused >= SLOTS as f64,
        "{lost} leases lost, {refused} acks refused"
    );
    assert!(
        done(cut.process.lines_seen())
            .iter()
            .any(|(id, a)| *id == short[0].to_string() && *a == 1),
        "host 0's worker finished the short job"
    );
    until("the first jobs to succeed", Duration::from_secs(30), || {
        all_in(&wm, &first, WorkState::Succeeded)
    })
    .await;
    for &id in &first {
        let i = info(&wm, id).await;
        assert_eq!(i.run_attempt_count, 2, "{id}");
        let err = i.last_error.clone().unwrap_or_default();
        assert!(
            err.contains(&format!(
                "lease expired: worker {} lost during attempt 1",
                cut.id
            )),
            "{id}: {err}"
        );
        let out: Slept = i.output_as().unwrap().expect("output");
        assert_eq!(out.attempt, 2);
        assert!(
            out.pid == other.pid || out.pid == term.pid,
            "{id} recorded as run by {}",
            out.pid
        );
    }

    // Part 2: every host takes new work, the one that was cut off too.
    let second = enqueue(&hosts, 3 * SLOTS, TERM_JOBS_MS);
    let holders: BTreeMap<WorkId, (String, u64)> = until(
        "every worker to hold its share of the new jobs",
        Duration::from_secs(20),
        || {
            let (wm, second) = (&wm, &second);
            async move {
                let mut holders = BTreeMap::new();
                for &id in second {
                    let i = info(wm, id).await;
                    if i.state != WorkState::Running {
                        return Err(format!("{id} is {}", i.state));
                    }
                    holders.insert(
                        id,
                        (
                            i.worker.expect("worker"),
                            ms(i.started_at.expect("started")),
                        ),
                    );
                }
                Ok(holders)
            }
        },
    )
    .await;
    for w in [&cut, &other, &term] {
        let held = holders.values().filter(|(h, _)| *h == w.id).count();
        assert_eq!(held, SLOTS, "{} holds {held} jobs: {holders:?}", w.id);
    }
    let handed: Vec<(WorkId, u64)> = holders
        .iter()
        .filter(|(_, (h, _))| *h == term.id)
        .map(|(&id, &(_, at))| (id, at))
        .collect();

    // SIGTERM to host 2's worker: past its 200 ms grace it hands its jobs back.
    let released_before = counters(&wm).await.get("released").copied().unwrap_or(0);
    term.process.signal("TERM");
    assert_eq!(
        term.process.exit_within(Duration::from_secs(15)),
        Some(0),
        "a graceful exit"
    );
    assert!(term.process.lines_seen().iter().any(|l| l == "FENCED 0"));
    let released = counters(&wm).await.get("released").copied().unwrap_or(0);
    assert_eq!(released - released_before, SLOTS as u64, "handed back");
    until("the new jobs to succeed", Duration::from_secs(30), || {
        all_in(&wm, &second, WorkState::Succeeded)
    })
    .await;
    for &(id, claimed_at) in &handed {
        let i = info(&wm, id).await;
        assert_eq!(i.run_attempt_count, 2, "{id}");
        assert_eq!(
            i.last_error.as_deref(),
            Some("handed back: worker shutting down")
        );
        let out: Slept = i.output_as().unwrap().expect("output");
        assert!(out.pid == cut.pid || out.pid == other.pid, "{id}: {out:?}");
        // The others were busy with their own share until it ended (TERM_JOBS_MS after
        // the claims), then took these at once; the 60 s lease would have held them far
        // longer.
        let restarted = ms(i.started_at.expect("started"));
        assert!(
            restarted < claimed_at + TERM_JOBS_MS + 5000,
            "{id} ran again {} ms after host 2's claim (its lease ends after {LONG_LEASE_MS} ms)",
            restarted - claimed_at
        );
    }
    // Host 0's worker completed new work after it came back.
    let by_cut: Vec<WorkId> = holders
        .iter()
        .filter(|(_, (h, _))| *h == cut.id)
        .map(|(&id, _)| id)
        .collect();
    for &id in &by_cut {
        let out: Slept = info(&wm, id).await.output_as().unwrap().expect("output");
        assert_eq!((out.attempt, out.pid), (1, cut.pid), "{id}");
    }

    // Every job succeeded once, and Redis recorded one completion each: the one of the
    // attempt whose worker printed it.
    cut.process.signal("TERM");
    other.process.signal("TERM");
    assert_eq!(cut.process.exit_within(Duration::from_secs(15)), Some(0));
    assert_eq!(other.process.exit_within(Duration::from_secs(15)), Some(0));
    let fenced_line = format!("FENCED {refused}");
    assert!(
        cut.process.lines_seen().contains(&fenced_line),
        "host 0's worker counts {refused} refused acks: {:?}",
        cut.process.lines_seen()
    );
    let c = counters(&wm).await;
    let total = (warm_up.len() + first.len() + second.len()) as u64;
    assert_eq!(c.get("succeeded"), Some(&total), "{c:?}");
    assert_eq!(c.get("lease_expired"), Some(&(SLOTS as u64)), "{c:?}");
    assert_eq!(c.get("released"), Some(&(SLOTS as u64)), "{c:?}");
    let mut runs: Vec<(u32, Vec<(String, u32)>)> = Vec::new();
    for w in [&mut cut, &mut other, &mut term] {
        let lines = done(w.process.lines_seen());
        runs.push((w.pid, lines));
    }
    let mut unrecorded = 0;
    for &id in warm_up.iter().chain(&first).chain(&second) {
        let out: Slept = info(&wm, id).await.output_as().unwrap().expect("output");
        let id = id.to_string();
        for (pid, lines) in &runs {
            for (_, attempt) in lines.iter().filter(|(d, _)| *d == id) {
                if (*pid, *attempt) == (out.pid, out.attempt) {
                    continue;
                }
                // Only a fenced attempt of the cut-off host ran to its end unrecorded.
                assert!(
                    *pid == cut.pid && *attempt == 1 && first.iter().any(|f| f.to_string() == id),
                    "{id}: attempt {attempt} of {pid} finished, but Redis recorded {out:?}"
                );
                unrecorded += 1;
            }
        }
        let recorded = runs
            .iter()
            .filter(|(pid, _)| *pid == out.pid)
            .flat_map(|(_, lines)| lines)
            .filter(|(d, a)| *d == id && *a == out.attempt)
            .count();
        assert_eq!(
            recorded, 1,
            "{id}: the recorded attempt {out:?} printed DONE {recorded} times"
        );
    }
    assert_eq!(
        unrecorded as f64, refused,
        "every attempt that finished unrecorded had its ack refused"
    );
    eprintln!("hosts test took {:?}", began.elapsed());
}
