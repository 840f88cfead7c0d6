//! The web dashboard (`workq serve --token`) in a real browser: one Chromium (Debian's
//! `/usr/bin/chromium`, driven by the npm package `playwright-core`; `tests/run.sh`
//! installs both) runs every scenario of `tests/browser/dashboard.mjs` in sequence against
//! one Redis, one `test-worker` process and one `workq serve`. The script prints one JSON
//! line per scenario (`{"scenario":…,"ok":…}`), and asks this test, also by a JSON line
//! (`{"ask":…}`, answered on its stdin), for what only the Redis side can see: the
//! queue's stats, and when the worker has run a claim on the paused queue. The script
//! enqueues jobs while the page is open with the `workq` binary (`workq enqueue`).
//! Screenshots of each page go to `<target>/dashboard-screenshots/`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use workq_producer::{OneTimeWorkRequest, PeriodicWorkRequest, QueueStats, WorkManager, WorkState};
use workq_tests::jobs::{Echo, FailOnce, Nop};
use workq_tests::{RedisServer, WorkerProcess, HANG};

use crate::support::{self, spawn_worker, workspace_bin};

const QUEUE: &str = "default";
/// A queue no worker serves.
const IDLE_QUEUE: &str = "reports";
/// The input of the job whose page must show it as text (scenario 4).
const HTML: &str = "<img src=x onerror=\"window.__xss=1\"><b>bold</b>";
/// The scenarios the script runs, in order; each must print `ok: true`.
const SCENARIOS: &[&str] = &[
    "overview-counts-live",
    "retry-failed-job",
    "pause-stops-claims",
    "input-shown-as-text",
    "actions-need-token",
    "pages",
];

/// The browser the script launches.
fn chromium() -> PathBuf {
    std::env::var_os("WORKQ_TEST_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), Into::into)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails (does not skip) when what the script needs is missing.
fn check_tools() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing ({node:?}): the browser test needs Node 20 and npm (CI has them), \
         and tests/run.sh installs the rest (chromium, and playwright-core with npm ci)"
    );
    assert!(
        browser_dir()
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "tests/browser/node_modules/playwright-core is missing; tests/run.sh installs it \
         (npm ci in tests/browser)"
    );
    assert!(
        chromium().exists(),
        "{} is missing; tests/run.sh installs it (Debian package chromium)",
        chromium().display()
    );
}

/// What the script is told of a queue: what Redis says, as the dashboard should show it.
fn stats_json(s: &QueueStats) -> Value {
    let counter = |name: &str| s.counters.get(name).copied().unwrap_or(0);
    json!({
        "paused": s.paused,
        "ready": s.ready,
        "scheduled": s.scheduled,
        "running": s.running,
        "failed": s.retained_failed,
        "succeeded": s.retained_succeeded,
        "claimed": counter("claimed"),
        "succeeded_total": counter("succeeded"),
    })
}

/// Redis' clock in ms.
async fn redis_ms(wm: &WorkManager) -> u64 {
    support::redis_now(wm).await
}

/// When `worker` last ran a claim that recorded its presence (`<ms>|…`), on Redis' clock.
async fn last_seen(wm: &WorkManager, worker: &str) -> Option<u64> {
    let mut con = wm.connection().await.unwrap();
    let key = workq_common::internal::QueueKeys::new(QUEUE)
        .unwrap()
        .workers();
    let v: Option<String> = redis::cmd("HGET")
        .arg(key)
        .arg(worker)
        .query_async(&mut con)
        .await
        .unwrap();
    v.and_then(|v| v.split('|').next().and_then(|t| t.parse().ok()))
}

