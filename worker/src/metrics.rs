use std::collections::HashMap;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Counters the runtime keeps for a metrics endpoint, in their own Prometheus registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs claimed, by queue.
    claimed: IntCounterVec,
    /// Script calls, by queue and script (claim, ack, heartbeat): with the job counters,
    /// how well calls are batched.
    calls: IntCounterVec,
    /// Attempts finished, by queue, kind and outcome.
    finished: IntCounterVec,
    /// Attempt duration, by queue and kind.
    duration: HistogramVec,
    /// Attempts running now.
    pub(crate) running: IntGauge,
    /// Jobs this worker lost to an expired lease (fenced out), by queue.
    leases_lost: IntCounterVec,
    /// Outcomes not recorded because the attempt was fenced out (Redis refused the ack as
    /// stale, or a heartbeat had already found the lease lost), by queue.
    acks_refused: IntCounterVec,
    /// Failed Redis calls, by loop.
    pub(crate) redis_errors: IntCounterVec,
    /// Per claim that took jobs: how late the most overdue of them was.
    pub(crate) claim_lag: Histogram,
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
    const ALL: [Outcome; 9] = [
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

/// Handles for one queue, resolved once so that the per-job path does no label lookups.
#[derive(Debug)]
pub(crate) struct QueueMetrics {
    pub(crate) claimed: IntCounter,
    pub(crate) claim_calls: IntCounter,
    pub(crate) ack_calls: IntCounter,
    pub(crate) heartbeat_calls: IntCounter,
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
    finished: Vec<IntCounter>,
    pub(crate) duration: Histogram,
}

impl KindMetrics {
    pub(crate) fn finished(&self, outcome: Outcome) -> &IntCounter {
        let i = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        &self.finished[i]
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            registry
                .register(Box::new(c.clone()))
                .unwrap_or_else(|e| panic!("metric {name}: {e}"));
            c
        };
        let claimed = counter("workq_jobs_claimed_total", "Jobs claimed", &["queue"]);
        let calls = counter(
            "workq_script_calls_total",
            "Script calls made to Redis",
            &["queue", "script"],
        );
        let finished = counter(
            "workq_attempts_finished_total",
            "Attempts finished, by outcome",
            &["queue", "kind", "outcome"],
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
        let duration = HistogramVec::new(
            HistogramOpts::new("workq_attempt_duration_seconds", "Attempt run time"),
            &["queue", "kind"],
        )
        .unwrap_or_else(|e| panic!("duration metric: {e}"));
        let running = IntGauge::new("workq_attempts_running", "Attempts running now")
            .unwrap_or_else(|e| panic!("running metric: {e}"));
        let claim_lag = Histogram::with_opts(
            HistogramOpts::new(
                "workq_claim_lag_seconds",
                "How late the most overdue job of each claim was: claim time minus its due time",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
            ]),
        )
        .unwrap_or_else(|e| panic!("claim lag metric: {e}"));
        for m in [
            Box::new(duration.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(running.clone()),
            Box::new(claim_lag.clone()),
        ] {
            registry
                .register(m)
                .unwrap_or_else(|e| panic!("metric registration: {e}"));
        }
        Metrics {
            registry,
            claimed,
            calls,
            finished,
            duration,
            running,
            leases_lost,
            acks_refused,
            redis_errors,
            claim_lag,
        }
    }

    /// Resolves the handles of one queue served with these kinds.
    pub(crate) fn for_queue(&self, queue: &str, kinds: &[&str]) -> QueueMetrics {
        let kind = |k: &str| KindMetrics {
            finished: Outcome::ALL
                .iter()
                .map(|o| self.finished.with_label_values(&[queue, k, o.as_str()]))
                .collect(),
            duration: self.duration.with_label_values(&[queue, k]),
        };
        QueueMetrics {
            claimed: self.claimed.with_label_values(&[queue]),
            claim_calls: self.calls.with_label_values(&[queue, "claim"]),
            ack_calls: self.calls.with_label_values(&[queue, "ack"]),
            heartbeat_calls: self.calls.with_label_values(&[queue, "heartbeat"]),
            leases_lost: self.leases_lost.with_label_values(&[queue]),
            acks_refused: self.acks_refused.with_label_values(&[queue]),
            kinds: kinds.iter().map(|k| ((*k).to_owned(), kind(k))).collect(),
            unknown: kind("unknown"),
        }
    }

    /// The registry holding every workq metric, to serve or merge into your own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
