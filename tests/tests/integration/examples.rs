//! Every example of `producer/examples/` and `worker/examples/` runs here against a test
//! Redis, and what it prints is checked against what it says it shows, so that the
//! examples cannot rot.
//!
//! The binaries are built with the cargo that runs the tests (`cargo build --workspace
//! --examples`, same profile and target dir): after `cargo test --workspace` has built
//! them that is a no-op, and `cargo test -p workq-tests` gets fresh ones too.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};

use serde::{Deserialize, Serialize};
use workq_producer::{Job, OneTimeWorkRequest, WorkState};
use workq_tests::{RedisServer, WorkerProcess, HANG};

use crate::fixture::TestContext;

/// The path of example `name`'s binary, built (once per test run) if needed.
fn example(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let status = crate::support::cargo_build(&["--workspace", "--examples"]);
        assert!(status.success(), "cargo build --examples failed");
        crate::support::profile_dir().join("examples")
    });
    dir.join(name)
}

/// Runs example `name` against `url` to its end and returns its stdout lines (it must exit
/// with status 0; a hang fails the test).
fn run(name: &str, url: &str) -> Vec<String> {
    let bin = example(name);
    let child = Command::new(&bin)
        .env("REDIS_URL", url)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(HANG) {
        Ok(out) => out.expect("wait for the example"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("example {name} did not finish");
        }
    };
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert!(
        out.status.success(),
        "example {name} failed ({}); it printed:\n{stdout}",
        out.status
    );
    lines
}

/// The lines that start with `prefix`.
fn starting<'a>(lines: &'a [String], prefix: &'a str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

#[test]
fn the_chain_example_sums_both_parents_outputs() {
    let redis = RedisServer::start();
    let lines = run("chain", &redis.url());
    let enqueued = starting(&lines, "enqueued the chain: ");
    assert_eq!(enqueued.len(), 1, "{lines:#?}");
    assert_eq!(
        enqueued[0].matches(", ").count(),
        2,
        "three ids: {lines:#?}"
    );
    // "https://a.example" is 17 bytes and "https://bb.example" 18, 100 a byte: the total
    // got both outputs, as an array.
    assert_eq!(lines[lines.len() - 2], "total is SUCCEEDED", "{lines:#?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("sum of sizes: Some(3500)"),
        "{lines:#?}"
    );
    assert!(
        starting(&lines, "total is ").iter().all(|l| [
            "total is BLOCKED",
            "total is ENQUEUED",
            "total is RUNNING",
            "total is SUCCEEDED"
        ]
        .contains(l)),
        "{lines:#?}"
    );
}

#[test]
fn the_constraints_example_renders_the_gpu_frame_on_the_gpu_worker_only() {
    let redis = RedisServer::start();
    let lines = run("constraints", &redis.url());
    assert_eq!(
        starting(&lines, "  [gpu-worker] renders frame 1").len(),
        1,
        "{lines:#?}"
    );
    assert!(
        starting(&lines, "  [cpu-worker] renders frame 1").is_empty(),
        "{lines:#?}"
    );
    // (Frame 2, plain work, may be rendered before or after the GPU frame finishes.)
    assert_eq!(
        starting(&lines, "gpu frame: ").last().copied(),
        Some("gpu frame: SUCCEEDED"),
        "{lines:#?}"
    );
}

#[test]
fn the_periodic_example_runs_three_periods_then_cancels() {
    let redis = RedisServer::start();
    let lines = run("periodic", &redis.url());
    let runs = starting(&lines, "  [worker] report run by ");
    assert_eq!(runs.len(), 3, "{lines:#?}");
    // One id for every period: the same work, run again.
    assert!(runs.iter().all(|r| *r == runs[0]), "{lines:#?}");
    for n in 1..=3 {
        let done = starting(&lines, &format!("run {n} done; next due at Some(")).len();
        assert!(done >= 1, "no 'run {n} done' line: {lines:#?}");
    }
    assert_eq!(
        lines.last().map(String::as_str),
        Some("cancel: Cancelled"),
        "{lines:#?}"
    );
}

#[test]
fn the_progress_example_follows_the_percentages_up_to_success() {
    let redis = RedisServer::start();
    let lines = run("progress", &redis.url());
    assert_eq!(
        lines.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{lines:#?}"
    );
    let mut percents = Vec::new();
    for l in &lines[..lines.len() - 1] {
        if let Some(p) = l
            .strip_prefix("RUNNING: Done { percent: ")
            .and_then(|p| p.strip_suffix(" }"))
        {
            percents.push(p.parse::<u32>().expect("percent"));
        } else {
            assert!(
                ["ENQUEUED", "RUNNING"].contains(&l.as_str()),
                "{l:?} in {lines:#?}"
            );
        }
    }
    assert!(!percents.is_empty(), "no progress seen: {lines:#?}");
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1])
            && percents.iter().all(|p| [25, 50, 75, 100].contains(p)),
        "{lines:#?}"
    );
}

