//! The commands that read: `info`, `stats`, `queues`, `workers`, `periodic`, `watch`, and
//! `cancel` (which reports like them). Each prints text by default and one JSON document
//! (JSON lines for `watch`) with `--json`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use workq_common::time::{epoch_ms, now_ms};
use workq_producer::{
    CancelStatus, JobFilter, JobListing, Schedule, WorkId, WorkInfo, WorkManager, WorkState,
};

use crate::json::{data_json, info_json, queue_json, worker_json};
use crate::table::{opt, render};
use crate::BoxError;

/// One line about a job (`info`, `jobs`).
pub(crate) fn describe(i: &WorkInfo) -> String {
    let mut s = format!(
        "{} {} kind={} queue={} attempts={}/{}",
        i.id, i.state, i.kind, i.queue, i.run_attempt_count, i.max_attempts
    );
    if !i.tags.is_empty() {
        s += &format!(" tags={}", i.tags.join(","));
    }
    if let Some(w) = &i.worker {
        s += &format!(" worker={w}");
    }
    if let Some(t) = i.next_due_at {
        s += &format!(
            " due_in_ms={}",
            i128::from(epoch_ms(t)) - i128::from(now_ms())
        );
    }
    if let Some(e) = &i.last_error {
        s += &format!(" last_error={e:?}");
    }
    s
}

fn not_found(id: WorkId, json: bool) -> ExitCode {
    if json {
        println!("{}", json!({ "id": id.to_string(), "error": "not_found" }));
    } else {
        println!("{id} not found (never enqueued, or pruned after retention)");
    }
    ExitCode::from(1)
}

/// `workq info ID`: the summary line, then the job in full (input and output as JSON,
/// progress, error history, chain, schedule); `--json`: [`info_json`].
pub(crate) async fn info(wm: &WorkManager, id: WorkId, json: bool) -> Result<ExitCode, BoxError> {
    let Some(i) = wm.get_work_info(id).await? else {
        return Ok(not_found(id, json));
    };
    if json {
        println!("{}", info_json(&i));
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", describe(&i));
    let t = |t: Option<std::time::SystemTime>| opt(t.map(epoch_ms));
    println!(
        "  enqueued_at_ms={} started_at_ms={} finished_at_ms={}",
        epoch_ms(i.enqueued_at),
        t(i.started_at),
        t(i.finished_at)
    );
    println!("  input: {}", data_json(&i.input));
    if let Some(o) = &i.output {
        println!("  output: {}", data_json(o));
    }
    if let Some(p) = &i.progress {
        println!("  progress: {}", data_json(p));
    }
    for e in &i.errors {
        println!(
            "  error (attempt {} at {} ms): {}",
            e.attempt,
            epoch_ms(e.at),
            e.message
        );
    }
    if let Some(n) = &i.unique_name {
        println!("  unique name: {n}");
    }
    let ids = |v: &[WorkId]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    if !i.parents.is_empty() {
        println!("  parents: {}", ids(&i.parents));
    }
    if !i.children.is_empty() {
        println!("  children: {}", ids(&i.children));
    }
    if let Some(s) = &i.schedule {
        println!("  schedule: {}", schedule(s));
    }
    if let Some(r) = &i.last_run {
        println!("  last run: {} at {} ms", r.outcome, epoch_ms(r.at));
    }
    Ok(ExitCode::SUCCESS)
}

fn schedule(s: &Schedule) -> String {
    match s {
        Schedule::Interval { interval, flex } if interval == flex => {
            format!("every {}s", interval.as_secs_f64())
        }
        Schedule::Interval { interval, flex } => {
            format!(
                "every {}s, in its last {}s",
                interval.as_secs_f64(),
                flex.as_secs_f64()
            )
        }
        Schedule::Cron(c) => format!("cron {c}"),
        _ => "-".to_owned(),
    }
}

async fn queue_list(wm: &WorkManager, queue: Option<String>) -> Result<Vec<String>, BoxError> {
    Ok(match queue {
        Some(q) => vec![q],
        None => wm.queues().await?,
    })
}

/// `workq stats [QUEUE]`: one line of counts and counters per queue.
pub(crate) async fn stats(
    wm: &WorkManager,
    queue: Option<String>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let mut docs = Vec::new();
    for q in queue_list(wm, queue).await? {
        let s = wm.queue_stats(&q).await?;
        if json {
            docs.push(queue_json(&q, &s));
            continue;
        }
        let mut counters: Vec<_> = s.counters.iter().collect();
        counters.sort();
        let counters: Vec<String> = counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{q}: enqueued={} (ready={} scheduled={} oldest_ready_age_ms={}) running={} \
             finished_retained={} (succeeded={} failed={} cancelled={}){} | {}",
            s.enqueued,
            s.ready,
            s.scheduled,
            opt(s.oldest_ready_age_ms),
            s.running,
            s.finished,
            s.retained_succeeded,
            s.retained_failed,
            s.retained_cancelled,
            if s.paused { " PAUSED" } else { "" },
            counters.join(" ")
        );
    }
    if json {
        println!("{}", json!({ "queues": docs }));
    }
    Ok(ExitCode::SUCCESS)
}

