//! What the dashboard remembers, in memory and bounded: a sample per queue every minute
//! (the succeeded and failed counters and the backlog) for the last hour's charts, and
//! the last reading of the counters per queue for the overview's rates.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use workq_common::time::now_ms;

use super::App;

/// Samples kept per queue: an hour at one a minute.
pub(crate) const MAX_SAMPLES: usize = 60;
/// Queues remembered (the first this many by name; the others get no history or rates).
pub(crate) const MAX_QUEUES: usize = 1000;
/// How often the sampler reads every queue.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(60);
/// The rates are over at least this long, and the reading they start from is renewed
/// once it is this much older again.
const RATE_MIN: Duration = Duration::from_secs(1);
const RATE_RENEW: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
struct Sample {
    at_ms: u64,
    succeeded: u64,
    failed: u64,
    backlog: u64,
}

/// Per queue, up to [`MAX_SAMPLES`] samples, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    queues: HashMap<String, VecDeque<Sample>>,
}

impl History {
    fn record(&mut self, queue: &str, s: Sample) {
        if !self.queues.contains_key(queue) && self.queues.len() >= MAX_QUEUES {
            return;
        }
        let samples = self.queues.entry(queue.to_owned()).or_default();
        samples.push_back(s);
        while samples.len() > MAX_SAMPLES {
            samples.pop_front();
        }
    }

    /// Forgets the queues that are gone.
    fn retain(&mut self, names: &HashSet<&str>) {
        self.queues.retain(|q, _| names.contains(q.as_str()));
    }

    /// The minutes between consecutive samples: jobs that succeeded and failed in each,
    /// and the backlog (ready + scheduled) at its end.
    pub(crate) fn minutes(&self, queue: &str) -> Vec<serde_json::Value> {
        let Some(samples) = self.queues.get(queue) else {
            return Vec::new();
        };
        let samples: Vec<&Sample> = samples.iter().collect();
        samples
            .windows(2)
            .map(|w| {
                json!({
                    "at_ms": w[1].at_ms,
                    "succeeded": w[1].succeeded.saturating_sub(w[0].succeeded),
                    "failed": w[1].failed.saturating_sub(w[0].failed),
                    "backlog": w[1].backlog,
                })
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Instant,
    succeeded: u64,
    failed: u64,
}

/// Per queue, the reading the rates are measured from and the last rates worked out.
#[derive(Debug, Default)]
pub(crate) struct Rates {
    queues: HashMap<String, (Reading, (f64, f64))>,
}

impl Rates {
    /// Succeeded and failed jobs per second since an earlier reading (0 at the first).
    pub(crate) fn observe(&mut self, queue: &str, succeeded: u64, failed: u64) -> (f64, f64) {
        let now = Reading {
            at: Instant::now(),
            succeeded,
            failed,
        };
        if !self.queues.contains_key(queue) && self.queues.len() >= MAX_QUEUES {
            return (0.0, 0.0);
        }
        let (base, rates) = self
            .queues
            .entry(queue.to_owned())
            .or_insert((now, (0.0, 0.0)));
        let dt = now.at.duration_since(base.at);
        if dt >= RATE_MIN {
            let secs = dt.as_secs_f64();
            *rates = (
                succeeded.saturating_sub(base.succeeded) as f64 / secs,
                failed.saturating_sub(base.failed) as f64 / secs,
            );
            if dt >= RATE_RENEW {
                *base = now;
            }
        }
        *rates
    }
}

/// Every [`SAMPLE_EVERY`] (and once at the start), samples every queue, until the
/// server stops. A Redis that does not answer costs that sample, nothing more.
pub(crate) async fn sample(app: Arc<App>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = app.stop.cancelled() => return,
        }
        if let Err(e) = sample_once(&app).await {
            tracing::warn!(error = %e, "dashboard: sampling the queues failed");
        }
    }
}

async fn sample_once(app: &App) -> workq_producer::Result<()> {
    let mut queues = app.wm.queues().await?;
    queues.truncate(MAX_QUEUES);
    let mut read = Vec::with_capacity(queues.len());
    for q in &queues {
        let s = app.wm.queue_stats(q).await?;
        let c = |k: &str| s.counters.get(k).copied().unwrap_or(0);
        read.push(Sample {
            at_ms: now_ms(),
            succeeded: c("succeeded"),
            failed: c("failed"),
            backlog: s.ready + s.scheduled,
        });
    }
    if let Ok(mut h) = app.history.lock() {
        h.retain(&queues.iter().map(String::as_str).collect());
        for (q, s) in queues.iter().zip(read) {
            h.record(q, s);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded() {
        let mut h = History::default();
        for i in 0..(MAX_SAMPLES as u64 + 10) {
            h.record(
                "q",
                Sample {
                    at_ms: i,
                    succeeded: i * 2,
                    failed: i,
                    backlog: 7,
                },
            );
        }
        let m = h.minutes("q");
        assert_eq!(m.len(), MAX_SAMPLES - 1);
        assert_eq!(m[0]["succeeded"], 2);
        for i in 0..(MAX_QUEUES + 5) {
            h.record(
                &format!("q{i}"),
                Sample {
                    at_ms: 0,
                    succeeded: 0,
                    failed: 0,
                    backlog: 0,
                },
            );
        }
        assert_eq!(h.queues.len(), MAX_QUEUES);
    }
}
