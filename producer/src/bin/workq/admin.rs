//! The operator's commands: `jobs`, `pause`, `resume`, `retry`, `run-now`, `delete`,
//! `purge` (the library's admin operations, `producer/src/admin.rs`).

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;
use workq_producer::{AdminStatus, JobFilter, JobListing, WorkId, WorkManager, WorkState};

use crate::BoxError;

/// `workq jobs`.
#[derive(Debug, Args)]
pub(crate) struct JobsArgs {
    /// The queue.
    #[arg(long, default_value = workq_producer::DEFAULT_QUEUE)]
    queue: String,
    /// ready, scheduled, running, blocked, succeeded, failed, cancelled or finished.
    #[arg(long, default_value = "ready")]
    state: String,
    /// Only jobs of this kind.
    #[arg(long)]
    kind: Option<String>,
    /// Only jobs with this tag.
    #[arg(long)]
    tag: Option<String>,
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
    if let Some(c) = a.after {
        l = l.after(c);
    }
    let page = wm.list_jobs(&l).await?;
    if a.json {
        let jobs: Vec<_> = page.jobs.iter().map(crate::json::info_json).collect();
        println!("{}", json!({ "jobs": jobs, "next": page.next }));
    } else {
        for i in &page.jobs {
            println!("{}", crate::describe(i));
        }
        if let Some(c) = page.next {
            println!("(more: --after {c})");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_name(s: AdminStatus) -> &'static str {
    match s {
        AdminStatus::Done => "done",
        AdminStatus::NotFound => "not_found",
        AdminStatus::WrongState => "wrong_state",
        AdminStatus::AlreadyDue => "already_due",
        _ => "unknown",
    }
}

/// Prints each id's status; exit 1 when one was not found or not in a state the
/// operation applies to.
fn report(ids: &[WorkId], st: &[AdminStatus], json: bool, what: &str) -> ExitCode {
    let mut all = true;
    let mut doc = serde_json::Map::new();
    for (id, s) in ids.iter().zip(st) {
        all &= matches!(s, AdminStatus::Done | AdminStatus::AlreadyDue);
        if json {
            doc.insert(id.to_string(), json!(status_name(*s)));
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
    let n = wm.retry_all_failed(queue).await?;
    if json {
        println!("{}", json!({ "queue": queue, "retried": n }));
    } else {
        println!("{queue}: retried {n} failed jobs");
    }
    Ok(ExitCode::SUCCESS)
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
    let n = wm.purge(queue, state).await?;
    if json {
        println!("{}", json!({ "queue": queue, "purged": n }));
    } else {
        println!("{queue}: purged {n} jobs");
    }
    Ok(ExitCode::SUCCESS)
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
