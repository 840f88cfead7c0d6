//! The runtime: configuration, the shared state of one worker process, and the shutdown
//! sequence. The loops live beside it: `claim.rs` (claiming and reaping), `attempt.rs`
//! (running one attempt), `acks.rs`, `heartbeat.rs` and `wake.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use deadpool_redis::Pool;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::{AbortHandle, JoinHandle};
use workq_common::scripts::{scripts, Ack, Retention, MAX_CLAIM};
use workq_common::Error;
use workq_common::{keys, QueueKeys, RedisConfig, Result, DEFAULT_QUEUE};

use crate::context::CancelSignal;
use crate::metrics::QueueMetrics;
use crate::outage::Outage;
use crate::registry::Registry;
use crate::{Metrics, Worker};

mod acks;
mod attempt;
mod claim;
mod heartbeat;
mod memory;
mod wake;

/// Settings of a worker process.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) redis: RedisConfig,
    pub(crate) concurrency: usize,
    pub(crate) claim_batch: usize,
    pub(crate) lease: Duration,
    pub(crate) grace: Duration,
    pub(crate) cancel_grace: Duration,
    pub(crate) retention: Retention,
    pub(crate) max_output: usize,
    pub(crate) max_progress: usize,
    pub(crate) idle_poll: Duration,
    pub(crate) worker_id: String,
    /// Labels this worker has, sorted, comma-separated.
    pub(crate) labels: String,
    /// Kinds this worker runs, sorted, comma-separated (set by build()).
    pub(crate) kinds: String,
    /// What claims and heartbeats record as this worker's presence: `<labels>|<kinds>`.
    pub(crate) presence: String,
}

/// Builder for [`WorkerRuntime`].
#[must_use = "call build() and run() to start working"]
pub struct WorkerRuntimeBuilder {
    cfg: Config,
    queues: Vec<String>,
    registry: Registry,
    duplicates: Vec<String>,
}

impl std::fmt::Debug for WorkerRuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRuntimeBuilder")
            .field("cfg", &self.cfg)
            .field("queues", &self.queues)
            .field("kinds", &self.registry.kinds())
            .finish()
    }
}

