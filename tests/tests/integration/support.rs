use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workq_producer::{OneTimeWorkRequest, WorkId, WorkInfo, WorkManager, WorkState};
use workq_tests::jobs::{
    Echo, EchoWorker, Emit, EmitWorker, FailWorker, NopWorker, ProbeWorker, ProgressWorker,
    SleepWorker,
};
use workq_tests::HANG;
use workq_worker::WorkerRuntime;

/// A worker runtime running inside the test process.
pub(crate) struct InProcess {
    stop: Option<oneshot::Sender<()>>,
    join: Option<JoinHandle<workq_worker::Result<()>>>,
}

impl InProcess {
    pub(crate) fn start(
        url: &str,
        queue: &str,
        configure: impl FnOnce(workq_worker::WorkerRuntimeBuilder) -> workq_worker::WorkerRuntimeBuilder,
    ) -> Self {
        let b = WorkerRuntime::builder(url)
            .queue(queue)
            .register(SleepWorker)
            .register(FailWorker)
            .register(NopWorker)
            .register(EmitWorker)
            .register(EchoWorker)
            .register(ProbeWorker)
            .register(ProgressWorker);
        Self::run(configure(b))
    }

    /// Runs a runtime configured entirely by the caller (its kinds too).
    pub(crate) fn run(builder: workq_worker::WorkerRuntimeBuilder) -> Self {
        workq_tests::init_logs();
        let rt = builder.build().expect("runtime");
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(rt.run_until(async {
            let _ = rx.await;
        }));
        InProcess {
            stop: Some(tx),
            join: Some(join),
        }
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(j) = self.join.take() {
            j.await.expect("runtime task").expect("runtime");
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(j) = &self.join {
            j.abort();
        }
    }
}

pub(crate) async fn manager(url: &str) -> WorkManager {
    WorkManager::connect(url).await.expect("connect")
}

/// Waits (on the queue's event stream) until `id` is in a finished state, then returns
/// its info. `watch` must have been started before the work could finish. An event may be
/// stale (an earlier run's, left unread when that run was found finished by its info, as
/// a job retried or run again is): the job is finished when its info says so.
pub(crate) async fn finished(
    wm: &WorkManager,
    watch: &mut workq_producer::QueueWatch,
    id: WorkId,
) -> WorkInfo {
    tokio::time::timeout(HANG, async {
        loop {
            let info = wm.get_work_info(id).await.expect("info");
            if let Some(i) = info.filter(|i| i.state.is_finished()) {
                return i;
            }
            watch
                .wait_for(|e| e.id == id && e.state.is_finished())
                .await
                .expect("watch");
        }
    })
    .await
    .expect("job did not finish")
}

/// Waits for `id` to enter `state`.
pub(crate) async fn reaches(
    watch: &mut workq_producer::QueueWatch,
    id: WorkId,
    state: WorkState,
) -> u32 {
    tokio::time::timeout(HANG, watch.wait_for(|e| e.id == id && e.state == state))
        .await
        .unwrap_or_else(|_| panic!("job {id} never reached {state}"))
        .expect("watch")
        .attempt
}

pub(crate) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Redis' clock, in ms.
pub(crate) async fn redis_now(wm: &WorkManager) -> u64 {
    let mut con = wm.connection().await.unwrap();
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(&mut con).await.unwrap();
    s * 1000 + us / 1000
}

/// A `test-worker` process serving `queue`; returns it with its worker id, once it runs.
pub(crate) fn spawn_worker(
    url: &str,
    queue: &str,
    concurrency: usize,
    lease_ms: u64,
    grace_ms: u64,
    env: &[(String, String)],
) -> (workq_tests::WorkerProcess, String, u64) {
    let args = [
        url.to_owned(),
        queue.to_owned(),
        concurrency.to_string(),
        lease_ms.to_string(),
        grace_ms.to_string(),
    ];
    let mut p = workq_tests::WorkerProcess::spawn(
        std::path::Path::new(env!("CARGO_BIN_EXE_test-worker")),
        &args,
        env,
    );
    let line = p.wait_line("WORKER ");
    let mut parts = line.split_whitespace().skip(2);
    let id = parts.next().expect("worker id").to_owned();
    let clock = parts
        .next()
        .and_then(|c| c.parse().ok())
        .expect("worker clock");
    (p, id, clock)
}

/// Like [`spawn_worker`], but keeps the process' stderr (its logs, filtered by
/// `WORKQ_LOG` in `env`) for `wait_stderr` and `stderr_seen`.
pub(crate) fn spawn_logging_worker(
    url: &str,
    queue: &str,
    lease_ms: u64,
    grace_ms: u64,
    env: &[(String, String)],
) -> (workq_tests::WorkerProcess, String) {
    let args = [
        url.to_owned(),
        queue.to_owned(),
        "4".to_owned(),
        lease_ms.to_string(),
        grace_ms.to_string(),
    ];
    let mut p = workq_tests::WorkerProcess::spawn_capturing(
        std::path::Path::new(env!("CARGO_BIN_EXE_test-worker")),
        &args,
        env,
    );
    let line = p.wait_line("WORKER ");
    let id = line
        .split_whitespace()
        .nth(2)
        .expect("worker id")
        .to_owned();
    (p, id)
}

/// `WORKQ_LOG=<filter>`, as a worker process' environment.
pub(crate) fn log_env(filter: &str) -> Vec<(String, String)> {
    vec![("WORKQ_LOG".to_owned(), filter.to_owned())]
}

/// The job's info; it must exist.
pub(crate) async fn info(wm: &WorkManager, id: WorkId) -> WorkInfo {
    wm.get_work_info(id)
        .await
        .expect("info")
        .unwrap_or_else(|| panic!("job {id} does not exist"))
}

/// The next item of a watch stream (a hang fails the test).
pub(crate) async fn next_item(stream: &mut workq_producer::WorkInfoStream) -> WorkInfo {
    tokio::time::timeout(HANG, stream.next_info())
        .await
        .expect("no item on the watch stream")
        .expect("watch stream ended")
        .expect("watch stream item")
}

/// A map for the chain jobs, from a JSON object literal.
pub(crate) fn map(v: serde_json::Value) -> workq_tests::jobs::Map {
    match v {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        other => panic!("not an object: {other}"),
    }
}

/// A job that outputs `out` (for chains: its output becomes its children's input).
pub(crate) fn emit(out: serde_json::Value) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Emit { out: map(out) })
        .build()
        .unwrap()
}

