//! Test support: real `redis-server` processes on free ports, and real worker processes
//! whose stdout lines the tests wait on. Nothing here is mocked.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `redis-cli ACL SETUSER ...` commands of the README's "ACL users" section, as
/// argument lists (without `redis-cli`, shell quotes removed), so that the tests use the
/// very rules the README gives.
pub fn readme_acl_rules() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let mut rules = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("redis-cli ACL SETUSER ") {
            continue;
        }
        let mut text = line.to_owned();
        while text.ends_with('\\') {
            text.pop();
            text.push(' ');
            text.push_str(lines.next().unwrap_or_default());
        }
        rules.push(
            text.split_whitespace()
                .skip(1)
                .map(|t| t.trim_matches('\'').to_owned())
                .collect(),
        );
    }
    rules
}

/// Every wait in the tests is for an event; this only turns a hang into a failure.
pub const HANG: Duration = Duration::from_secs(120);

/// Installs a log subscriber once (RUST_LOG-style filter from `WORKQ_TEST_LOG`).
pub fn init_logs() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter: tracing_subscriber::filter::Targets = std::env::var("WORKQ_TEST_LOG")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| "warn".parse().expect("filter"));
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .with(filter)
            .try_init();
    });
}

/// AOF settings for a test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk.
    None,
    /// `appendonly yes` with `appendfsync always`: every acknowledged write survives a
    /// SIGKILL of Redis.
    AofAlways,
}

/// A private `redis-server` in its own temp dir, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "workq-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl RedisServer {
    /// Starts a server with nothing on disk.
    pub fn start() -> Self {
        Self::start_with(Persistence::None)
    }

    /// Starts a server with the given persistence, retrying on another port if the one
    /// picked was taken meanwhile.
    pub fn start_with(persistence: Persistence) -> Self {
        let dir = temp_dir("redis");
        for _ in 0..5 {
            let mut s = RedisServer {
                port: free_port(),
                dir: dir.clone(),
                persistence,
                child: None,
                log: Arc::default(),
            };
            if s.spawn() {
                return s;
            }
        }
        panic!("redis-server did not start; is it installed? (tests/run.sh installs it)");
    }

    /// Starts redis-server and waits for "Ready to accept connections" on its log.
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg("")
            .arg("--daemonize")
            .arg("no");
        match self.persistence {
            Persistence::None => {
                cmd.args(["--appendonly", "no"]);
            }
            Persistence::AofAlways => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
            }
        }
        let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot run redis-server ({e}); tests/run.sh installs it"),
        };
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            let mut ready = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                log.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        if rx.recv_timeout(HANG).is_ok() {
            return true;
        }
        self.kill();
        false
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILLs the server (no shutdown save).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and directory (so an AOF is reloaded).
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// A blocking client, for inspecting keys.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("client")
    }

    /// Freezes the server (SIGSTOP): it keeps its connections open and answers nothing,
    /// like a hung Redis, until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.send_signal("STOP");
    }

    /// Lets a [paused](Self::pause) server run again (SIGCONT).
    pub fn resume(&self) {
        self.send_signal("CONT");
    }

    fn send_signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {pid} failed");
    }

    /// The server's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A paused server would not die of SIGKILL until continued on some kernels.
        if self.child.is_some() {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(self.child.as_ref().map_or(0, Child::id).to_string())
                .status();
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Environment that makes a process see its clock shifted by `offset` (libfaketime syntax,
/// e.g. "-600s"), preloading libfaketime into the process itself so that killing the
/// process kills what runs the code.
pub fn faketime_env(offset: &str) -> Vec<(String, String)> {
    let lib = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is missing; tests/run.sh installs it (Debian package faketime)");
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), offset.into()),
        ("FAKETIME_DONT_RESET".into(), "1".into()),
    ]
}

/// A worker process (the `test-worker` binary) whose stdout lines can be awaited.
#[derive(Debug)]
pub struct WorkerProcess {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Its stderr (its logs), when spawned with [`WorkerProcess::spawn_capturing`].
    stderr: Option<Stderr>,
}