impl WorkerRuntimeBuilder {
    /// Serves this queue (repeat for several). Default: `"default"`.
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }

    /// Runs jobs of `W::Job::KIND` with `worker`.
    pub fn register<W: Worker>(mut self, worker: W) -> Self {
        if self.registry.register(worker).is_some() {
            self.duplicates
                .push(<W::Job as workq_common::Job>::KIND.to_owned());
        }
        self
    }

    /// Attempts run at once in this process (default 64).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.cfg.concurrency = n;
        self
    }

    /// Lease length (default 30 s). Heartbeats extend it every third of it; a crashed
    /// worker's jobs run again once it ends.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.cfg.lease = lease;
        self
    }

    /// On SIGTERM/SIGINT, how long running attempts may take to finish before they are
    /// handed back (default 25 s, inside Kubernetes' default 30 s termination grace).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.cfg.grace = grace;
        self
    }

    /// How long a cancelled attempt may take to return after its cancellation signal
    /// fires, before it is dropped (default 5 s).
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cfg.cancel_grace = grace;
        self
    }

    /// How long finished jobs stay queryable (default: 1 hour for successes, 7 days for
    /// failures and cancellations).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.cfg.retention = retention;
        self
    }

    /// Largest output an attempt may store (default 512 KiB); larger output fails the job
    /// with a message giving both sizes.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.cfg.max_output = bytes;
        self
    }

    /// Longest an idle worker waits between checks when no wake-up arrives (default 5 s).
    /// Producers wake workers directly, so this only bounds pruning and recovery from a
    /// lost wake-up.
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.cfg.idle_poll = every;
        self
    }

    /// Largest progress an attempt may report (default 64 KiB); larger reports are refused
    /// with an error giving both sizes.
    pub fn max_progress(mut self, bytes: usize) -> Self {
        self.cfg.max_progress = bytes;
        self
    }

    /// Labels this worker has (WorkManager's constraints, as capabilities): it claims
    /// work that requires only labels among these, and never looks at other work.
    pub fn labels<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        let mut all: Vec<String> = self
            .cfg
            .labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .chain(labels.into_iter().map(Into::into))
            .collect();
        all.sort();
        all.dedup();
        self.cfg.labels = all.join(",");
        self
    }

    /// Connections to Redis (default: queues + 4).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.cfg.redis.pool_size = n;
        self
    }

    /// This process' name in WorkInfo and logs (default `host:pid:random`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.cfg.worker_id = id.into();
        self
    }

    /// Checks the settings.
    pub fn build(mut self) -> Result<WorkerRuntime> {
        let invalid = |m: String| Err(Error::Config(m));
        if self.registry.is_empty() {
            return invalid("no workers registered".into());
        }
        if let Some(p) = self
            .registry
            .kinds()
            .into_iter()
            .find_map(workq_common::limits::kind_problem)
        {
            return invalid(format!("{p} (no producer can enqueue it)"));
        }
        if !self.duplicates.is_empty() {
            return invalid(format!(
                "kinds registered twice: {}",
                self.duplicates.join(", ")
            ));
        }
        if self.cfg.concurrency == 0 {
            return invalid("concurrency must be at least 1".into());
        }
        if self.cfg.lease < Duration::from_millis(300) {
            return invalid(format!(
                "lease {:?} is too short (at least 300 ms)",
                self.cfg.lease
            ));
        }
        if self.cfg.worker_id.is_empty() || self.cfg.worker_id.len() > 200 {
            return invalid(format!(
                "worker id '{}' must be 1 to 200 bytes",
                self.cfg.worker_id
            ));
        }
        if self.cfg.idle_poll.is_zero() {
            return invalid("idle_poll must be above zero".into());
        }
        if self.cfg.labels.split(',').any(|l| {
            l.contains(|c: char| c == '@' || c == '#' || c == '{' || c == '}' || c.is_whitespace())
        }) {
            return invalid(format!(
                "labels '{}' may not contain '@', '#', braces or spaces",
                self.cfg.labels
            ));
        }
        // An idle worker renews its lease when it looks for work; it must look often
        // enough that others do not take it for dead.
        self.cfg.idle_poll = self.cfg.idle_poll.min(self.cfg.lease / 3);
        if self.queues.is_empty() {
            self.queues.push(DEFAULT_QUEUE.to_owned());
        }
        self.queues.dedup();
        let queues = self
            .queues
            .iter()
            .map(|q| QueueKeys::new(q))
            .collect::<Result<Vec<_>>>()?;
        if self.cfg.redis.pool_size == 0 {
            self.cfg.redis.pool_size = queues.len() + 4;
        }
        self.cfg.claim_batch = self.cfg.concurrency.min(MAX_CLAIM);
        self.cfg.kinds = self.registry.kinds().join(",");
        self.cfg.presence = format!("{}|{}", self.cfg.labels, self.cfg.kinds);
        Ok(WorkerRuntime {
            cfg: self.cfg,
            queues,
            registry: self.registry,
            metrics: Metrics::new(),
        })
    }
}

/// A worker process: claims due jobs from its queues and runs them with the registered
/// workers until told to stop.
pub struct WorkerRuntime {
    cfg: Config,
    queues: Vec<QueueKeys>,
    registry: Registry,
    metrics: Metrics,
}

impl std::fmt::Debug for WorkerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRuntime")
            .field("cfg", &self.cfg)
            .field("queues", &self.queues)
            .field("kinds", &self.registry.kinds())
            .finish()
    }
}

/// A job this process holds a lease on, from claim until its ack is settled.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) token: u32,
    pub(crate) cancel: Arc<CancelSignal>,
    pub(crate) abort: Option<AbortHandle>,
    /// Conservative local estimate of when the lease ends in Redis.
    pub(crate) lease_deadline: Instant,
    /// The attempt returned; only its ack is outstanding.
    pub(crate) finished: bool,
}

/// Jobs held, per queue (indexed like `Shared::queues`), by id.
pub(crate) type HeldTable = Vec<HashMap<Arc<str>, Held>>;

#[derive(Debug)]
pub(crate) struct PendingAck {
    pub(crate) queue: usize,
    pub(crate) ack: Ack,
}

