//! The operator's commands: `jobs`, `pause`, `resume`, `retry`, `run-now`, `delete`,
//! `purge` (the library's admin operations, `producer/src/admin.rs`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use workq_producer::{
    AdminStatus, BulkCursor, JobFilter, JobListing, WorkId, WorkManager, WorkState,
};

use crate::BoxError;

/// `workq jobs`.
#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    /// The queue.
    #[arg(long, default_value = workq_producer::DEFAULT_QUEUE)]
    queue: String,
    /// ready, scheduled, running, blocked, succeeded, failed, cancelled, finished or
    /// periodic.
    #[arg(long, default_value = "ready")]
    state: String,
    /// Only jobs of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only jobs with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only the work of this unique name.
    #[arg(long, value_name = "NAME")]
    unique: Option<String>,
    /// Newest first.
    #[arg(long)]
    newest: bool,
    /// Jobs per page (at most 1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// The page after this cursor (printed after a page that has more).
    #[arg(long)]
    after: Option<String>,
    /// One JSON document: {"jobs": [...], "next": cursor or null}.
    #[arg(long)]
    json: bool,
}

/// The ids a command acts on.
#[derive(Debug, Args)]
pub(crate) struct IdsArgs {
    /// The jobs' ids.
    #[arg(required = true)]
    ids: Vec<WorkId>,
    /// One JSON document: {"<id>": "<status>", ...}.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn jobs(wm: &WorkManager, a: JobsArgs) -> Result<ExitCode, BoxError> {
    let mut l = JobListing::new(&a.queue, JobFilter::parse(&a.state)?).limit(a.limit);
    if a.newest {
        l = l.newest_first();
    }
    if let Some(k) = a.kind {
        l = l.kind(k);
    }
    if let Some(t) = a.tag {
        l = l.tag(t);
    }
    if let Some(n) = a.unique {
        l = l.unique_name(n);
    }
    if let Some(c) = a.after {
        l = l.after(c);
    }
    let page = wm.list_jobs(&l).await?;
    if a.json {
        let jobs: Vec<_> = page.jobs.iter().map(crate::json::info_json).collect();
        println!("{}", json!({ "jobs": jobs, "next": page.next }));
    } else {
        for i in &page.jobs {
            println!("{}", crate::inspect::describe(i));
        }
        if let Some(c) = page.next {
            println!("(more: --after {c})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each id's status; exit 1 when one was not found or not in a state the
/// operation applies to.
fn report(ids: &[WorkId], st: &[AdminStatus], json: bool, what: &str) -> ExitCode {
    let mut all = true;
    let mut doc = serde_json::Map::new();
    for (id, s) in ids.iter().zip(st) {
        all &= matches!(s, AdminStatus::Done | AdminStatus::AlreadyDue);
        if json {
            doc.insert(id.to_string(), json!(crate::json::admin_status(*s)));
        } else {
            let text = match s {
                AdminStatus::Done => what.to_owned(),
                AdminStatus::NotFound => {
                    "not found (never enqueued, or pruned after retention)".to_owned()
                }
                AdminStatus::WrongState => "not in a state this applies to".to_owned(),
                AdminStatus::AlreadyDue => "already due".to_owned(),
                _ => "unknown status".to_owned(),
            };
            println!("{id}: {text}");
        }
    }
    if json {
        println!("{}", serde_json::Value::Object(doc));
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// On a terminal, asks before a destructive command; elsewhere (a script, a pipe) goes
/// on only with --yes.
fn confirm(question: &str, yes: bool) -> Result<bool, BoxError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(format!("{question}: refused without --yes (stdin is not a terminal)").into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub(crate) async fn retry(wm: &WorkManager, a: IdsArgs) -> Result<ExitCode, BoxError> {
    let st = wm.retry_work(&a.ids).await?;
    Ok(report(&a.ids, &st, a.json, "retried"))
}

pub(crate) async fn retry_failed(
    wm: &WorkManager,
    queue: &str,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let total = wm.count_jobs(queue, JobFilter::Failed).await?;
    let bar = progress(total, "retrying");
    let (n, stopped) = in_steps(wm, queue, Bulk::RetryFailed, &bar).await?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            json!({ "queue": queue, "retried": n, "interrupted": stopped })
        );
    } else {
        println!(
            "{queue}: retried {n} failed jobs{}",
            if stopped { " (interrupted)" } else { "" }
        );
    }
    Ok(if stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// A progress bar on stderr for a bulk operation over about `total` jobs, with its rate
/// and ETA; hidden when stderr is not a terminal.
fn progress(total: u64, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} {wide_bar} {pos}/{len} jobs, {per_sec}, ETA {eta} (Ctrl-C stops between steps)",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// A whole-queue operation done in steps.
#[derive(Clone, Copy, Debug)]
enum Bulk {
    RetryFailed,
    Purge(Option<WorkState>),
}

/// Runs the operation's steps until it has gone through the queue or Ctrl-C (SIGINT)
/// arrives; each step is one atomic script call, so stopping between two leaves nothing
/// half done. Returns how many jobs it changed and whether it was interrupted.
async fn in_steps(
    wm: &WorkManager,
    queue: &str,
    op: Bulk,
    bar: &ProgressBar,
) -> Result<(u64, bool), BoxError> {
    let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
    let mut cursor = BulkCursor::new();
    while !cursor.finished() {
        let step = async {
            match op {
                Bulk::RetryFailed => wm.retry_failed_step(queue, &mut cursor).await,
                Bulk::Purge(state) => wm.purge_step(queue, state, &mut cursor).await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut interrupt => return Ok((cursor.changed, true)),
            r = step => { r?; }
        }
        bar.set_position(cursor.changed);
    }
    Ok((cursor.changed, false))
}

pub(crate) async fn run_now(wm: &WorkManager, a: IdsArgs) -> Result<ExitCode, BoxError> {
    let st = wm.run_work_now(&a.ids).await?;
    Ok(report(&a.ids, &st, a.json, "due now"))
}

pub(crate) async fn delete(
    wm: &WorkManager,
    a: IdsArgs,
    force: bool,
    yes: bool,
) -> Result<ExitCode, BoxError> {
    if !confirm(&format!("delete {} job(s)", a.ids.len()), yes)? {
        return Ok(ExitCode::from(1));
    }
    let st = wm.delete_work(&a.ids, force).await?;
    Ok(report(&a.ids, &st, a.json, "deleted"))
}

pub(crate) async fn purge(
    wm: &WorkManager,
    queue: &str,
    state: &str,
    yes: bool,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let state = match state {
        "finished" | "all" => None,
        "succeeded" => Some(WorkState::Succeeded),
        "failed" => Some(WorkState::Failed),
        "cancelled" => Some(WorkState::Cancelled),
        other => {
            return Err(format!(
                "purge --state {other}: use succeeded, failed, cancelled or finished"
            )
            .into())
        }
    };
    let what = state.map_or("finished".to_owned(), |s| s.to_string());
    if !confirm(&format!("purge every {what} job of queue {queue}"), yes)? {
        return Ok(ExitCode::from(1));
    }
    let total = match state {
        None => wm.count_jobs(queue, JobFilter::Finished).await?,
        Some(WorkState::Succeeded) => wm.count_jobs(queue, JobFilter::Succeeded).await?,
        Some(WorkState::Failed) => wm.count_jobs(queue, JobFilter::Failed).await?,
        Some(_) => wm.count_jobs(queue, JobFilter::Cancelled).await?,
    };
    let bar = progress(total, "purging");
    let (n, stopped) = in_steps(wm, queue, Bulk::Purge(state), &bar).await?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            json!({ "queue": queue, "purged": n, "interrupted": stopped })
        );
    } else {
        println!(
            "{queue}: purged {n} jobs{}",
            if stopped { " (interrupted)" } else { "" }
        );
    }
    Ok(if stopped {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn pause(wm: &WorkManager, queue: &str, on: bool) -> Result<ExitCode, BoxError> {
    let changed = if on {
        wm.pause_queue(queue).await?
    } else {
        wm.resume_queue(queue).await?
    };
    let now = if on { "paused" } else { "running" };
    if changed {
        println!("{queue}: {now}");
    } else {
        println!("{queue}: already {now}");
    }
    Ok(ExitCode::SUCCESS)
}
