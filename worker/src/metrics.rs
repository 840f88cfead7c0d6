//! The worker's metrics, named as the observability issue names them (Prometheus
//! conventions: base units, `_total` on counters only, bounded labels only). Every
//! labelled series exists at zero from the moment the runtime is built: the queues and
//! kinds are known then, and the outcomes, loops, scripts and slot states are fixed lists
//! here, so a dashboard or an alert never has to tell "no such series" from "zero".

use std::collections::HashMap;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The `loop` label of `workq_redis_errors_total`: every loop that calls Redis.
pub(crate) const LOOPS: [&str; 7] = [
    "startup",
    "claim",
    "ack",
    "heartbeat",
    "wake",
    "memory",
    "release",
];

/// Buckets of `workq_attempt_duration_seconds`: from a no-op job to a five-minute one.
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0,
];
/// Buckets of `workq_job_lateness_seconds`: fine around the few milliseconds workq
/// promises, coarse beyond, where a backlog or an outage shows.
const LATENESS_BUCKETS: [f64; 13] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];
/// Buckets of `workq_redis_call_duration_seconds`: a script call on a healthy Redis takes
/// well under a millisecond; the reply timeout is 5 s.
const CALL_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0,
];

/// The metrics a runtime keeps, in their own Prometheus registry: serve them with
/// `WorkerRuntimeBuilder::http` (feature `http`), or
/// gather [`registry`](Metrics::registry) into your own endpoint. The process collector
/// (CPU, memory, file descriptors) is added by the HTTP endpoint only, so that this
/// registry merges into one that already has it.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs claimed, by queue.
    claimed: IntCounterVec,
    /// Attempts finished, by queue, kind and outcome.
    attempts: IntCounterVec,
    /// Attempt duration, by queue and kind.
    duration: HistogramVec,
    /// Start minus due time on Redis' clock, by queue.
    lateness: HistogramVec,
    /// Jobs this worker lost to an expired lease (fenced out), by queue.
    leases_lost: IntCounterVec,
    /// Outcomes not recorded because the attempt was fenced out (Redis refused the ack as
    /// stale, or a heartbeat had already found the lease lost), by queue.
    acks_refused: IntCounterVec,
    /// Failed Redis calls, by loop.
    pub(crate) redis_errors: IntCounterVec,
    /// Writes the primary applied that did not reach the copies the durability setting
    /// asks for in time, by script.
    pub(crate) not_durable: NotDurableMetrics,
    /// Script call time as this process saw it, by script.
    pub(crate) calls: ScriptMetrics,
    /// Slots running an attempt.
    pub(crate) busy: IntGauge,
    /// Slots free.
    pub(crate) idle: IntGauge,
}

/// How an attempt ended, as the `outcome` label says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    Retry,
    Error,
    Panic,
    Timeout,
    Cancelled,
    Undecodable,
    UnknownKind,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 9] = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Retry,
        Outcome::Error,
        Outcome::Panic,
        Outcome::Timeout,
        Outcome::Cancelled,
        Outcome::Undecodable,
        Outcome::UnknownKind,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Retry => "retry",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Timeout => "timeout",
            Outcome::Cancelled => "cancelled",
            Outcome::Undecodable => "undecodable",
            Outcome::UnknownKind => "unknown_kind",
        }
    }
}

/// The `workq_redis_call_duration_seconds` handles, one per script the worker calls.
#[derive(Clone, Debug)]
pub(crate) struct ScriptMetrics {
    pub(crate) claim: Histogram,
    pub(crate) ack: Histogram,
    pub(crate) heartbeat: Histogram,
    pub(crate) release: Histogram,
    pub(crate) progress: Histogram,
}

/// The `workq_writes_not_durable_total` handles, one per script whose writes wait for
/// replicas.
#[derive(Clone, Debug)]
pub(crate) struct NotDurableMetrics {
    pub(crate) claim: IntCounter,
    pub(crate) ack: IntCounter,
}

/// Handles for one queue, resolved once so that the per-job path does no label lookups.
#[derive(Debug)]
pub(crate) struct QueueMetrics {
    pub(crate) claimed: IntCounter,
    pub(crate) lateness: Histogram,
    pub(crate) leases_lost: IntCounter,
    pub(crate) acks_refused: IntCounter,
    kinds: HashMap<String, KindMetrics>,
    unknown: KindMetrics,
}

impl QueueMetrics {
    /// The handles of `kind` (kinds no worker is registered for share "unknown").
    pub(crate) fn kind(&self, kind: &str) -> &KindMetrics {
        self.kinds.get(kind).unwrap_or(&self.unknown)
    }
}

/// Handles for one kind in one queue.
#[derive(Debug)]
pub(crate) struct KindMetrics {
    attempts: Vec<IntCounter>,
    pub(crate) duration: Histogram,
}

impl KindMetrics {
    pub(crate) fn attempts(&self, outcome: Outcome) -> &IntCounter {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        &self.attempts[i]
    }
}

/// Registers `c` in `registry`. The names and labels are this file's constants, so a
/// failure is a bug here, caught by every test that builds a runtime.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric registration: {e}"));
    c
}