/// State shared by the loops of one process.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) queues: Vec<QueueKeys>,
    /// Queue names, shared with every attempt's context.
    pub(crate) queue_names: Vec<Arc<str>>,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    /// Metric handles per queue.
    pub(crate) qm: Vec<QueueMetrics>,
    pub(crate) pool: Pool,
    pub(crate) permits: Arc<Semaphore>,
    held: Mutex<HeldTable>,
    /// Per queue: a slot was freed (wakes a claim loop that had none).
    pub(crate) slot_freed: Vec<Notify>,
    /// Per queue: a producer published new work.
    pub(crate) wake: Vec<Notify>,
    /// Per queue: Redis' time in the latest claim reply (jobs claimed well before it are
    /// known to this process, unless their reply was lost).
    pub(crate) last_reply_ms: Vec<std::sync::atomic::AtomicU64>,
    /// Redis is near its maxmemory (see memory.rs): claims prune ahead of retention.
    pub(crate) memory_pressure: std::sync::atomic::AtomicBool,
    acks: Mutex<Option<mpsc::UnboundedSender<PendingAck>>>,
    /// Set when start-up met an error that waiting cannot heal (a wrong password, an ACL
    /// that refuses a command, a database index out of range): `run` stops and returns it.
    startup_failed: watch::Sender<Option<String>>,
    /// Redis' `run_id` (from `INFO server`) when this process last looked: a new one with
    /// every held job gone means Redis restarted without its data.
    pub(crate) run_id: Mutex<Option<String>>,
}

impl Shared {
    /// The held-jobs table. A poisoned lock only means a panic elsewhere mid-update; the
    /// table itself stays usable.
    pub(crate) fn held(&self) -> MutexGuard<'_, HeldTable> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn send_ack(&self, ack: PendingAck) {
        let guard = self.acks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = guard.as_ref() {
            // The receiver lives until shutdown has flushed it.
            let _ = tx.send(ack);
        }
    }

    /// Reports an error met before the first successful call of a loop: when it is a
    /// configuration problem, the runtime stops and `run` returns it as `Error::Config`.
    /// Returns whether it was one.
    pub(crate) fn startup_error(&self, e: &Error) -> bool {
        let Some(msg) = e.config_message(&self.cfg.redis.url) else {
            return false;
        };
        self.startup_failed.send_if_modified(|m| {
            if m.is_none() {
                *m = Some(msg);
                true
            } else {
                false
            }
        });
        true
    }

    pub(crate) fn notify_slot_freed(&self) {
        for n in &self.slot_freed {
            n.notify_one();
        }
    }
}

impl WorkerRuntime {
    /// Starts a runtime for the Redis at `url`.
    pub fn builder(url: &str) -> WorkerRuntimeBuilder {
        let mut redis = RedisConfig::new(url);
        redis.pool_size = 0; // chosen in build() from the number of queues
        WorkerRuntimeBuilder {
            cfg: Config {
                redis,
                concurrency: 64,
                claim_batch: 64,
                lease: Duration::from_secs(30),
                grace: Duration::from_secs(25),
                cancel_grace: Duration::from_secs(5),
                retention: Retention::default(),
                max_output: 512 * 1024,
                max_progress: 64 * 1024,
                idle_poll: Duration::from_secs(5),
                worker_id: default_worker_id(),
                labels: String::new(),
                kinds: String::new(),
                presence: String::new(),
            },
            queues: Vec::new(),
            registry: Registry::default(),
            duplicates: Vec::new(),
        }
    }

    /// The metrics this runtime keeps.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This process' worker id.
    pub fn worker_id(&self) -> &str {
        &self.cfg.worker_id
    }

    /// Runs until SIGTERM or SIGINT, then shuts down gracefully: no new claims, running
    /// attempts get the grace period, the rest are handed back at once. A second signal
    /// cuts the grace period short. Whatever Redis does, it returns within the grace period
    /// (or the 5 s reply timeout, if longer) plus about 6 s.
    ///
    /// Returns [`Error::Config`] when Redis refuses workq at start in a way that waiting
    /// cannot fix (a wrong or missing password, an ACL that refuses a command workq needs,
    /// a database index out of range, a Redis without functions); the message names the
    /// Redis address (never its password) and what to fix. A Redis that is down at start
    /// is waited for.
    pub async fn run(self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::Config(format!("cannot listen for SIGTERM: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Error::Config(format!("cannot listen for SIGINT: {e}")))?;
        let (tx, rx) = watch::channel(0u32);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        let signals = |count: u32| {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|n| *n >= count).await;
            }
        };
        self.run_inner(signals(1), signals(2)).await
    }

