//! Configuration: the settings of a worker process, and the builder that checks them.

use std::time::Duration;

use workq_common::internal::scripts::{Retention, MAX_CLAIM};
use workq_common::internal::{QueueKeys, RedisConfig};
use workq_common::{Durability, Error, Result, TlsConfig, DEFAULT_QUEUE};

use super::WorkerRuntime;
use crate::registry::Registry;
use crate::{Metrics, Worker};

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
    /// What claims and heartbeats record as this worker's presence:
    /// `<labels>|<kinds>|<host>|<slots>`.
    pub(crate) presence: String,
    /// The presence after the kinds, `<host>|<slots>`, which claims send apart.
    pub(crate) presence_tail: String,
    /// How many copies claims and acks must reach.
    pub(crate) durability: Durability,
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (None: nowhere).
    #[cfg(feature = "http")]
    pub(crate) http: Option<std::net::SocketAddr>,
}

/// Builder for [`WorkerRuntime`].
#[must_use = "call build() and run() to start working"]
pub struct WorkerRuntimeBuilder {
    cfg: Config,
    queues: Vec<String>,
    registry: Registry,
    duplicates: Vec<String>,
    /// `claim_batch(n)`, when set; otherwise half the concurrency (build()).
    claim_batch: Option<usize>,
}

impl std::fmt::Debug for WorkerRuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRuntimeBuilder")
            .field("cfg", &self.cfg)
            .field("queues", &self.queues)
            .field("claim_batch", &self.claim_batch)
            .field("kinds", &self.registry.kinds())
            .finish()
    }
}

impl WorkerRuntimeBuilder {
    /// The defaults, for the Redis at `url`.
    pub(super) fn new(url: &str) -> Self {
        let mut redis = RedisConfig::new(url);
        redis.pool_size = 0; // chosen in build() from the number of queues
        WorkerRuntimeBuilder {
            cfg: Config {
                redis,
                concurrency: 64,
                claim_batch: 0, // chosen in build(): claim_batch(n) or half the slots
                lease: Duration::from_secs(30),
                grace: Duration::from_secs(25),
                cancel_grace: Duration::from_secs(5),
                retention: Retention::default(),
                max_output: 512 * 1024,
                max_progress: 64 * 1024,
                idle_poll: Duration::from_secs(10),
                worker_id: default_worker_id(),
                labels: String::new(),
                kinds: String::new(),
                presence: String::new(),
                presence_tail: String::new(),
                durability: Durability::Primary,
                #[cfg(feature = "http")]
                http: None,
            },
            queues: Vec::new(),
            registry: Registry::default(),
            duplicates: Vec::new(),
            claim_batch: None,
        }
    }

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

    /// Longest an idle worker waits between checks when no wake-up arrives (default 10 s,
    /// at most a third of the lease).
    /// Producers wake workers directly, so this only bounds pruning and recovery from a
    /// lost wake-up.
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.cfg.idle_poll = every;
        self
    }

    /// Most jobs one claim asks for (default: half the concurrency, so two claims are in
    /// flight at once and neither Redis nor this process waits for the other; at most
    /// the concurrency and 1,000). The full concurrency makes fewer, larger calls: less
    /// Redis CPU per chain or periodic job, and faster runs of them where this process
    /// shares cores with a busy Redis, at the cost of the plain drain's overlap
    /// (BENCHMARKS.md, issue 12).
    pub fn claim_batch(mut self, jobs: usize) -> Self {
        self.claim_batch = Some(jobs);
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

    /// Certificates for a `rediss://` (or `rediss+sentinel://`) URL: a CA file instead of
    /// the system's roots, and a client certificate (default: neither); the pool and the
    /// wake-up subscription use them. Needs the cargo feature `tls`; `run` returns
    /// `Error::Config` (setting `tls`) for a file it cannot use, or for these settings
    /// with a `redis://` URL.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.cfg.redis.tls = Some(tls);
        self
    }

    /// This process' name in WorkInfo and logs (default `host:pid:random`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.cfg.worker_id = id.into();
        self
    }

    /// Serves `/metrics` (Prometheus' text format), `/healthz` (200 while every loop of
    /// the runtime runs, else 503) and `/readyz` (200 once Redis answered the start-up
    /// checks and every queue is being claimed from, 503 before that and from the start
    /// of shutdown) over HTTP/1.1 at `addr`, from the start of [`run`](WorkerRuntime::run)
    /// until it returns. Off by default; `workq-worker --http` uses port 9464. An address
    /// that cannot be bound makes `run` return [`Error::Config`] naming it.
    #[cfg(feature = "http")]
    pub fn http(mut self, addr: std::net::SocketAddr) -> Self {
        self.cfg.http = Some(addr);
        self
    }

    /// How many copies this worker's claims and acks must reach (default
    /// [`Durability::Primary`]). With [`Durability::Replicas`] each claim and ack call is
    /// followed by `WAIT` on its connection; one whose writes did not reach the replicas in
    /// time is logged at WARN and counted in `workq_writes_not_durable_total{script}`, and
    /// the worker carries on (its jobs run, its outcomes stand on the primary): a failover
    /// then may bring back a claimed job as ENQUEUED (it runs again) or a finished one as
    /// RUNNING (its lease runs out and it runs again).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.cfg.durability = durability;
        self
    }

    /// Checks the settings.
    pub fn build(mut self) -> Result<WorkerRuntime> {
        self.cfg.durability.check()?;
        let invalid = |setting: &'static str, m: String| Err(Error::config(setting, m));
        if self.registry.is_empty() {
            return invalid("workers", "no workers registered".into());
        }
        if let Some(p) = self
            .registry
            .kinds()
            .into_iter()
            .find_map(workq_common::limits::kind_problem)
        {
            return invalid("workers", format!("{p} (no producer can enqueue it)"));
        }
        if !self.duplicates.is_empty() {
            return invalid(
                "workers",
                format!("kinds registered twice: {}", self.duplicates.join(", ")),
            );
        }
        if self.cfg.concurrency == 0 {
            return invalid("concurrency", "concurrency must be at least 1".into());
        }
        if self.cfg.lease < Duration::from_millis(300) {
            return invalid(
                "lease",
                format!("lease {:?} is too short (at least 300 ms)", self.cfg.lease),
            );
        }
        if self.cfg.worker_id.is_empty() || self.cfg.worker_id.len() > 200 {
            return invalid(
                "worker_id",
                format!("worker id '{}' must be 1 to 200 bytes", self.cfg.worker_id),
            );
        }
        if self.cfg.idle_poll.is_zero() {
            return invalid("idle_poll", "idle_poll must be above zero".into());
        }
        if self.cfg.labels.split(',').any(|l| {
            l.contains(|c: char| c == '@' || c == '#' || c == '{' || c == '}' || c.is_whitespace())
        }) {
            return invalid(
                "labels",
                format!(
                    "labels '{}' may not contain '@', '#', braces or spaces",
                    self.cfg.labels
                ),
            );
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
        self.cfg.claim_batch = match self.claim_batch {
            None => claim_batch(self.cfg.concurrency),
            Some(0) => return invalid("claim_batch", "claim_batch must be at least 1".into()),
            Some(n) => n.min(self.cfg.concurrency).min(MAX_CLAIM),
        };
        self.cfg.kinds = self.registry.kinds().join(",");
        self.cfg.presence_tail = format!("{}|{}", hostname(), self.cfg.concurrency);
        self.cfg.presence = format!(
            "{}|{}|{}",
            self.cfg.labels, self.cfg.kinds, self.cfg.presence_tail
        );
        let metrics = Metrics::new(
            self.cfg.concurrency,
            &queues.iter().map(QueueKeys::name).collect::<Vec<_>>(),
            &self.registry.kinds(),
        );
        Ok(WorkerRuntime {
            cfg: self.cfg,
            queues,
            registry: self.registry,
            metrics,
        })
    }
}