/// Answers one `{"ask":…}` line of the script.
async fn answer(wm: &WorkManager, worker: &str, ask: &Value) -> Value {
    match ask["ask"].as_str().unwrap_or_default() {
        // `{"ask":"claim-cycle"}`: returns once the worker has run a claim that began after
        // this ask (its presence, written by the claim script itself on Redis' clock, is
        // later than now), with the queue's stats then.
        "claim-cycle" => {
            let since = redis_ms(wm).await;
            let wait = async {
                loop {
                    if last_seen(wm, worker).await.is_some_and(|t| t > since) {
                        return;
                    }
                    // Presence is written every few seconds; look again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::time::timeout(HANG, wait)
                .await
                .expect("the worker ran no claim");
            let stats = wm.queue_stats(QUEUE).await.unwrap();
            json!({ "stats": stats_json(&stats) })
        }
        // `{"ask":"stats"}`.
        "stats" => json!({ "stats": stats_json(&wm.queue_stats(QUEUE).await.unwrap()) }),
        other => panic!("the script asked for {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    check_tools();
    let redis = RedisServer::start();
    let url = redis.url();
    let wm = support::manager(&url).await;
    let mut watch = wm.watch_queue(QUEUE).await.unwrap();
    let (_worker, worker_id, _) = spawn_worker(&url, QUEUE, 2, 2_000, 500, &[]);

    // A job that FAILED (its first run fails for good; a retry succeeds), a job whose
    // input holds HTML, periodic work for the periodic page.
    let failed = OneTimeWorkRequest::builder(FailOnce {
        note: "retried".into(),
    })
    .max_attempts(1)
    .build()
    .unwrap();
    let html = OneTimeWorkRequest::builder(Echo(BTreeMap::from([(
        "html".to_owned(),
        Value::String(HTML.to_owned()),
    )])))
    .build()
    .unwrap();
    let (failed_id, html_id) = (failed.id(), html.id());
    wm.enqueue_many(vec![failed, html]).await.unwrap();
    // Once a year (at New Year, UTC): it waits as a scheduled job all along the test.
    let periodic = PeriodicWorkRequest::cron(Nop { i: 7 }, "0 0 1 1 *")
        .build()
        .unwrap();
    wm.enqueue_periodic(periodic).await.unwrap();
    // A second queue, served by no worker, so that the overview has more than one row.
    let idle: Vec<OneTimeWorkRequest> = (0..3)
        .map(|i| {
            OneTimeWorkRequest::builder(Nop { i })
                .queue(IDLE_QUEUE)
                .build()
                .unwrap()
        })
        .collect();
    wm.enqueue_many(idle).await.unwrap();
    assert_eq!(
        support::finished(&wm, &mut watch, failed_id).await.state,
        WorkState::Failed
    );
    assert_eq!(
        support::finished(&wm, &mut watch, html_id).await.state,
        WorkState::Succeeded
    );

    let token = format!("browser-test-token-{}", std::process::id());
    let workq = workspace_bin("workq-producer", "workq");
    let mut serve = WorkerProcess::spawn_capturing(
        &workq,
        &[
            "--redis".to_owned(),
            url.clone(),
            "serve".to_owned(),
            "--http".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--token".to_owned(),
            token.clone(),
        ],
        &[],
    );
    let line = serve.wait_stderr(&["workq serve: listening on http://"]);
    let base = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|addr| format!("http://{addr}"))
        .expect("an address");

    let shots = support::profile_dir()
        .parent()
        .expect("target dir")
        .join("dashboard-screenshots");
    // Only this run's pictures (a failed scenario leaves failed-<name>.png).
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut node = Command::new("node")
        .arg(browser_dir().join("dashboard.mjs"))
        .env("WORKQ_URL", &base)
        .env("WORKQ_TOKEN", &token)
        .env("WORKQ_QUEUE", QUEUE)
        .env("WORKQ_FAILED_ID", failed_id.to_string())
        .env("WORKQ_HTML_ID", html_id.to_string())
        .env("WORKQ_BIN", &workq)
        .env("WORKQ_REDIS_URL", &url)
        .env("WORKQ_SHOTS", &shots)
        .env("WORKQ_CHROMIUM", chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start node; tests/run.sh installs it");
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = node.stdout.take().expect("stdout");
    let stderr = node.stderr.take().expect("stderr");
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = Arc::clone(&errors);
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[node] {line}");
            keep.lock().unwrap().push(line);
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut out: Vec<String> = Vec::new();
    let mut results: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let line = match tokio::time::timeout(HANG, rx.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(_) => {
                let _ = node.kill();
                panic!("the browser script hung; its stdout so far: {out:#?}");
            }
        };
        eprintln!("[node] {line}");
        out.push(line.clone());
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("ask").is_some() {
            let reply = answer(&wm, &worker_id, &v).await;
            writeln!(stdin, "{reply}").expect("write to the script");
            stdin.flush().expect("flush");
        } else if let Some(name) = v["scenario"].as_str() {
            results.insert(name.to_owned(), v.clone());
        }
    }
    drop(stdin);
    let status = node.wait().expect("wait for node");
    err_thread.join().expect("stderr reader");
    let show = || {
        format!(
            "node's stdout:\n{}\nnode's stderr:\n{}",
            out.join("\n"),
            errors.lock().unwrap().join("\n")
        )
    };
    let failed: Vec<String> = SCENARIOS
        .iter()
        .filter(|s| {
            results
                .get(**s)
                .is_none_or(|r| r["ok"] != Value::Bool(true))
        })
        .map(|s| (*s).to_owned())
        .collect();
    assert!(
        failed.is_empty(),
        "scenarios that did not pass: {failed:?}\n{}",
        show()
    );
    assert!(status.success(), "node exited with {status}\n{}", show());
    serve.signal("TERM");
    assert_eq!(serve.exit_within(HANG), Some(0), "workq serve's exit code");
}