    /// Runs until `shutdown` resolves, then shuts down as [`run`](Self::run) does.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        self.run_inner(shutdown, std::future::pending()).await
    }

    async fn run_inner(
        self,
        shutdown: impl Future<Output = ()> + Send,
        hurry: impl Future<Output = ()> + Send,
    ) -> Result<()> {
        let client = self.cfg.redis.client()?;
        let pool = workq_common::connect(&self.cfg.redis)?;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let (startup_failed, mut failed_rx) = watch::channel(None);
        let n = self.queues.len();
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(self.cfg.concurrency)),
            held: Mutex::new((0..n).map(|_| HashMap::new()).collect()),
            slot_freed: (0..n).map(|_| Notify::new()).collect(),
            wake: (0..n).map(|_| Notify::new()).collect(),
            last_reply_ms: (0..n)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            acks: Mutex::new(Some(ack_tx)),
            memory_pressure: std::sync::atomic::AtomicBool::new(false),
            startup_failed,
            run_id: Mutex::new(None),
            queue_names: self.queues.iter().map(|q| Arc::from(q.name())).collect(),
            qm: self
                .queues
                .iter()
                .map(|q| self.metrics.for_queue(q.name(), &self.registry.kinds()))
                .collect(),
            cfg: self.cfg,
            queues: self.queues,
            registry: self.registry,
            metrics: self.metrics,
            pool,
        });
        tracing::info!(
            worker = %shared.cfg.worker_id,
            queues = ?shared.queues.iter().map(QueueKeys::name).collect::<Vec<_>>(),
            kinds = ?shared.registry.kinds(),
            concurrency = shared.cfg.concurrency,
            lease = ?shared.cfg.lease,
            redis = %workq_common::connect::redact(&shared.cfg.redis.url),
            "worker starting"
        );

        let (stop_claims, claims_rx) = watch::channel(false);
        let (stop_bg, bg_rx) = watch::channel(false);
        let startup = tokio::spawn(startup_checks(Arc::clone(&shared), bg_rx.clone()));
        let wake = tokio::spawn(wake::wake_loop(Arc::clone(&shared), client, bg_rx.clone()));
        let memory = tokio::spawn(memory::memory_loop(Arc::clone(&shared), bg_rx.clone()));
        let heartbeat = tokio::spawn(heartbeat::heartbeat_loop(Arc::clone(&shared), bg_rx));
        let acks = tokio::spawn(acks::ack_loop(Arc::clone(&shared), ack_rx));
        let claimers: Vec<JoinHandle<()>> = (0..n)
            .map(|q| tokio::spawn(claim::claim_loop(Arc::clone(&shared), q, claims_rx.clone())))
            .collect();

        let failed = tokio::select! {
            () = shutdown => None,
            m = failed_rx.wait_for(Option::is_some) => m.ok().and_then(|m| m.clone()),
        };
        if let Some(msg) = &failed {
            tracing::error!("{msg}");
        }
        let running = shared
            .held()
            .iter()
            .flat_map(|m| m.values())
            .filter(|h| !h.finished)
            .count();
        tracing::info!(running, grace = ?shared.cfg.grace, "shutting down: no new claims");
        // The grace period counts from the signal. A claim already in flight may still
        // bring jobs (it waits at most the reply timeout): they run in what is left of it.
        let grace_ends = tokio::time::Instant::now() + shared.cfg.grace;
        let _ = stop_claims.send(true);
        for c in claimers {
            let _ = c.await;
        }

        // Let running attempts finish: all permits back means none is running.
        let all = u32::try_from(shared.cfg.concurrency).unwrap_or(u32::MAX);
        tokio::select! {
            _ = tokio::time::timeout_at(grace_ends, shared.permits.acquire_many(all)) => {}
            _ = hurry => tracing::info!("second signal: skipping the rest of the grace period"),
        }

        // Whatever Redis does (down, hung, silent), handing back and the last acks get
        // DRAIN between them; what Redis has not taken by then runs again when its lease
        // ends.
        let deadline = tokio::time::Instant::now() + DRAIN;
        if tokio::time::timeout_at(deadline, hand_back(&shared))
            .await
            .is_err()
        {
            tracing::warn!(
                within = ?DRAIN,
                "Redis did not take the hand-back in time; those jobs run again when their leases end"
            );
        }

        // No attempt runs any more: close the ack channel and let the ack loop drain it.
        shared.acks.lock().unwrap_or_else(|p| p.into_inner()).take();
        join_by(acks, deadline, "could not record every finished attempt before exiting (Redis did not answer); those jobs run again when their leases end").await;
        let _ = stop_bg.send(true);
        let late = deadline.max(tokio::time::Instant::now()) + Duration::from_secs(1);
        join_by(heartbeat, late, "heartbeat loop did not stop").await;
        join_by(wake, late, "wake-up loop did not stop").await;
        memory.abort();
        startup.abort();
        tracing::info!(worker = %shared.cfg.worker_id, "worker stopped");
        match failed {
            Some(msg) => Err(Error::Config(msg)),
            None => Ok(()),
        }
    }
}

