//! Idle: Redis commands an idle worker runtime sends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use workq_worker::WorkerRuntime;

use crate::common::*;
use crate::{Args, BoxError};

pub(crate) async fn idle(a: &Args) -> Result<Value, BoxError> {
    const WORKERS: usize = 4;
    let queue = queue_name("idle");
    let mut stops = Vec::new();
    let mut joins = Vec::new();
    for _ in 0..WORKERS {
        let rt = WorkerRuntime::builder(&a.redis)
            .queue(&queue)
            .register(NoopWorker {
                done: Arc::default(),
                target: u64::MAX,
                all_done: Arc::default(),
                yields: false,
            })
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        joins.push(tokio::spawn(rt.run_until(async {
            let _ = rx.await;
        })));
    }
    // Past start-up (connect, subscribe, first claim, start-up checks).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = info_field(&a.redis, "stats", "total_commands_processed").await?;
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(a.idle_secs)).await;
    let after = info_field(&a.redis, "stats", "total_commands_processed").await?;
    let secs = t0.elapsed().as_secs_f64();
    for s in stops {
        let _ = s.send(());
    }
    for j in joins {
        j.await??;
    }
    drop_queue(&a.redis, &queue).await?;
    // The first INFO is counted in `after`; it is ours, not the workers'.
    let cmds = after.saturating_sub(before).saturating_sub(1);
    Ok(json!({
        "scenario": "idle",
        "workers": WORKERS,
        "seconds": a.idle_secs,
        "redis_cmds_per_s_per_worker": ((cmds as f64 / secs / WORKERS as f64) * 100.0).round() / 100.0,
    }))
}
