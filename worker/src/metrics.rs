use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Counters the runtime keeps for a metrics endpoint, in their own Prometheus registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    /// Jobs claimed, by queue.
    pub(crate) claimed: IntCounterVec,
    /// Script calls, by queue and script (claim, ack, heartbeat): with the job counters,
    /// how well calls are batched.
    pub(crate) calls: IntCounterVec,
    /// Attempts finished, by queue, kind and outcome (succeeded, failed, retry, error,
    /// panic, timeout, cancelled, undecodable, unknown_kind).
    pub(crate) finished: IntCounterVec,
    /// Attempt duration, by queue and kind.
    pub(crate) duration: HistogramVec,
    /// Attempts running now.
    pub(crate) running: IntGauge,
    /// Jobs this worker lost to an expired lease (fenced out), by queue.
    pub(crate) leases_lost: IntCounterVec,
    /// Acks Redis refused as stale, by queue.
    pub(crate) acks_refused: IntCounterVec,
    /// Failed Redis calls, by loop.
    pub(crate) redis_errors: IntCounterVec,
    /// Delay between a job's due time and the moment it was claimed.
    pub(crate) claim_lag: Histogram,
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
            "Acks refused by the fencing check",
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
                "Time from a job's due time to its claim",
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

    /// The registry holding every workq metric, to serve or merge into your own.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