/// A process' stderr lines: those not yet awaited, and all of them.
#[derive(Debug)]
struct Stderr {
    lines: mpsc::Receiver<String>,
    all: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    /// Spawns `bin` with `args` and extra environment variables.
    pub fn spawn(bin: &Path, args: &[String], env: &[(String, String)]) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        WorkerProcess {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: None,
        }
    }

    /// Like [`spawn`](Self::spawn), but keeps the process' stderr (its logs) for
    /// [`wait_stderr`](Self::wait_stderr) and [`stderr_seen`](Self::stderr_seen) (each
    /// line is also copied to the test's stderr).
    pub fn spawn_capturing(bin: &Path, args: &[String], env: &[(String, String)]) -> Self {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        let all: Arc<Mutex<Vec<String>>> = Arc::default();
        let keep = Arc::clone(&all);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[worker] {line}");
                keep.lock().unwrap().push(line.clone());
                let _ = etx.send(line);
            }
        });
        WorkerProcess {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
            stderr: Some(Stderr { lines: erx, all }),
        }
    }

    /// Waits for the next stderr line containing every one of `parts` and returns it
    /// (the process must have been spawned with [`spawn_capturing`](Self::spawn_capturing)).
    pub fn wait_stderr(&mut self, parts: &[&str]) -> String {
        let err = self.stderr.as_ref().expect("spawned with spawn_capturing");
        loop {
            match err.lines.recv_timeout(HANG) {
                Ok(line) if parts.iter().all(|p| line.contains(p)) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "no stderr line with {parts:?} ({e}); stderr so far: {:#?}",
                    err.all.lock().unwrap()
                ),
            }
        }
    }

    /// Every stderr line so far (after [`wait`](Self::wait) or
    /// [`exit_within`](Self::exit_within): all of them).
    pub fn stderr_seen(&self) -> Vec<String> {
        self.stderr
            .as_ref()
            .map(|e| e.all.lock().unwrap().clone())
            .unwrap_or_default()
    }

    /// Waits for the process to exit, at most `limit` (a hang guard: past it the process
    /// is killed and the test fails), and returns its exit code (None if killed by a
    /// signal). Reads its remaining output first.
    pub fn exit_within(&mut self, limit: Duration) -> Option<i32> {
        let c = self.child.take().expect("process runs");
        let pid = c.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait_with_output().map(|o| o.status.code()));
        });
        match rx.recv_timeout(limit) {
            Ok(code) => {
                while let Ok(line) = self.lines.recv_timeout(HANG) {
                    self.seen.push(line);
                }
                if let Some(e) = &self.stderr {
                    while e.lines.recv_timeout(HANG).is_ok() {}
                }
                code.expect("wait")
            }
            Err(_) => {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
                let stderr = self.stderr_seen();
                panic!(
                    "process {pid} did not exit within {limit:?}; stdout: {:#?}; stderr: {stderr:#?}",
                    self.lines_seen(),
                );
            }
        }
    }

    /// Waits for the next stdout line starting with `prefix` and returns it.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line starting with {prefix:?} ({e}); lines so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (e.g. "KILL", "TERM").
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the process to exit and returns its exit code (None if killed).
    pub fn wait(&mut self) -> Option<i32> {
        let c = self.child.take()?;
        let out = c.wait_with_output().expect("wait");
        // Keep reading what it printed before it exited, up to the end of its stdout (the
        // reader thread may still be forwarding lines when the exit is noticed).
        while let Ok(line) = self.lines.recv_timeout(HANG) {
            self.seen.push(line);
        }
        out.status.code()
    }

    /// Every line seen so far.
    pub fn lines_seen(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Job types and workers used by the tests, shared by the in-process tests and the
/// `test-worker` binary.
pub mod jobs {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Duration;

    use serde::{Deserialize, Serialize};
    use tokio::sync::{mpsc, Semaphore};
    use workq_worker::{Job, WorkContext, WorkError, WorkId, WorkResult, Worker};

    /// Prints `START <id> <attempt> <pid>`, then sleeps `ms` (or until cancelled), then
    /// succeeds with its output.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Sleep {
        /// How long the first attempt sleeps.
        pub ms: u64,
        /// How long later attempts sleep (default: `ms`).
        #[serde(default)]
        pub retry_ms: Option<u64>,
    }

    impl Sleep {
        /// Sleeps `ms` on every attempt.
        pub fn ms(ms: u64) -> Self {
            Sleep { ms, retry_ms: None }
        }
    }
    impl Job for Sleep {
        const KIND: &'static str = "sleep";
    }

    /// What [`Sleep`] returns.
    #[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Slept {
        /// The attempt that finished.
        pub attempt: u32,
        /// The process that ran it.
        pub pid: u32,
    }

    /// Runs [`Sleep`].
    #[derive(Debug)]
    pub struct SleepWorker;
    impl Worker for SleepWorker {
        type Job = Sleep;
        async fn do_work(&self, ctx: &WorkContext, job: Sleep) -> Result<WorkResult, WorkError> {
            println!(
                "START {} {} {}",
                ctx.id(),
                ctx.attempt(),
                std::process::id()
            );
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(
                    if ctx.attempt() > 1 { job.retry_ms.unwrap_or(job.ms) } else { job.ms },
                )) => {}
                _ = ctx.cancelled() => {
                    println!("CANCELLED {} {}", ctx.id(), ctx.attempt());
                    return Ok(WorkResult::failure("stopped on cancel"));
                }
            }
            println!("DONE {} {}", ctx.id(), ctx.attempt());
            Ok(WorkResult::success_with(&Slept {
                attempt: ctx.attempt(),
                pid: std::process::id(),
            })?)
        }
    }

    /// Fails the way `mode` says: "error" (Err), "panic", "failure" (terminal), "retry".
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Fail {
        /// How to fail.
        pub mode: String,
    }
    impl Job for Fail {
        const KIND: &'static str = "fail";
    }

    /// Runs [`Fail`].
    #[derive(Debug)]
    pub struct FailWorker;
    impl Worker for FailWorker {
        type Job = Fail;
        async fn do_work(&self, ctx: &WorkContext, job: Fail) -> Result<WorkResult, WorkError> {
            match job.mode.as_str() {
                "error" => Err(format!("attempt {} broke", ctx.attempt()).into()),
                "panic" => panic!("attempt {} panicked on purpose", ctx.attempt()),
                "failure" => Ok(WorkResult::failure(format!(
                    "gave up at attempt {}",
                    ctx.attempt()
                ))),
                _ => Ok(WorkResult::retry()),
            }
        }
    }

    /// Does nothing.
    #[derive(Clone, Debug, Serialize, Deserialize)]
    pub struct Nop {
        /// A number.
        pub i: u64,
    }
    impl Job for Nop {
        const KIND: &'static str = "nop";
    }

    /// Runs [`Nop`].
    #[derive(Debug)]
    pub struct NopWorker;
    impl Worker for NopWorker {
        type Job = Nop;
        async fn do_work(&self, _: &WorkContext, _: Nop) -> Result<WorkResult, WorkError> {
            Ok(WorkResult::success())
        }
    }

    /// A JSON-like map, as inputs and outputs of the chain tests.
    pub type Map = BTreeMap<String, serde_json::Value>;

    /// Outputs the map `out` it was given (whatever else its merged input holds). Prints
    /// `START <id> <attempt> <pid>` like [`Sleep`].
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    pub struct Emit {
        /// What to output.
        #[serde(default)]
        pub out: Map,
    }
    impl Job for Emit {
        const KIND: &'static str = "emit";
    }

    /// Runs [`Emit`].
    #[derive(Debug)]
    pub struct EmitWorker;
    impl Worker for EmitWorker {
        type Job = Emit;
        async fn do_work(&self, ctx: &WorkContext, job: Emit) -> Result<WorkResult, WorkError> {
            println!(
                "START {} {} {}",
                ctx.id(),
                ctx.attempt(),
                std::process::id()
            );
            Ok(WorkResult::success_with(&job.out)?)
        }
    }

    /// Outputs its whole input (in a chain: its own input merged with its parents'
    /// outputs). Prints `START <id> <attempt> <pid>` like [`Sleep`].
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct Echo(pub Map);
    impl Job for Echo {
        const KIND: &'static str = "echo";
    }

    /// Runs [`Echo`].
    #[derive(Debug)]
    pub struct EchoWorker;
    impl Worker for EchoWorker {
        type Job = Echo;
        async fn do_work(&self, ctx: &WorkContext, job: Echo) -> Result<WorkResult, WorkError> {
            println!(
                "START {} {} {}",
                ctx.id(),
                ctx.attempt(),
                std::process::id()
            );
            Ok(WorkResult::success_with(&job.0)?)
        }
    }

    /// What a [`Probe`] attempt tells the test that [`listen`]s to its job.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Run {
        /// The attempt (of the current period, for periodic work).
        pub attempt: u32,
        /// The probe's note (its input).
        pub note: String,
    }

    type Registry<T> = Mutex<HashMap<WorkId, T>>;

    fn listeners() -> &'static Registry<mpsc::UnboundedSender<Run>> {
        static L: OnceLock<Registry<mpsc::UnboundedSender<Run>>> = OnceLock::new();
        L.get_or_init(Registry::default)
    }

    fn gates() -> &'static Registry<Arc<Semaphore>> {
        static G: OnceLock<Registry<Arc<Semaphore>>> = OnceLock::new();
        G.get_or_init(Registry::default)
    }

    /// Receives a [`Run`] for every attempt of the [`Probe`] job `id` that runs in this
    /// process (in-process runtimes only).
    pub fn listen(id: WorkId) -> mpsc::UnboundedReceiver<Run> {
        let (tx, rx) = mpsc::unbounded_channel();
        listeners().lock().unwrap().insert(id, tx);
        rx
    }

    /// A gate for the [`Progress`] job `id` in this process: after each step it waits for
    /// one permit (`add_permits(1)` lets it take the next step). Jobs without a gate do
    /// not wait.
    pub fn gate(id: WorkId) -> Arc<Semaphore> {
        let g = Arc::new(Semaphore::new(0));
        gates().lock().unwrap().insert(id, Arc::clone(&g));
        g
    }

    /// Reports each attempt to the test that [`listen`]s to it; fails the first attempt
    /// (of each period, for periodic work) when `fail_first` is set, and succeeds with
    /// its note otherwise.
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    pub struct Probe {
        /// Reported with each run.
        pub note: String,
        /// Fail attempt 1 (with an error, which retries with backoff).
        #[serde(default)]
        pub fail_first: bool,
    }
    impl Job for Probe {
        const KIND: &'static str = "probe";
    }

    /// Runs [`Probe`].
    #[derive(Debug)]
    pub struct ProbeWorker;
    impl Worker for ProbeWorker {
        type Job = Probe;
        async fn do_work(&self, ctx: &WorkContext, job: Probe) -> Result<WorkResult, WorkError> {
            if let Some(tx) = listeners().lock().unwrap().get(&ctx.id()) {
                let _ = tx.send(Run {
                    attempt: ctx.attempt(),
                    note: job.note.clone(),
                });
            }
            if job.fail_first && ctx.attempt() == 1 {
                return Err(format!("attempt {} fails on purpose", ctx.attempt()).into());
            }
            Ok(WorkResult::success_with(&job.note)?)
        }
    }

    /// Reports progress `Step { step: 1..=steps }`, waiting at its [`gate`] (if any) after
    /// each step; then, when `oversized` > 0, tries to report a progress of that many
    /// bytes of payload and records what `set_progress` said in its output.
    #[derive(Clone, Debug, Default, Serialize, Deserialize)]
    pub struct Progress {
        /// Steps to report.
        pub steps: u32,
        /// Payload bytes of the oversized report (0: none).
        #[serde(default)]
        pub oversized: usize,
    }
    impl Job for Progress {
        const KIND: &'static str = "progress";
    }

    /// A progress report of [`Progress`].
    #[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Step {
        /// The step reached.
        pub step: u32,
    }

    /// What [`Progress`] returns.
    #[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
    pub struct ProgressDone {
        /// Steps reported.
        pub steps: u32,
        /// The error `set_progress` gave for the oversized report, if it refused it.
        pub oversized_error: Option<String>,
        /// Whether that error was `Error::PayloadTooLarge`.
        pub too_large: bool,
    }

    /// Runs [`Progress`].
    #[derive(Debug)]
    pub struct ProgressWorker;
    impl Worker for ProgressWorker {
        type Job = Progress;
        async fn do_work(&self, ctx: &WorkContext, job: Progress) -> Result<WorkResult, WorkError> {
            let gate = gates().lock().unwrap().get(&ctx.id()).cloned();
            for step in 1..=job.steps {
                ctx.set_progress(&Step { step }).await?;
                if let Some(g) = &gate {
                    g.acquire().await?.forget();
                }
            }
            let mut done = ProgressDone {
                steps: job.steps,
                oversized_error: None,
                too_large: false,
            };
            if job.oversized > 0 {
                if let Err(e) = ctx.set_progress(&vec![0u8; job.oversized]).await {
                    done.too_large = matches!(e, workq_worker::Error::PayloadTooLarge { .. });
                    done.oversized_error = Some(e.to_string());
                }
            }
            Ok(WorkResult::success_with(&done)?)
        }
    }
}