/// After the grace period, how long handing back and the last acks may take together, so
/// that a worker exits within its grace period plus this (and Kubernetes' default 30 s
/// termination grace fits the default 25 s grace period plus this).
const DRAIN: Duration = Duration::from_secs(5);

/// Waits for a loop to end until `deadline`, then aborts it.
async fn join_by(handle: JoinHandle<()>, deadline: tokio::time::Instant, late: &str) {
    let abort = handle.abort_handle();
    if tokio::time::timeout_at(deadline, handle).await.is_err() {
        abort.abort();
        tracing::warn!("{late}");
    }
}

/// Aborts attempts still running after the grace period and returns their jobs to the
/// schedule at once, retrying through a Redis outage until their leases would end anyway.
async fn hand_back(shared: &Shared) {
    let mut left: Vec<(usize, String, u32, Instant)> = Vec::new();
    {
        let mut held = shared.held();
        for (q, jobs) in held.iter_mut().enumerate() {
            jobs.retain(|id, h| {
                if h.finished {
                    return true;
                }
                if let Some(a) = &h.abort {
                    a.abort();
                }
                left.push((q, id.to_string(), h.token, h.lease_deadline));
                false
            });
        }
    }
    if left.is_empty() {
        return;
    }
    tracing::info!(jobs = left.len(), "handing unfinished jobs back");
    let mut outage = Outage::new("hand-back");
    for (q, keys) in shared.queues.iter().enumerate() {
        let mine: Vec<(String, u32)> = left
            .iter()
            .filter(|(lq, ..)| *lq == q)
            .map(|(_, id, t, _)| (id.clone(), *t))
            .collect();
        let deadline = left.iter().filter(|(lq, ..)| *lq == q).map(|l| l.3).min();
        let (Some(deadline), false) = (deadline, mine.is_empty()) else {
            continue;
        };
        loop {
            let res = async {
                let mut con = shared.pool.get().await?;
                scripts()
                    .release(
                        &mut *con,
                        keys,
                        &shared.cfg.worker_id,
                        shared.cfg.retention.failed,
                        "handed back: worker shutting down",
                        &mine,
                    )
                    .await
            }
            .await;
            match res {
                Ok(_) => {
                    outage.recovered();
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    shared
                        .metrics
                        .redis_errors
                        .with_label_values(&["release"])
                        .inc();
                    tokio::time::sleep(outage.failed(&e)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = mine.len(), "could not hand jobs back; they run again when their leases end");
                    break;
                }
            }
        }
    }
}

/// Registers the queues, warns about Redis settings that can lose jobs, and loads the
/// function library (calls load it too when they find it missing, but Redis refuses
/// `FUNCTION LOAD` at maxmemory, so it is best loaded while there is room). Retries until
/// Redis answers; the loops do not wait for it. A configuration error (a wrong password,
/// an ACL that refuses these commands, a database index out of range, a Redis without
/// functions) stops the runtime.
async fn startup_checks(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut outage = Outage::new("startup");
    loop {
        let res: Result<String> = async {
            let mut con = shared.pool.get().await?;
            let names: Vec<&str> = shared.queues.iter().map(QueueKeys::name).collect();
            let mut pipe = redis::pipe();
            // (Presence in `workers` is written by claims and heartbeats, with Redis' time.)
            pipe.cmd("SADD").arg(keys::QUEUES).arg(&names).ignore();
            let (info,): (String,) = pipe.cmd("INFO").query_async(&mut *con).await?;
            Ok(info)
        }
        .await;
        match res {
            Ok(info) => {
                outage.recovered();
                *shared.run_id.lock().unwrap_or_else(|p| p.into_inner()) =
                    workq_common::server::info_field(&info, "run_id").map(str::to_owned);
                warn_about_durability(&info);
                let loaded = match shared.pool.get().await {
                    Ok(mut con) => scripts().load(&mut *con).await,
                    Err(e) => Err(e.into()),
                };
                match loaded {
                    Err(e) if shared.startup_error(&e) => {}
                    Err(e) => tracing::warn!("could not load workq's function library at start (claims will try again): {e}"),
                    Ok(()) => {}
                }
                return;
            }
            Err(e) if shared.startup_error(&e) => return,
            Err(e) => {
                tokio::select! {
                    _ = tokio::time::sleep(outage.failed(&e)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

fn warn_about_durability(info: &str) {
    for w in workq_common::server::durability_warnings(info) {
        tracing::warn!("{w}");
    }
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let nonce = workq_common::WorkId::new().to_string();
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &nonce[nonce.len() - 6..]
    )
}
