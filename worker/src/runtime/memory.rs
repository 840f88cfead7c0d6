//! Memory pressure: a Redis at its `maxmemory` refuses new work (enqueue gets OOM), and
//! with successes retained for an hour, draining the queue alone would not make room. This
//! loop reads `INFO memory` every few seconds (every half minute while Redis has no
//! `maxmemory`, in case one is set later); from 90% of `maxmemory` until usage is back
//! under 80%, every claim prunes the oldest finished jobs ahead of their retention (at most
//! a claim's pruning budget each), and idle claim loops are woken once a second to do it,
//! so a full Redis gets out of it without an operator. Finished jobs pruned early are
//! counted in the queue's `pruned_early` counter.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;

/// Pressure starts at this share of maxmemory...
const HIGH: f64 = 0.90;
/// ...and ends below this one.
const LOW: f64 = 0.80;
/// How often memory is read while there is room, and while there is pressure.
const EVERY: Duration = Duration::from_secs(5);
const EVERY_UNDER_PRESSURE: Duration = Duration::from_secs(1);
/// How often while Redis has no `maxmemory` (nothing to watch for until one is set): an
/// idle worker's commands are mostly these reads otherwise.
const EVERY_WITHOUT_LIMIT: Duration = Duration::from_secs(30);

/// `used_memory` and `maxmemory` from `INFO memory`; None when there is no limit.
pub(super) fn usage(info: &str) -> Option<f64> {
    let field = |name: &str| -> Option<u64> {
        workq_common::internal::server::info_field(info, name)?
            .parse()
            .ok()
    };
    let max = field("maxmemory").filter(|&m| m > 0)?;
    let used = field("used_memory")?;
    Some(used as f64 / max as f64)
}

/// Whether there is pressure after reading `usage`, given whether there was.
pub(super) fn under_pressure(was: bool, usage: Option<f64>) -> bool {
    match usage {
        None => false,
        Some(u) if was => u >= LOW,
        Some(u) => u >= HIGH,
    }
}

pub(super) async fn memory_loop(shared: Arc<Shared>, stop: CancellationToken) {
    let mut refused_logged = false;
    // Kept between reads (Shared::kept).
    let mut con: Option<workq_common::internal::Pooled> = None;
    let mut limited = true;
    loop {
        let was = shared.memory_pressure.load(Ordering::Relaxed);
        let read = async {
            let c = shared.kept(&mut con).await?;
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut **c)
                .await?;
            Ok::<_, workq_common::Error>(info)
        }
        .await;
        match read {
            Ok(info) => {
                let u = usage(&info);
                limited = u.is_some();
                let now = under_pressure(was, u);
                shared.memory_pressure.store(now, Ordering::Relaxed);
                if now && !was {
                    tracing::warn!(
                        used = format!("{:.0}%", u.unwrap_or(0.0) * 100.0),
                        "Redis is near its maxmemory: pruning the oldest finished jobs ahead of their retention until it is under {:.0}%",
                        LOW * 100.0
                    );
                } else if was && !now {
                    tracing::info!("Redis memory is back under {:.0}% of maxmemory: pruning follows retention again", LOW * 100.0);
                }
                if now {
                    // Idle claim loops come round to prune.
                    for q in &shared.queues {
                        q.wake.notify_one();
                    }
                }
            }
            Err(e) => {
                con = None;
                shared
                    .metrics
                    .redis_errors
                    .with_label_values(&["memory"])
                    .inc();
                // An outage is the other loops' business; a user not allowed INFO only
                // loses this safety net, which is said once.
                if !refused_logged && !e.is_transient() {
                    refused_logged = true;
                    tracing::warn!(error = %e, "cannot read INFO memory: finished jobs are pruned only after their retention, even when Redis is full");
                }
            }
        }
        let wait = if shared.memory_pressure.load(Ordering::Relaxed) {
            EVERY_UNDER_PRESSURE
        } else if limited {
            EVERY
        } else {
            EVERY_WITHOUT_LIMIT
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_starts_at_90_percent_and_ends_under_80() {
        let info =
            |used: u64, max: u64| format!("# Memory\r\nused_memory:{used}\r\nmaxmemory:{max}\r\n");
        assert_eq!(usage(&info(50, 0)), None, "no limit, no pressure");
        assert!(!under_pressure(false, usage(&info(89, 100))));
        assert!(under_pressure(false, usage(&info(90, 100))));
        assert!(under_pressure(true, usage(&info(85, 100))), "hysteresis");
        assert!(!under_pressure(true, usage(&info(79, 100))));
        assert!(!under_pressure(true, usage(&info(79, 0))));
    }
}