impl Metrics {
    /// The metrics of a runtime with `concurrency` slots serving `queues` with `kinds`,
    /// every labelled series at zero.
    pub(crate) fn new(concurrency: usize, queues: &[&str], kinds: &[&str]) -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            register(&registry, c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            register(&registry, h)
        };
        let claimed = counter("workq_jobs_claimed_total", "Jobs claimed", &["queue"]);
        let attempts = counter(
            "workq_attempts_total",
            "Attempts finished, by outcome",
            &["queue", "kind", "outcome"],
        );
        let duration = histogram(
            "workq_attempt_duration_seconds",
            "Attempt run time",
            &["queue", "kind"],
            &DURATION_BUCKETS,
        );
        let lateness = histogram(
            "workq_job_lateness_seconds",
            "Start minus due time on Redis' clock, per job",
            &["queue"],
            &LATENESS_BUCKETS,
        );
        let leases_lost = counter(
            "workq_leases_lost_total",
            "Jobs abandoned because their lease was taken over",
            &["queue"],
        );
        let acks_refused = counter(
            "workq_acks_refused_total",
            "Outcomes not recorded because the attempt was fenced out (its lease ended and another attempt owns the job)",
            &["queue"],
        );
        let redis_errors = counter("workq_redis_errors_total", "Failed Redis calls", &["loop"]);
        let not_durable = counter(
            "workq_writes_not_durable_total",
            "Script calls whose writes the primary applied but that did not reach the replicas the durability setting asks for in time",
            &["script"],
        );
        let not_durable = NotDurableMetrics {
            claim: not_durable.with_label_values(&["claim"]),
            ack: not_durable.with_label_values(&["ack"]),
        };
        let call_duration = histogram(
            "workq_redis_call_duration_seconds",
            "Script call time, as this process waited for it",
            &["script"],
            &CALL_BUCKETS,
        );
        let slots = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("workq_worker_slots", "Attempt slots, busy or idle"),
                &["state"],
            )
            .unwrap_or_else(|e| panic!("metric workq_worker_slots: {e}")),
        );
        let build = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("workq_build_info", "1, labelled with workq's version"),
                &["version"],
            )
            .unwrap_or_else(|e| panic!("metric workq_build_info: {e}")),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        for l in LOOPS {
            redis_errors.with_label_values(&[l]);
        }
        let script = |s: &str| call_duration.with_label_values(&[s]);
        let calls = ScriptMetrics {
            claim: script("claim"),
            ack: script("ack"),
            heartbeat: script("heartbeat"),
            release: script("release"),
            progress: script("progress"),
        };
        let (busy, idle) = (
            slots.with_label_values(&["busy"]),
            slots.with_label_values(&["idle"]),
        );
        idle.set(i64::try_from(concurrency).unwrap_or(i64::MAX));
        let metrics = Metrics {
            registry,
            claimed,
            attempts,
            duration,
            lateness,
            leases_lost,
            acks_refused,
            redis_errors,
            not_durable,
            calls,
            busy,
            idle,
        };
        // Resolving a queue's handles creates its series at zero.
        for q in queues {
            metrics.for_queue(q, kinds);
        }
        metrics
    }

    /// Resolves the handles of one queue served with these kinds.
    pub(crate) fn for_queue(&self, queue: &str, kinds: &[&str]) -> QueueMetrics {
        let kind = |k: &str| KindMetrics {
            attempts: Outcome::ALL
                .iter()
                .map(|o| self.attempts.with_label_values(&[queue, k, o.as_str()]))
                .collect(),
            duration: self.duration.with_label_values(&[queue, k]),
        };
        QueueMetrics {
            claimed: self.claimed.with_label_values(&[queue]),
            lateness: self.lateness.with_label_values(&[queue]),
            leases_lost: self.leases_lost.with_label_values(&[queue]),
            acks_refused: self.acks_refused.with_label_values(&[queue]),
            kinds: kinds.iter().map(|k| ((*k).to_owned(), kind(k))).collect(),
            unknown: kind("unknown"),
        }
    }

    /// An attempt took a slot.
    pub(crate) fn slot_taken(&self) {
        self.busy.inc();
        self.idle.dec();
    }

    /// An attempt gave its slot back.
    pub(crate) fn slot_freed(&self) {
        self.busy.dec();
        self.idle.inc();
    }

    /// The registry holding every workq metric, to serve or merge into your own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_labelled_series_exists_at_zero_when_built() {
        let m = Metrics::new(4, &["default"], &["a"]);
        let families = m.registry().gather();
        let series = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map_or(0, |f| f.get_metric().len())
        };
        // Kind "a" and the shared "unknown", each with every outcome.
        assert_eq!(series("workq_attempts_total"), 2 * Outcome::ALL.len());
        assert_eq!(series("workq_redis_errors_total"), LOOPS.len());
        assert_eq!(series("workq_redis_call_duration_seconds"), 5);
        assert_eq!(series("workq_worker_slots"), 2);
        assert_eq!(series("workq_job_lateness_seconds"), 1);
        assert_eq!(series("workq_build_info"), 1);
    }
}
