//! One JSON shape per value the CLI prints and the dashboard's API serves, so that the
//! two agree.

use std::time::SystemTime;

use serde_json::{json, Value};
use workq_common::time::epoch_ms;
use workq_producer::{AdminStatus, Data, QueueStats, Schedule, WorkInfo, WorkerInfo};

/// A job's input, output or progress (MessagePack) as JSON. MessagePack that has no JSON
/// form (binary strings, maps with non-string keys) comes out as
/// `{"msgpack_hex": "...", "bytes": N}` (the first 256 bytes), so that nothing fails to show.
pub(crate) fn data_json(d: &Data) -> Value {
    match d.decode::<Value>() {
        Ok(v) => v,
        Err(_) => {
            let bytes = d.as_bytes();
            let hex: String = bytes.iter().take(256).map(|b| format!("{b:02x}")).collect();
            json!({ "msgpack_hex": hex, "bytes": bytes.len() })
        }
    }
}

fn ms(t: Option<SystemTime>) -> Option<u64> {
    t.map(epoch_ms)
}

/// A job as JSON: what `workq info --json`, `workq jobs --json` and the dashboard's
/// `/api/jobs/{id}` give. Times are Unix milliseconds (Redis time).
pub(crate) fn info_json(i: &WorkInfo) -> Value {
    let schedule = i.schedule.as_ref().map(|s| match s {
        Schedule::Interval { interval, flex } => json!({
            "interval_ms": u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            "flex_ms": u64::try_from(flex.as_millis()).unwrap_or(u64::MAX),
        }),
        Schedule::Cron(c) => json!({ "cron": c }),
        _ => json!({}),
    });
    json!({
        "id": i.id.to_string(),
        "queue": i.queue,
        "kind": i.kind,
        "state": i.state.to_string(),
        "attempts": i.run_attempt_count,
        "max_attempts": i.max_attempts,
        "tags": i.tags,
        "input": data_json(&i.input),
        "output": i.output.as_ref().map(data_json),
        "progress": i.progress.as_ref().map(data_json),
        "last_error": i.last_error,
        "errors": i.errors.iter().map(|e| json!({
            "attempt": e.attempt,
            "at_ms": epoch_ms(e.at),
            "message": e.message,
        })).collect::<Vec<_>>(),
        "cancel_requested": i.cancel_requested,
        "worker": i.worker,
        "enqueued_at_ms": epoch_ms(i.enqueued_at),
        "started_at_ms": ms(i.started_at),
        "finished_at_ms": ms(i.finished_at),
        "due_at_ms": ms(i.next_due_at),
        "unique_name": i.unique_name,
        "parents": i.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "children": i.children.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "required_labels": i.required_labels,
        "expedited": i.expedited,
        "schedule": schedule,
        "last_run": i.last_run.as_ref().map(|r| json!({
            "outcome": r.outcome.to_string(),
            "at_ms": epoch_ms(r.at),
        })),
        "metadata": i.metadata,
    })
}

/// A worker as JSON (`workq workers --json`, the dashboard's `/api/workers`).
pub(crate) fn worker_json(w: &WorkerInfo) -> Value {
    json!({
        "id": w.id,
        "queue": w.queue,
        "host": w.host,
        "labels": w.labels,
        "kinds": w.kinds,
        "busy": w.busy,
        "slots": w.slots,
        "last_seen_ms": epoch_ms(w.last_seen),
        "live": w.live,
    })
}

/// A queue's sizes and counters as JSON (`workq stats --json`, `workq queues --json`, and
/// the dashboard's `/api/queues`, which adds its rates).
pub(crate) fn queue_json(name: &str, s: &QueueStats) -> Value {
    json!({
        "name": name,
        "ready": s.ready,
        "scheduled": s.scheduled,
        "running": s.running,
        "blocked": s.blocked,
        "succeeded": s.retained_succeeded,
        "failed": s.retained_failed,
        "cancelled": s.retained_cancelled,
        "paused": s.paused,
        "workers": s.workers.len(),
        "unsatisfiable": s.unsatisfiable,
        "oldest_ready_age_ms": s.oldest_ready_age_ms,
        "counters": s.counters,
    })
}

/// An admin operation's status for one job, as the CLI's and the API's JSON name it.
pub(crate) fn admin_status(s: AdminStatus) -> &'static str {
    match s {
        AdminStatus::Done => "done",
        AdminStatus::NotFound => "not_found",
        AdminStatus::WrongState => "wrong_state",
        AdminStatus::AlreadyDue => "already_due",
        _ => "unknown",
    }
}
