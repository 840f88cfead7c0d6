//! Job types and workers used by the tests, shared by the in-process tests and the
//! `test-worker` binary.

use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Fails for good (a terminal failure) the first time this process runs the job, and
/// succeeds with its note on every later run: a FAILED job that is retried succeeds (a
/// retry counts attempts afresh, so the attempt number cannot tell the runs apart).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FailOnce {
    /// What a later run outputs.
    #[serde(default)]
    pub note: String,
}
impl Job for FailOnce {
    const KIND: &'static str = "fail-once";
}

/// Runs [`FailOnce`].
#[derive(Debug)]
pub struct FailOnceWorker;
impl Worker for FailOnceWorker {
    type Job = FailOnce;
    async fn do_work(&self, ctx: &WorkContext, job: FailOnce) -> Result<WorkResult, WorkError> {
        static RAN: OnceLock<Mutex<HashSet<WorkId>>> = OnceLock::new();
        let first = RAN
            .get_or_init(Mutex::default)
            .lock()
            .unwrap()
            .insert(ctx.id());
        if first {
            return Ok(WorkResult::failure(
                "the first run of a fail-once job fails",
            ));
        }
        Ok(WorkResult::success_with(&job.note)?)
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

/// Outputs the request's metadata as its worker reads it ([`WorkContext::metadata`]);
/// with `retry_first`, only on a later attempt (the first asks to be retried, so that a
/// script has rewritten the record in between).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// Retry the first attempt.
    pub retry_first: bool,
}
impl Job for Meta {
    const KIND: &'static str = "meta";
}

/// Runs [`Meta`].
#[derive(Debug)]
pub struct MetaWorker;
impl Worker for MetaWorker {
    type Job = Meta;
    async fn do_work(&self, ctx: &WorkContext, job: Meta) -> Result<WorkResult, WorkError> {
        if job.retry_first && ctx.attempt() == 1 {
            return Ok(WorkResult::retry());
        }
        Ok(WorkResult::success_with(ctx.metadata())?)
    }
}