/// This machine's host name (`|` and `,` replaced, as presence separates fields with them).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned())
        .replace(['|', ','], "_")
}

fn default_worker_id() -> String {
    let host = hostname();
    let nonce = workq_common::WorkId::new().to_string();
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &nonce[nonce.len() - 6..]
    )
}

/// The most jobs one claim asks for: two claims are in flight at once, each for at most
/// half the slots, so that while Redis runs one, the jobs of the other start and finish
/// here and neither side waits for the other (a claim for every slot at once made a busy
/// drain a ping-pong: BENCHMARKS.md).
fn claim_batch(concurrency: usize) -> usize {
    concurrency.div_ceil(super::claim::IN_FLIGHT).min(MAX_CLAIM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_asks_for_half_the_slots_so_two_are_in_flight() {
        assert_eq!(claim_batch(50), 25);
        assert_eq!(claim_batch(51), 26);
        assert_eq!(claim_batch(1), 1, "one slot: one job a claim");
        assert_eq!(claim_batch(10_000), MAX_CLAIM);
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Nop;
    impl crate::Job for Nop {
        const KIND: &'static str = "nop";
    }
    struct NopWorker;
    impl Worker for NopWorker {
        type Job = Nop;
        async fn do_work(
            &self,
            _: &crate::WorkContext,
            _: Nop,
        ) -> std::result::Result<crate::WorkResult, crate::WorkError> {
            Ok(crate::WorkResult::success())
        }
    }

    fn built(b: WorkerRuntimeBuilder) -> Result<WorkerRuntime> {
        b.concurrency(50).register(NopWorker).build()
    }

    #[test]
    fn claim_batch_sets_the_claim_size_within_the_concurrency() -> Result<()> {
        let b = || WorkerRuntime::builder("redis://127.0.0.1:1");
        assert_eq!(built(b())?.cfg.claim_batch, 25, "default: half the slots");
        assert_eq!(built(b().claim_batch(50))?.cfg.claim_batch, 50);
        assert_eq!(built(b().claim_batch(7))?.cfg.claim_batch, 7);
        assert_eq!(
            built(b().claim_batch(500))?.cfg.claim_batch,
            50,
            "never more than the slots"
        );
        match built(b().claim_batch(0)) {
            Err(Error::Config(e)) => {
                assert_eq!(e.setting(), "claim_batch");
                assert_eq!(e.message(), "claim_batch must be at least 1");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn a_runtime_without_workers_is_a_config_error_naming_the_setting() {
        match WorkerRuntime::builder("redis://127.0.0.1:1").build() {
            Err(Error::Config(e)) => {
                assert_eq!(e.setting(), "workers");
                assert_eq!(e.message(), "no workers registered");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
