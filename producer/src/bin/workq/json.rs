//! One JSON shape per value the CLI prints and the dashboard's API serves, so that the
//! two agree.

use serde_json::json;
use workq_common::time::epoch_ms;
use workq_producer::WorkInfo;

/// A job as JSON: what `workq info --json`, `workq jobs --json` and the dashboard's
/// `/api/jobs/{id}` give.
pub(crate) fn info_json(i: &WorkInfo) -> serde_json::Value {
    let t = |t: Option<std::time::SystemTime>| t.map(epoch_ms);
    json!({
        "id": i.id.to_string(),
        "queue": i.queue,
        "kind": i.kind,
        "state": i.state.to_string(),
        "attempts": i.run_attempt_count,
        "max_attempts": i.max_attempts,
        "tags": i.tags,
        "last_error": i.last_error,
        "worker": i.worker,
        "enqueued_at_ms": epoch_ms(i.enqueued_at),
        "started_at_ms": t(i.started_at),
        "finished_at_ms": t(i.finished_at),
        "due_at_ms": t(i.next_due_at),
    })
}
