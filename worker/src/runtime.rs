//! The runtime: a worker process and the state its loops share. Beside it, one file per
//! part: `builder.rs` (settings), `startup.rs`, `shutdown.rs`, `queue.rs` (per-queue
//! state), `held.rs` (the held jobs), and the loops: `claim.rs` (claiming and reaping),
//! `attempt.rs` (running one attempt), `acks.rs`, `heartbeat.rs`, `memory.rs` and
//! `wake.rs`; `health.rs` (what `/healthz` and `/readyz` say) and `http.rs` (the HTTP
//! endpoint).

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use workq_common::internal::scripts::Ack;
use workq_common::internal::Pool;
use workq_common::internal::QueueKeys;
use workq_common::{Error, Result};

use crate::registry::Registry;
use crate::Metrics;
use builder::Config;
use queue::Queue;

mod acks;
mod attempt;
mod builder;
mod claim;
mod health;
mod heartbeat;
mod held;
#[cfg(feature = "http")]
mod http;
mod memory;
mod queue;
mod shutdown;
mod startup;
mod wake;

pub use builder::WorkerRuntimeBuilder;

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

/// An attempt's outcome, waiting for the ack loop.
#[derive(Debug)]
pub(crate) struct PendingAck {
    pub(crate) queue: usize,
    pub(crate) ack: Ack,
}

/// State shared by the loops of one process.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    /// The served queues, in the order given to the builder (loops and acks name a queue
    /// by its index here).
    pub(crate) queues: Vec<Queue>,
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) pool: Pool,
    pub(crate) permits: Arc<Semaphore>,
    /// Redis is near its maxmemory (see memory.rs): claims prune ahead of retention.
    pub(crate) memory_pressure: std::sync::atomic::AtomicBool,
    acks: Mutex<Option<mpsc::UnboundedSender<PendingAck>>>,
    /// Set when start-up met an error that waiting cannot heal (a wrong password, an ACL
    /// that refuses a command, a database index out of range): `run` stops and returns it.
    startup_failed: watch::Sender<Option<String>>,
    /// Redis' `run_id` (from `INFO server`) when this process last looked: a new one with
    /// every held job gone means Redis restarted without its data.
    pub(crate) run_id: Mutex<Option<String>>,
    /// Liveness and readiness, for the HTTP endpoint.
    pub(crate) health: health::Health,
}

impl Shared {
    pub(crate) fn send_ack(&self, ack: PendingAck) {
        let guard = self.acks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = guard.as_ref() {
            // The receiver lives until shutdown has flushed it.
            let _ = tx.send(ack);
        }
    }

    /// Closes the ack channel: the ack loop ends once it has sent what is queued.
    fn close_acks(&self) {
        self.acks.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    pub(crate) fn notify_slot_freed(&self) {
        for q in &self.queues {
            q.slot_freed.notify_one();
        }
    }

    /// A loop's connection, kept checked out between calls (a checkout PINGs it) and
    /// taken from the pool when there is none (at first, and after the loop dropped it on
    /// an error).
    pub(crate) async fn kept<'a>(
        &self,
        slot: &'a mut Option<workq_common::internal::Pooled>,
    ) -> Result<&'a mut workq_common::internal::Pooled> {
        Ok(match slot {
            Some(c) => c,
            None => slot.insert(self.pool.get().await?),
        })
    }
}