/// `workq queues`: a table of every queue's sizes by state and whether it is paused.
/// `--json` gives the same document as `workq stats --json`.
pub(crate) async fn queues(wm: &WorkManager, json: bool) -> Result<ExitCode, BoxError> {
    if json {
        return stats(wm, None, true).await;
    }
    let mut rows = Vec::new();
    for q in wm.queues().await? {
        let s = wm.queue_stats(&q).await?;
        rows.push(vec![
            q,
            if s.paused { "paused" } else { "active" }.to_owned(),
            s.ready.to_string(),
            s.scheduled.to_string(),
            s.running.to_string(),
            s.blocked.to_string(),
            s.retained_failed.to_string(),
            s.retained_succeeded.to_string(),
            s.workers.len().to_string(),
        ]);
    }
    let headers = [
        "QUEUE",
        "STATE",
        "READY",
        "SCHEDULED",
        "RUNNING",
        "BLOCKED",
        "FAILED",
        "SUCCEEDED",
        "WORKERS",
    ];
    println!("{}", render(&headers, &rows));
    Ok(ExitCode::SUCCESS)
}

/// `workq workers [QUEUE]`: the workers seen on each queue in the last hour.
pub(crate) async fn workers(
    wm: &WorkManager,
    queue: Option<String>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let mut all = Vec::new();
    for q in queue_list(wm, queue).await? {
        all.extend(wm.list_workers(&q).await?);
    }
    if json {
        let docs: Vec<_> = all.iter().map(worker_json).collect();
        println!("{}", json!({ "workers": docs }));
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|w| {
            vec![
                w.queue.clone(),
                w.id.clone(),
                opt(w.host.as_ref()),
                format!("{}/{}", w.busy, opt(w.slots)),
                if w.kinds.is_empty() {
                    "*".to_owned()
                } else {
                    w.kinds.join(",")
                },
                if w.labels.is_empty() {
                    "-".to_owned()
                } else {
                    w.labels.join(",")
                },
                format!("{}s ago", now.saturating_sub(epoch_ms(w.last_seen)) / 1000),
                if w.live { "live" } else { "gone" }.to_owned(),
            ]
        })
        .collect();
    let headers = [
        "QUEUE", "WORKER", "HOST", "BUSY", "KINDS", "LABELS", "SEEN", "STATUS",
    ];
    println!("{}", render(&headers, &rows));
    Ok(ExitCode::SUCCESS)
}