#[test]
fn the_query_example_finds_cancels_and_prunes_its_five_emails() {
    let redis = RedisServer::start();
    let lines = run("query", &redis.url());
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("5 waiting with tag newsletter-"),
        "{lines:#?}"
    );
    assert_eq!(
        lines[1],
        "cancelled: CancelSummary { cancelled: 5, requested: 0, already_finished: 0 }"
    );
    assert_eq!(lines[2], "pruned 5 finished jobs of queue example-query");
}

#[test]
fn the_quickstart_example_counts_to_five_after_its_delay_and_succeeds() {
    let redis = RedisServer::start();
    let lines = run("quickstart", &redis.url());
    let id = lines[0]
        .strip_prefix("enqueued ")
        .and_then(|l| l.strip_suffix(", due in 1 s"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let counts: Vec<String> = (1..=5)
        .map(|i| format!("  [worker] {id} counts {i}"))
        .collect();
    assert_eq!(starting(&lines, "  [worker] "), counts, "{lines:#?}");
    assert!(
        lines.contains(&format!("{id} is ENQUEUED (attempt 0)")),
        "{lines:#?}"
    );
    assert_eq!(
        lines[lines.len() - 2..],
        [
            format!("{id} is SUCCEEDED (attempt 1)"),
            "output: Some(5)".to_owned()
        ],
        "{lines:#?}"
    );
}

#[test]
fn the_readme_producer_enqueues_its_delayed_count_then_cancels_it() {
    let redis = RedisServer::start();
    let lines = run("readme_producer", &redis.url());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].ends_with(" is ENQUEUED after 0 attempts"),
        "{lines:#?}"
    );
    assert_eq!(lines[1], "cancel: Cancelled");
}

#[test]
fn the_unique_example_keeps_one_job_then_appends_a_second() {
    let redis = RedisServer::start();
    let lines = run("unique", &redis.url());
    let keep = starting(&lines, "KEEP: ");
    assert_eq!(keep.len(), 3, "{lines:#?}");
    let first = keep[0]
        .strip_prefix("KEEP: Enqueued [")
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    for k in &keep[1..] {
        assert_eq!(*k, format!("KEEP: Kept [{first}]"), "{lines:#?}");
    }
    let append = starting(&lines, "APPEND: Enqueued [");
    assert_eq!(append.len(), 1, "{lines:#?}");
    assert!(append[0].ends_with("] (runs after the first)"));
    let infos: Vec<&String> = lines.iter().filter(|l| l.contains(" parents=")).collect();
    assert_eq!(infos.len(), 2, "{lines:#?}");
    let parents_of_first = format!("{first} ENQUEUED parents=[]");
    let parents_of_second = format!(" BLOCKED parents=[{first}]");
    assert!(infos.iter().any(|l| **l == parents_of_first), "{lines:#?}");
    assert!(
        infos.iter().any(|l| l.ends_with(&parents_of_second)),
        "{lines:#?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("cancelled 2 job(s)"));
}

/// The README's (and the demo's) `Count`.
#[derive(Serialize, Deserialize)]
struct Count {
    to: u32,
    step_ms: u64,
}
impl Job for Count {
    const KIND: &'static str = "count";
}

#[tokio::test]
async fn the_readme_worker_runs_a_count_job_and_stops_on_sigterm() {
    let mut ctx = TestContext::new().await;
    let mut worker = WorkerProcess::spawn(
        &example("readme_worker"),
        &[],
        &[
            ("REDIS_URL".into(), ctx.url()),
            ("NO_COLOR".into(), "1".into()),
        ],
    );
    let req = OneTimeWorkRequest::builder(Count { to: 3, step_ms: 1 })
        .build()
        .unwrap();
    ctx.wm.enqueue(req.clone()).await.unwrap();
    let info = ctx.finished(req.id()).await;
    assert_eq!(info.state, WorkState::Succeeded);
    assert_eq!(info.output_as::<u32>().unwrap(), Some(3));
    worker.signal("TERM");
    let (code, lines) = tokio::task::spawn_blocking(move || {
        let code = worker.wait();
        (code, worker.lines_seen().to_vec())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    for i in 1..=3 {
        assert!(
            lines.iter().any(|l| l.contains(&format!(
                "id={} kind=count attempt=1}}: readme_worker: count {i} ",
                req.id()
            ))),
            "no 'count {i}' log line: {lines:#?}"
        );
    }
}