impl WorkerRuntime {
    /// Starts a runtime for the Redis at `url`.
    pub fn builder(url: &str) -> WorkerRuntimeBuilder {
        WorkerRuntimeBuilder::new(url)
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
    /// is waited for. With an HTTP endpoint (`WorkerRuntimeBuilder::http`, feature
    /// `http`), an address that cannot be bound is an [`Error::Config`] (setting `http`)
    /// naming it, returned before anything else starts.
    pub async fn run(self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::config("signals", format!("cannot listen for SIGTERM: {e}")))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Error::config("signals", format!("cannot listen for SIGINT: {e}")))?;
        // The first signal starts the shutdown; the second one hurries it.
        let (shutdown, hurry) = (CancellationToken::new(), CancellationToken::new());
        let (first, second) = (shutdown.clone(), hurry.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                if first.is_cancelled() {
                    second.cancel();
                } else {
                    first.cancel();
                }
            }
        });
        self.run_inner(shutdown.cancelled_owned(), hurry.cancelled_owned())
            .await
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
        #[cfg(feature = "http")]
        let listener = match self.cfg.http {
            Some(addr) => Some(http::bind(addr).await?),
            None => None,
        };
        self.cfg.redis.check()?;
        let pool = workq_common::internal::connect(&self.cfg.redis)?;
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let (startup_failed, mut failed_rx) = watch::channel(None);
        let kinds = self.registry.kinds();
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(self.cfg.concurrency)),
            acks: Mutex::new(Some(ack_tx)),
            memory_pressure: std::sync::atomic::AtomicBool::new(false),
            startup_failed,
            run_id: Mutex::new(None),
            health: health::Health::new(self.queues.len()),
            queues: self
                .queues
                .into_iter()
                .map(|q| {
                    let metrics = self.metrics.for_queue(q.name(), &kinds);
                    Queue::new(q, metrics)
                })
                .collect(),
            cfg: self.cfg,
            registry: self.registry,
            metrics: self.metrics,
            pool,
        });
        tracing::info!(
            worker = %shared.cfg.worker_id,
            queues = ?shared.queues.iter().map(|q| q.keys.name()).collect::<Vec<_>>(),
            kinds = ?shared.registry.kinds(),
            concurrency = shared.cfg.concurrency,
            lease = ?shared.cfg.lease,
            redis = %workq_common::internal::connect::redact(&shared.cfg.redis.url),
            "worker starting"
        );

        #[cfg(feature = "http")]
        let stop_http = CancellationToken::new();
        #[cfg(feature = "http")]
        let server = listener.map(|l| http::start(&shared, l, stop_http.clone()));

        let stop_claims = CancellationToken::new();
        let stop_background = CancellationToken::new();
        let bg = || stop_background.clone();
        // Every loop but the start-up checks (which end when done) runs until shutdown:
        // one that ends before it makes `/healthz` fail.
        let loops = shutdown::Loops {
            startup: tokio::spawn(startup::startup_checks(Arc::clone(&shared), bg())),
            wake: health::spawn_watched(
                &shared,
                "wake",
                wake::wake_loop(Arc::clone(&shared), bg()),
            ),
            memory: health::spawn_watched(
                &shared,
                "memory",
                memory::memory_loop(Arc::clone(&shared), bg()),
            ),
            heartbeat: health::spawn_watched(
                &shared,
                "heartbeat",
                heartbeat::heartbeat_loop(Arc::clone(&shared), bg()),
            ),
            acks: health::spawn_watched(
                &shared,
                "ack",
                acks::ack_loop(Arc::clone(&shared), ack_rx),
            ),
            claimers: (0..shared.queues.len())
                .map(|q| {
                    let stop = stop_claims.clone();
                    health::spawn_watched(
                        &shared,
                        "claim",
                        claim::claim_loop(Arc::clone(&shared), q, stop),
                    )
                })
                .collect::<Vec<JoinHandle<()>>>(),
            stop_claims,
            stop_background: stop_background.clone(),
        };

        let failed = tokio::select! {
            () = shutdown => None,
            m = failed_rx.wait_for(Option::is_some) => m.ok().and_then(|m| m.clone()),
        };
        if let Some(msg) = &failed {
            tracing::error!("{msg}");
        }
        // From here on `/readyz` fails, and loops that end are meant to.
        shared.health.stopping();
        shutdown::shut_down(&shared, loops, hurry).await;
        // The endpoint answers until the loops have stopped, and closes its port before
        // `run` returns.
        #[cfg(feature = "http")]
        {
            stop_http.cancel();
            if let Some(server) = server {
                let _ = server.await;
            }
        }
        tracing::info!(worker = %shared.cfg.worker_id, "worker stopped");
        match failed {
            Some(msg) => Err(Error::config("redis", msg)),
            None => Ok(()),
        }
    }
}

/// After a claim or an ack that wrote: waits for the copies the durability setting asks
/// for. A shortfall is logged and counted, and the worker carries on (the write stands on
/// the primary); so is a failure of the `WAIT` itself, which the next call's connection
/// handling deals with.
async fn confirm(
    shared: &Shared,
    con: &mut workq_common::internal::Conn,
    key: &str,
    what: &'static str,
    shortfalls: &prometheus::IntCounter,
) {
    match shared.cfg.durability.confirm(con, key, what).await {
        Ok(()) => {}
        Err(Error::NotDurable(n)) => {
            shortfalls.inc();
            tracing::warn!(replicas = n.replicas, wanted = n.wanted, "{n}");
        }
        Err(e) => tracing::warn!(error = %e, "could not wait for the replicas after a {what}"),
    }
}