/// `workq periodic [QUEUE]`: periodic work with its schedule, next run and last outcome
/// (each queue walked a page at a time: the queue keeps no index of periodic jobs).
pub(crate) async fn periodic(
    wm: &WorkManager,
    queue: Option<String>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let mut all = Vec::new();
    for q in queue_list(wm, queue).await? {
        let mut l = JobListing::new(q, JobFilter::Periodic).limit(workq_producer::MAX_PAGE);
        loop {
            let page = wm.list_periodic(&l).await?;
            all.extend(page.jobs);
            match page.next {
                Some(c) => l = l.after(c),
                None => break,
            }
        }
    }
    if json {
        let docs: Vec<_> = all.iter().map(info_json).collect();
        println!("{}", json!({ "jobs": docs }));
        return Ok(ExitCode::SUCCESS);
    }
    let now = now_ms() as i128;
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|i| {
            vec![
                i.queue.clone(),
                i.id.to_string(),
                i.kind.clone(),
                i.schedule.as_ref().map_or("-".to_owned(), schedule),
                opt(i.unique_name.as_ref()),
                i.next_due_at.map_or(i.state.to_string(), |t| {
                    format!("in {}s", (i128::from(epoch_ms(t)) - now) / 1000)
                }),
                i.last_run
                    .as_ref()
                    .map_or("-".to_owned(), |r| r.outcome.to_string()),
            ]
        })
        .collect();
    let headers = ["QUEUE", "ID", "KIND", "SCHEDULE", "UNIQUE", "NEXT", "LAST"];
    println!("{}", render(&headers, &rows));
    Ok(ExitCode::SUCCESS)
}

/// `workq cancel ID | --tag TAG`.
pub(crate) async fn cancel(
    wm: &WorkManager,
    id: Option<WorkId>,
    tag: Option<String>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    if let Some(tag) = tag {
        let s = wm.cancel_all_work_by_tag(&tag).await?;
        if json {
            println!(
                "{}",
                json!({ "tag": tag, "cancelled": s.cancelled, "asked_to_stop": s.requested, "already_finished": s.already_finished })
            );
        } else {
            println!(
                "cancelled {} waiting, asked {} running to stop, {} already finished",
                s.cancelled, s.requested, s.already_finished
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let id = id.ok_or("cancel needs an id or --tag")?;
    let st = wm.cancel_work_by_id(id).await?;
    if st == CancelStatus::NotFound {
        return Ok(not_found(id, json));
    }
    if json {
        let name = match st {
            CancelStatus::Cancelled => "cancelled",
            CancelStatus::Requested => "asked_to_stop",
            CancelStatus::AlreadyFinished => "already_finished",
            _ => "unknown",
        };
        println!("{}", json!({ "id": id.to_string(), "status": name }));
    } else {
        println!("{id}: {st:?}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `workq watch`: every state change of the queue (or of the followed job), and once a
/// second how many jobs entered each state; `--json`: one JSON line per state change.
pub(crate) async fn watch(
    wm: &WorkManager,
    queue: &str,
    follow: Option<WorkId>,
    json: bool,
) -> Result<ExitCode, BoxError> {
    let mut w = wm.watch_queue(queue).await?;
    if !json {
        println!("watching queue {queue}");
    }
    let mut totals: HashMap<WorkState, u64> = HashMap::new();
    let mut printed = totals.clone();
    let mut last = Instant::now();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(1), w.next()).await;
        if let Ok(ev) = ev {
            let ev = ev?;
            *totals.entry(ev.state).or_default() += 1;
            if follow.is_none_or(|id| id == ev.id) {
                if json {
                    println!(
                        "{}",
                        json!({ "id": ev.id.to_string(), "queue": queue, "state": ev.state.to_string(), "attempt": ev.attempt, "entry": ev.entry })
                    );
                } else {
                    println!("[watch] {} -> {} (attempt {})", ev.id, ev.state, ev.attempt);
                }
            }
        }
        if !json && last.elapsed() >= Duration::from_secs(1) && totals != printed {
            let line: Vec<String> = WorkState::ALL
                .iter()
                .filter_map(|s| totals.get(s).map(|n| format!("{s}={n}")))
                .collect();
            println!("[watch] transitions so far: {}", line.join(" "));
            printed = totals.clone();
            last = Instant::now();
        }
    }
}
