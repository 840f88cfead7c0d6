//! The demo's two commands: `demo-enqueue` (the seed scenario of deploy/local/demo.sh)
//! and `verify` (every job SUCCEEDED, none lost).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use workq_common::demo::{Count, Noop};
use workq_producer::{BackoffPolicy, OneTimeWorkRequest, WorkId, WorkManager};

use crate::inspect::describe;
use crate::BoxError;

/// `demo-enqueue`'s flags.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Where to write the ids.
    #[arg(long, value_name = "F")]
    pub(crate) ids_file: PathBuf,
    /// The counting job's id (default: a new one).
    #[arg(long, value_name = "ID")]
    pub(crate) count_id: Option<WorkId>,
    /// How far the counting job counts.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub(crate) count_to: u32,
    /// The pause between its steps.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    pub(crate) step_ms: u64,
    /// Its initial delay.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub(crate) delay_ms: u64,
    /// How many small (no-op) jobs.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub(crate) small: u64,
}

/// The seed scenario: a counting job with an initial delay and the tag `worker_test`,
/// plus small jobs. Writes all ids to the file, the counting job first.
pub(crate) async fn enqueue(wm: &WorkManager, demo: DemoArgs) -> Result<ExitCode, BoxError> {
    let DemoArgs {
        ids_file,
        count_id,
        count_to,
        step_ms,
        delay_ms,
        small,
    } = demo;
    let count = OneTimeWorkRequest::builder(Count {
        to: count_to,
        step_ms,
    })
    .id(count_id.unwrap_or_else(WorkId::new))
    .initial_delay(Duration::from_millis(delay_ms))
    .tag("worker_test")
    .backoff(BackoffPolicy::Linear, Duration::from_secs(1))
    .max_attempts(5)
    .build()?;
    let mut ids = vec![wm.enqueue(count).await?.id];
    println!("enqueued the counting job {} (tag worker_test)", ids[0]);
    let reqs = (0..small)
        .map(|i| OneTimeWorkRequest::builder(Noop { i }).build())
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    for chunk in reqs.chunks(1000) {
        ids.extend(wm.enqueue_many(chunk.to_vec()).await?.iter().map(|e| e.id));
    }
    println!("enqueued {small} small jobs in {:?}", t.elapsed());
    let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
    std::fs::write(ids_file, text)?;
    println!("producer exits; the work goes on without it");
    Ok(ExitCode::SUCCESS)
}

/// Checks that every job in the file SUCCEEDED (waiting up to --wait-secs for stragglers)
/// and that the first one took the expected number of attempts.
pub(crate) async fn verify(
    wm: &WorkManager,
    ids_file: &Path,
    attempts_of_first: Option<u32>,
    wait_secs: u64,
) -> Result<ExitCode, BoxError> {
    let ids = std::fs::read_to_string(ids_file)?
        .lines()
        .map(str::parse)
        .collect::<Result<Vec<WorkId>, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let infos = loop {
        let infos = wm.get_work_infos(&ids).await?;
        let done = infos
            .iter()
            .all(|i| i.as_ref().is_none_or(|i| i.state.is_finished()));
        if done || Instant::now() >= deadline {
            break infos;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut by_state: HashMap<String, usize> = HashMap::new();
    for i in &infos {
        let k = i
            .as_ref()
            .map_or("LOST".to_owned(), |i| i.state.to_string());
        *by_state.entry(k).or_default() += 1;
    }
    let mut summary: Vec<_> = by_state.iter().collect();
    summary.sort();
    println!("summary of {} jobs: {summary:?}", ids.len());
    let mut ok = by_state.get("SUCCEEDED") == Some(&ids.len());
    if let Some(Some(first)) = infos.first() {
        println!("counting job: {}", describe(first));
        if let Some(want) = attempts_of_first {
            if first.run_attempt_count != want {
                println!("expected the counting job on attempt {want}");
                ok = false;
            }
        }
    }
    if ok {
        println!("OK: every job SUCCEEDED, none lost");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("FAILED: not every job SUCCEEDED");
        Ok(ExitCode::from(1))
    }
}
