//! The dashboard's JSON API (docs/dashboard-openapi.json): reads through the library's
//! listings and stats, actions through its admin operations, and the event stream.

use std::sync::Arc;
use std::time::Duration;

use crate::json::info_json;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use workq_producer::{AdminStatus, CancelStatus, Error, JobFilter, JobListing, WorkId, WorkState};

use super::history::MAX_QUEUES;
use super::{error, json_resp, App, Body, Resp, Route};

/// Queues one event stream may follow.
const MAX_STREAM_QUEUES: usize = 32;
/// A comment line on an idle stream this often, so a client that went away is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// An error is a complete response (boxed: a response is large).
type Fail = Box<Resp>;
type ApiResult = Result<Resp, Fail>;

fn err(status: StatusCode, msg: impl std::fmt::Display) -> Fail {
    Box::new(error(status, msg))
}

/// A library error as a response: a bad argument is the client's (400), anything else
/// the server's (500).
fn lib_err(e: Error) -> Fail {
    match e {
        Error::InvalidRequest(_) => err(StatusCode::BAD_REQUEST, e),
        // Redis away, busy or out of connections: worth asking again.
        e if e.is_transient() => err(StatusCode::SERVICE_UNAVAILABLE, e),
        e => err(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn param(r: &Route, i: usize) -> Result<&str, Fail> {
    r.params.get(i).map(String::as_str).ok_or_else(|| {
        err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "route without its parameter",
        )
    })
}

fn job_id(r: &Route) -> Result<WorkId, Fail> {
    let s = param(r, 0)?;
    s.parse()
        .map_err(|_| err(StatusCode::BAD_REQUEST, format!("'{s}' is not a job id")))
}

pub(super) async fn dispatch(app: &App, r: &Route, q: &[(String, String)], body: &Bytes) -> Resp {
    let res = match r.pattern {
        "/api/queues" => queues(app).await,
        "/api/queues/{queue}/jobs" => jobs(app, r, q).await,
        "/api/jobs/{id}" => job(app, r).await,
        "/api/workers" => workers(app).await,
        "/api/periodic" => periodic(app).await,
        "/api/history" => history(app, q),
        "/api/events" => events(app, q).await,
        "/api/jobs/{id}/retry" => job_action(app, r, "retry", q).await,
        "/api/jobs/{id}/run-now" => job_action(app, r, "run-now", q).await,
        "/api/jobs/{id}/cancel" => job_action(app, r, "cancel", q).await,
        "/api/jobs/{id}/delete" => job_action(app, r, "delete", q).await,
        "/api/queues/{queue}/pause" => pause(app, r, true).await,
        "/api/queues/{queue}/resume" => pause(app, r, false).await,
        "/api/queues/{queue}/retry-failed" => retry_failed(app, r).await,
        "/api/queues/{queue}/purge" => purge(app, r, body).await,
        other => Err(err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("route {other} has no handler"),
        )),
    };
    res.unwrap_or_else(|e| *e)
}

async fn queues(app: &App) -> ApiResult {
    let names = app.wm.queues().await.map_err(lib_err)?;
    let mut out = Vec::with_capacity(names.len());
    for (n, q) in names.iter().enumerate() {
        let s = app.wm.queue_stats(q).await.map_err(lib_err)?;
        let c = |k: &str| s.counters.get(k).copied().unwrap_or(0);
        let (ok, failed) = if n < MAX_QUEUES {
            app.rates
                .lock()
                .map(|mut r| r.observe(q, c("succeeded"), c("failed")))
                .unwrap_or((0.0, 0.0))
        } else {
            (0.0, 0.0)
        };
        let mut doc = crate::json::queue_json(q, &s);
        doc["rates"] = json!({ "succeeded_per_s": ok, "failed_per_s": failed });
        out.push(doc);
    }
    Ok(json_resp(StatusCode::OK, &json!({ "queues": out })))
}

async fn jobs(app: &App, r: &Route, q: &[(String, String)]) -> ApiResult {
    use super::util::query_get;
    let queue = param(r, 0)?;
    let state = query_get(q, "state").unwrap_or("ready");
    let filter = JobFilter::parse(state).map_err(lib_err)?;
    let mut l = JobListing::new(queue, filter);
    if let Some(n) = query_get(q, "limit") {
        let n: usize = n.parse().map_err(|_| {
            err(
                StatusCode::BAD_REQUEST,
                format!("limit '{n}' is not a number"),
            )
        })?;
        l = l.limit(n);
    }
    if matches!(query_get(q, "newest"), Some("1" | "true")) {
        l = l.newest_first();
    }
    if let Some(k) = query_get(q, "kind") {
        l = l.kind(k);
    }
    if let Some(t) = query_get(q, "tag") {
        l = l.tag(t);
    }
    if let Some(n) = query_get(q, "unique_name") {
        l = l.unique_name(n);
    }
    if let Some(c) = query_get(q, "after") {
        l = l.after(c);
    }
    let page = app.wm.list_jobs(&l).await.map_err(lib_err)?;
    let jobs: Vec<Value> = page.jobs.iter().map(info_json).collect();
    Ok(json_resp(
        StatusCode::OK,
        &json!({ "jobs": jobs, "next": page.next }),
    ))
}

async fn job(app: &App, r: &Route) -> ApiResult {
    let id = job_id(r)?;
    match app.wm.get_work_info(id).await.map_err(lib_err)? {
        Some(i) => Ok(json_resp(StatusCode::OK, &info_json(&i))),
        None => Err(err(
            StatusCode::NOT_FOUND,
            format!("job {id} not found (never enqueued, or pruned after retention)"),
        )),
    }
}

/// Workers per queue: those seen in the last hour (`live`: within the last minute).
async fn workers(app: &App) -> ApiResult {
    let mut out = Vec::new();
    for q in app.wm.queues().await.map_err(lib_err)? {
        let ws = app.wm.list_workers(&q).await.map_err(lib_err)?;
        out.extend(ws.iter().map(crate::json::worker_json));
    }
    Ok(json_resp(StatusCode::OK, &json!({ "workers": out })))
}

/// Pages of periodic work looked at per queue (each up to `MAX_PAGE` jobs).
const PERIODIC_PAGES: usize = 16;

/// Periodic work of every queue, with its schedule, next run and last run.
async fn periodic(app: &App) -> ApiResult {
    let mut out = Vec::new();
    for q in app.wm.queues().await.map_err(lib_err)? {
        let mut listing = JobListing::new(&q, JobFilter::Periodic).limit(workq_producer::MAX_PAGE);
        for _ in 0..PERIODIC_PAGES {
            let page = app.wm.list_periodic(&listing).await.map_err(lib_err)?;
            out.extend(page.jobs.iter().map(info_json));
            match page.next {
                Some(c) => listing = listing.after(c),
                None => break,
            }
        }
    }
    Ok(json_resp(StatusCode::OK, &json!({ "jobs": out })))
}

fn history(app: &App, q: &[(String, String)]) -> ApiResult {
    let queue = super::util::query_get(q, "queue")
        .ok_or_else(|| err(StatusCode::BAD_REQUEST, "history needs ?queue=NAME"))?;
    let minutes = app
        .history
        .lock()
        .map(|h| h.minutes(queue))
        .unwrap_or_default();
    Ok(json_resp(
        StatusCode::OK,
        &json!({
            "queue": queue,
            "sample_every_s": super::history::SAMPLE_EVERY.as_secs(),
            "minutes": minutes,
        }),
    ))
}

/// `text/event-stream` of the queues' state changes: `event: job`, `data: {"id",
/// "state","queue"}`. The watches start before the response is sent, so every change
/// after the client has the headers arrives. The stream ends when the client goes away
/// (its body is dropped, so every sender sees the channel closed) or the server stops.
async fn events(app: &App, q: &[(String, String)]) -> ApiResult {
    let queues: Vec<&str> = q
        .iter()
        .filter(|(k, v)| k == "queue" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if queues.is_empty() || queues.len() > MAX_STREAM_QUEUES {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!("events needs ?queue=NAME (1 to {MAX_STREAM_QUEUES} of them)"),
        ));
    }
    let n = u32::try_from(queues.len()).unwrap_or(u32::MAX);
    let permit = Arc::clone(&app.streams)
        .try_acquire_many_owned(n)
        .map_err(|_| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the open event streams follow {} queues already, the most at once",
                    super::MAX_WATCHES
                ),
            )
        })?;
    let mut watches = Vec::with_capacity(queues.len());
    for queue in queues {
        watches.push(app.wm.watch_queue(queue).await.map_err(lib_err)?);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let permit = Arc::new(permit);
    for mut w in watches {
        let (tx, stop, permit) = (tx.clone(), app.stop.clone(), Arc::clone(&permit));
        tokio::spawn(async move {
            let _permit = permit;
            loop {
                let ev = tokio::select! {
                    ev = w.next() => ev,
                    () = tx.closed() => return,
                    () = stop.cancelled() => return,
                };
                let line = match ev {
                    Ok(ev) => {
                        let data = json!({
                            "id": ev.id.to_string(),
                            "state": ev.state.to_string(),
                            "queue": w.queue(),
                        });
                        format!("event: job\ndata: {data}\n\n")
                    }
                    Err(e) => {
                        let data = json!({ "error": e.to_string(), "queue": w.queue() });
                        let _ = tx
                            .send(Bytes::from(format!("event: error\ndata: {data}\n\n")))
                            .await;
                        return;
                    }
                };
                tokio::select! {
                    r = tx.send(Bytes::from(line)) => if r.is_err() { return },
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    {
        let stop = app.stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let start = tokio::time::Instant::now() + KEEPALIVE;
            let mut tick = tokio::time::interval_at(start, KEEPALIVE);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if tx.send(Bytes::from_static(b": keepalive\n\n")).await.is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                    () = stop.cancelled() => return,
                }
            }
        });
    }
    let mut res = hyper::Response::new(Body::Stream(rx));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

fn cancel_status(s: CancelStatus) -> &'static str {
    match s {
        CancelStatus::NotFound => "not_found",
        CancelStatus::Cancelled => "cancelled",
        CancelStatus::Requested => "requested",
        CancelStatus::AlreadyFinished => "already_finished",
        _ => "unknown",
    }
}

/// Retry, run now, cancel or delete one job: `{"id","status"}`; 404 when there is no
/// such job, 400 when it is not in a state the action applies to.
async fn job_action(app: &App, r: &Route, what: &str, q: &[(String, String)]) -> ApiResult {
    let id = job_id(r)?;
    let wm = &app.wm;
    let first = |v: Vec<AdminStatus>| v.first().copied().unwrap_or(AdminStatus::NotFound);
    let status = match what {
        "retry" => crate::json::admin_status(first(wm.retry_work(&[id]).await.map_err(lib_err)?)),
        "run-now" => {
            crate::json::admin_status(first(wm.run_work_now(&[id]).await.map_err(lib_err)?))
        }
        "cancel" => cancel_status(wm.cancel_work_by_id(id).await.map_err(lib_err)?),
        _ => {
            let force = matches!(super::util::query_get(q, "force"), Some("1" | "true"));
            crate::json::admin_status(first(wm.delete_work(&[id], force).await.map_err(lib_err)?))
        }
    };
    let body = json!({ "id": id.to_string(), "action": what, "status": status });
    Ok(match status {
        "not_found" => json_resp(
            StatusCode::NOT_FOUND,
            &json!({ "error": format!("job {id} not found"), "id": id.to_string(), "status": status }),
        ),
        "wrong_state" => json_resp(
            StatusCode::BAD_REQUEST,
            &json!({
                "error": format!("job {id} is not in a state {what} applies to"),
                "id": id.to_string(),
                "status": status,
            }),
        ),
        _ => json_resp(StatusCode::OK, &body),
    })
}

async fn pause(app: &App, r: &Route, on: bool) -> ApiResult {
    let queue = param(r, 0)?;
    let changed = if on {
        app.wm.pause_queue(queue).await
    } else {
        app.wm.resume_queue(queue).await
    }
    .map_err(lib_err)?;
    Ok(json_resp(
        StatusCode::OK,
        &json!({ "queue": queue, "paused": on, "changed": changed }),
    ))
}

async fn retry_failed(app: &App, r: &Route) -> ApiResult {
    let queue = param(r, 0)?;
    let n = app.wm.retry_all_failed(queue).await.map_err(lib_err)?;
    Ok(json_resp(
        StatusCode::OK,
        &json!({ "queue": queue, "retried": n }),
    ))
}

/// Body `{"state": "finished"|"succeeded"|"failed"|"cancelled"}` (empty: finished).
async fn purge(app: &App, r: &Route, body: &Bytes) -> ApiResult {
    let queue = param(r, 0)?;
    let state = if body.iter().all(u8::is_ascii_whitespace) {
        "finished".to_owned()
    } else {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            )
        })?;
        match v.get("state") {
            None | Some(Value::Null) => "finished".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(err(StatusCode::BAD_REQUEST, "\"state\" must be a string")),
        }
    };
    let st = match state.as_str() {
        "finished" => None,
        "succeeded" => Some(WorkState::Succeeded),
        "failed" => Some(WorkState::Failed),
        "cancelled" => Some(WorkState::Cancelled),
        other => {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("purge state '{other}': use succeeded, failed, cancelled or finished"),
            ))
        }
    };
    let n = app.wm.purge(queue, st).await.map_err(lib_err)?;
    Ok(json_resp(
        StatusCode::OK,
        &json!({ "queue": queue, "state": state, "purged": n }),
    ))
}
