//! The queues' metrics in the Prometheus text format: what `workq metrics` prints and
//! `workq serve` will serve. Queue state is a property of Redis, so one exporter per
//! deployment exports it (several may run for availability; the rules take `max` over
//! them); workers export only their own figures.
//!
//! One scrape costs a bounded number of Redis commands: one for the list of queues, then
//! per queue the two round trips of `queue_stats` (eight commands, then one per live
//! holder of jobs and three per lane), never a scan of job data.

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use workq_producer::{QueueStats, WorkManager};

/// The events the scripts count per queue (the `stats` hash), exported as
/// `workq_queue_events_total{event}`, each present at zero.
pub(crate) const EVENTS: [&str; 12] = [
    "enqueued",
    "claimed",
    "succeeded",
    "failed",
    "cancelled",
    "retried",
    "lease_expired",
    "released",
    "pruned",
    "operator_retried",
    "deleted",
    "purged",
];

/// Reads every queue and renders the exposition. A Redis that does not answer gives
/// `workq_redis_up 0` and no queue series (rather than an error page), so Prometheus
/// keeps the exporter up and the alert on `workq_redis_up` fires.
pub(crate) async fn render(wm: &WorkManager) -> Result<String, prometheus::Error> {
    let registry = Registry::new();
    let up = IntGauge::new(
        "workq_redis_up",
        "1 if the exporter's last read of Redis worked",
    )?;
    registry.register(Box::new(up.clone()))?;
    let read = async {
        let mut out = Vec::new();
        for q in wm.queues().await? {
            let s = wm.queue_stats(&q).await?;
            out.push((q, s));
        }
        Ok::<_, workq_producer::Error>(out)
    };
    match read.await {
        Ok(stats) => {
            up.set(1);
            queue_metrics(&registry, &stats)?;
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading the queues for the metrics failed");
            up.set(0);
        }
    }
    let mut text = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn queue_metrics(r: &Registry, stats: &[(String, QueueStats)]) -> prometheus::Result<()> {
    let jobs = gauge_vec(
        r,
        "workq_queue_jobs",
        "Jobs of the queue by state: ready (due now), scheduled (due later), running, \
         blocked (waiting for parents), and the finished jobs still retained: succeeded, failed, \
         cancelled",
        &["queue", "state"],
    )?;
    let oldest = prometheus::GaugeVec::new(
        Opts::new(
            "workq_queue_oldest_ready_age_seconds",
            "How long the oldest ready job has been due (0 when none is ready)",
        ),
        &["queue"],
    )?;
    r.register(Box::new(oldest.clone()))?;
    let unsatisfiable = gauge_vec(
        r,
        "workq_queue_unsatisfiable_jobs",
        "Enqueued jobs that no live worker can run (labels or kind)",
        &["queue"],
    )?;
    let paused = gauge_vec(
        r,
        "workq_queue_paused",
        "1 while the queue is paused: workers claim nothing from it",
        &["queue"],
    )?;
    let workers = gauge_vec(
        r,
        "workq_queue_workers",
        "Workers seen looking for work in the last minute",
        &["queue"],
    )?;
    let events = IntCounterVec::new(
        Opts::new(
            "workq_queue_events_total",
            "Events the queue's scripts counted since its data began",
        ),
        &["queue", "event"],
    )?;
    r.register(Box::new(events.clone()))?;
    for (q, s) in stats {
        for (state, n) in [
            ("ready", s.ready),
            ("scheduled", s.scheduled),
            ("running", s.running),
            ("blocked", s.blocked),
            ("succeeded", s.retained_succeeded),
            ("failed", s.retained_failed),
            ("cancelled", s.retained_cancelled),
        ] {
            jobs.with_label_values(&[q.as_str(), state]).set(int(n));
        }
        let age_ms = s.oldest_ready_age_ms.unwrap_or(0);
        oldest
            .with_label_values(&[q.as_str()])
            .set(age_ms as f64 / 1000.0);
        unsatisfiable
            .with_label_values(&[q.as_str()])
            .set(int(s.unsatisfiable));
        workers
            .with_label_values(&[q.as_str()])
            .set(int(s.workers.len() as u64));
        paused
            .with_label_values(&[q.as_str()])
            .set(i64::from(s.paused));
        for e in EVENTS {
            let n = s.counters.get(e).copied().unwrap_or(0);
            events.with_label_values(&[q.as_str(), e]).inc_by(n);
        }
    }
    Ok(())
}