/// A job that outputs its input: `own` merged with its parents' outputs.
pub(crate) fn echo(own: serde_json::Value) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Echo(map(own))).build().unwrap()
}

/// Claims at most one due job of "default" for `worker` (with `labels`, comma-separated)
/// through the claim script, as a worker runtime would, and returns the whole reply.
pub(crate) async fn claim_by_hand(
    wm: &WorkManager,
    worker: &str,
    labels: &str,
    lease: std::time::Duration,
) -> workq_common::internal::scripts::ClaimReply {
    claim_by_hand_in(wm, "default", worker, labels, lease).await
}

/// Like [`claim_by_hand`], in `queue`.
pub(crate) async fn claim_by_hand_in(
    wm: &WorkManager,
    queue: &str,
    worker: &str,
    labels: &str,
    lease: std::time::Duration,
) -> workq_common::internal::scripts::ClaimReply {
    let mut con = wm.connection().await.unwrap();
    workq_common::internal::scripts::scripts()
        .claim(
            &mut con,
            &workq_common::internal::QueueKeys::new(queue).unwrap(),
            &workq_common::internal::scripts::ClaimArgs {
                limit: 1,
                lease,
                worker,
                keep_failed: std::time::Duration::from_secs(60),
                maintenance_limit: 10,
                labels,
                presence: true,
                kinds: "",
                memory_pressure: false,
                presence_tail: "",
            },
        )
        .await
        .unwrap()
}

/// Runs one command on its own connection (an operator at `redis-cli`).
pub(crate) async fn admin(redis: &workq_tests::RedisServer, args: &[&str]) {
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: redis::Value = redis::cmd(args[0])
        .arg(&args[1..])
        .query_async(&mut con)
        .await
        .unwrap();
}

/// Binary `bin` of workspace package `package` with its `cli` feature, built once per
/// test run with the cargo that runs the tests, in the same profile and target dir (as
/// examples.rs builds the examples).
pub(crate) fn workspace_bin(package: &str, bin: &str) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, std::path::PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().expect("lock");
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(bin) {
        return p.clone();
    }
    let status = cargo_build(&["-p", package, "--features", "cli", "--bin", bin]);
    assert!(status.success(), "cargo build {bin} failed");
    let path = profile_dir().join(bin);
    built.insert(bin.to_owned(), path.clone());
    path
}

/// The directory this test binary was built in: <target dir>/<profile dir>.
pub(crate) fn profile_dir() -> std::path::PathBuf {
    // This test binary is <target dir>/<profile dir>/deps/integration-<hash>.
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("profile dir")
        .to_path_buf()
}

/// Runs `cargo build --locked --quiet <args>` with the cargo that runs the tests, in the
/// same profile and target dir.
pub(crate) fn cargo_build(args: &[&str]) -> std::process::ExitStatus {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    std::process::Command::new(env!("CARGO"))
        .args(["build", "--locked", "--quiet"])
        .args(args)
        .args(["--profile", profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cannot run cargo")
}
