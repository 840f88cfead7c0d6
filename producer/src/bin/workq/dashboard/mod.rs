//! `workq serve`'s dashboard: an HTTP/1.1 server written on hyper 1 directly (methods,
//! query strings, headers, small request bodies, streamed server-sent events), serving
//! the exporter's `/metrics` and `/healthz`, one embedded HTML shell for the pages,
//! its script and style sheet, and the JSON API the script renders from
//! (docs/dashboard-openapi.json, also at `/api/openapi.json`).
//!
//! Security: with a token or Basic credentials configured, every request but `/metrics`,
//! `/healthz` and `/login` must carry them (or the session cookie `/login` sets); every
//! POST must carry the per-process CSRF value of the shell's `<meta name="workq-csrf">`
//! in `X-Workq-Csrf`, and an `Origin` header, when sent, must name the `Host`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use workq_producer::WorkManager;

mod api;
pub(crate) mod history;
mod route_table;
mod util;

pub(crate) use route_table::ROUTES;

/// A client that has not sent its request headers in this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body read (a purge's `{"state": ...}` is all the API takes).
pub(crate) const MAX_BODY: usize = 16 * 1024;
/// Sessions kept (one per `/login`); past this the oldest is forgotten.
const MAX_SESSIONS: usize = 1000;
/// Queue watches the open event streams may hold at once, over all of them (each holds
/// a Redis connection of its own).
pub(crate) const MAX_WATCHES: usize = 64;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const OPENAPI: &str = include_str!("../../../../../docs/dashboard-openapi.json");

/// How requests are authenticated.
#[derive(Clone, Debug, Default)]
pub(crate) struct Auth {
    /// `Authorization: Bearer TOKEN` (and `/login?token=TOKEN`).
    pub(crate) token: Option<String>,
    /// `Authorization: Basic` with `USER:PASSWORD`.
    pub(crate) basic: Option<String>,
    /// Host names the dashboard answers to (`--allowed-host`), besides loopback ones.
    pub(crate) allowed_hosts: Vec<String>,
}

impl Auth {
    fn required(&self) -> bool {
        self.token.is_some() || self.basic.is_some()
    }
}

/// What every request shares.
pub(crate) struct App {
    pub(crate) wm: WorkManager,
    auth: Auth,
    /// False with `--no-dashboard`: only /metrics and /healthz are served.
    dashboard: bool,
    csrf: String,
    sessions: Mutex<VecDeque<String>>,
    pub(crate) history: Mutex<history::History>,
    pub(crate) rates: Mutex<history::Rates>,
    pub(crate) stop: CancellationToken,
    pub(crate) streams: Arc<Semaphore>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    pub(crate) fn new(
        wm: WorkManager,
        auth: Auth,
        dashboard: bool,
        stop: CancellationToken,
    ) -> std::io::Result<Self> {
        Ok(App {
            wm,
            auth,
            dashboard,
            csrf: util::random_hex(32)?,
            sessions: Mutex::new(VecDeque::new()),
            history: Mutex::new(history::History::default()),
            rates: Mutex::new(history::Rates::default()),
            stop,
            streams: Arc::new(Semaphore::new(MAX_WATCHES)),
        })
    }
}

/// A response body: complete, or a stream of chunks (server-sent events) that ends when
/// its sender is dropped.
#[derive(Debug)]
pub(crate) enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(b) => {
                hyper::body::SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Stream(_) => hyper::body::SizeHint::default(),
        }
    }
}

pub(crate) type Resp = hyper::Response<Body>;

/// A complete response.
pub(crate) fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = hyper::Response::new(Body::Full(Some(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response (pretty: people read it too).
pub(crate) fn json_resp(status: StatusCode, v: &serde_json::Value) -> Resp {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".to_owned());
    let mut r = full(status, "application/json", text);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `{"error": msg}` with this status.
pub(crate) fn error(status: StatusCode, msg: impl std::fmt::Display) -> Resp {
    json_resp(status, &json!({ "error": msg.to_string() }))
}

/// A matched route: its pattern and the path's values for its `{name}`s, in order.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) pattern: &'static str,
    pub(crate) params: Vec<String>,
}

/// Finds the route of a path: Ok with the route for the method, Err(None) when no
/// pattern matches the path (404), Err(Some(allow)) when patterns match it for other
/// methods only (405).
fn route(method: &Method, path: &str) -> Result<Route, Option<String>> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let mut allow: Vec<&str> = Vec::new();
    for &(m, pattern) in ROUTES {
        let pat: Vec<&str> = pattern.split('/').skip(1).collect();
        if pat.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let matched = pat.iter().zip(&segs).all(|(p, s)| {
            if p.starts_with('{') {
                match util::percent_decode(s, false) {
                    Some(v) if !v.is_empty() => {
                        params.push(v);
                        true
                    }
                    _ => false,
                }
            } else {
                p == s
            }
        });
        if !matched {
            continue;
        }
        if m == method {
            return Ok(Route { pattern, params });
        }
        allow.push(m);
    }
    if allow.is_empty() {
        Err(None)
    } else {
        if allow.contains(&"GET") {
            allow.push("HEAD");
        }
        Err(Some(allow.join(", ")))
    }
}

/// Serves `listener` until `app.stop` is cancelled, then closes every connection (event
/// streams included) before returning.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) {
    let mut connections = JoinSet::new();
    let stop = app.stop.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "dashboard: cannot accept a connection");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = stop.cancelled() => break,
                }
                continue;
            }
        };
        let app = Arc::clone(&app);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(handle(&app, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "dashboard: connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// Routes, authenticates, checks CSRF, dispatches, and adds the security headers.
async fn handle(app: &App, req: Request<Incoming>) -> Resp {
    let mut res = respond(app, req).await;
    let h = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", "default-src 'self'"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

async fn respond(app: &App, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let query = util::parse_query(req.uri().query());
    let r = match route(req.method(), &path) {
        Ok(r) => r,
        Err(None) => return error(StatusCode::NOT_FOUND, format!("no such route: {path}")),
        Err(Some(allow)) => {
            let mut res = error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not allowed on {path} (allowed: {allow})",
                    req.method()
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&allow) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            return res;
        }
    };
    match r.pattern {
        "/metrics" => {
            return match crate::exporter::render(&app.wm).await {
                Ok(page) => full(StatusCode::OK, prometheus::TEXT_FORMAT, page),
                Err(e) => full(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("cannot encode the metrics: {e}\n"),
                ),
            }
        }
        "/healthz" => return full(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        _ if !app.dashboard => {
            return error(
                StatusCode::NOT_FOUND,
                format!("no such route: {path} (the dashboard is off: --no-dashboard)"),
            )
        }
        _ if !host_allowed(app, req.headers()) => {
            return error(
                StatusCode::MISDIRECTED_REQUEST,
                "the Host header names no host this dashboard serves: open it by a loopback \
                 address, or give the name with --allowed-host (DNS rebinding guard)",
            )
        }
        "/login" => return login(app, req.headers(), req.uri().query()),
        _ => {}
    }
    if !authorized(app, req.headers()) {
        return unauthorized(app);
    }
    if req.method() == Method::POST {
        if let Err(why) = csrf_ok(app, req.headers()) {
            return error(StatusCode::FORBIDDEN, why);
        }
    }
    match r.pattern {
        "/" | "/queues/{queue}" | "/jobs/{id}" | "/workers" | "/periodic" => {
            let mut res = full(
                StatusCode::OK,
                "text/html; charset=utf-8",
                INDEX_HTML.replace("{{csrf}}", &app.csrf),
            );
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        "/assets/app.js" => full(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        "/assets/app.css" => full(StatusCode::OK, "text/css; charset=utf-8", APP_CSS),
        "/api/openapi.json" => full(StatusCode::OK, "application/json", OPENAPI),
        _ => {
            let body = if req.method() == Method::POST {
                use http_body_util::BodyExt;
                match http_body_util::Limited::new(req.into_body(), MAX_BODY)
                    .collect()
                    .await
                {
                    Ok(b) => b.to_bytes(),
                    Err(e) => {
                        return error(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("cannot read the request body (at most {MAX_BODY} bytes): {e}"),
                        )
                    }
                }
            } else {
                Bytes::new()
            };
            api::dispatch(app, &r, &query, &body).await
        }
    }
}

fn unauthorized(app: &App) -> Resp {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "authentication required: Authorization: Bearer TOKEN, Basic credentials, \
         or the session cookie of /login?token=TOKEN",
    );
    if app.auth.basic.is_some() {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"workq\", charset=\"UTF-8\""),
        );
    }
    res
}

/// The host name of a `Host` header (`name`, `name:port`, `[v6]:port`), lower-cased.
fn host_name(host: &str) -> String {
    let h = host.trim();
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        h.rsplit_once(':').map_or(h, |(n, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                n
            } else {
                h
            }
        })
    };
    name.to_ascii_lowercase()
}

/// Whether the request's `Host` is one the dashboard answers to: a loopback name or
/// address, or one given with `--allowed-host`; any host when authentication is on and
/// no list was given (the credentials guard it then). Without it, a page of another site
/// whose name was rebound to 127.0.0.1 could read the pages (and their CSRF value) of a
/// dashboard that needs no authentication.
fn host_allowed(app: &App, h: &HeaderMap) -> bool {
    let Some(host) = h.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = host_name(host);
    let loopback = name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback
        || app
            .auth
            .allowed_hosts
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&name))
    {
        return true;
    }
    app.auth.required() && app.auth.allowed_hosts.is_empty()
}

/// Whether the request carries the configured token, credentials or a session cookie
/// (always, when none is configured).
fn authorized(app: &App, h: &HeaderMap) -> bool {
    let auth = &app.auth;
    if !auth.required() {
        return true;
    }
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, given) = v.split_once(' ').unwrap_or((v, ""));
        let bearer = scheme.eq_ignore_ascii_case("bearer").then_some(given);
        let basic = scheme.eq_ignore_ascii_case("basic").then_some(given);
        if let (Some(t), Some(given)) = (&auth.token, bearer) {
            if util::ct_eq(t.as_bytes(), given.trim().as_bytes()) {
                return true;
            }
        }
        if let (Some(b), Some(given)) = (&auth.basic, basic) {
            if let Some(given) = util::base64_decode(given.trim()) {
                if util::ct_eq(b.as_bytes(), &given) {
                    return true;
                }
            }
        }
    }
    let Ok(sessions) = app.sessions.lock() else {
        return false;
    };
    for cookies in h.get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for c in cookies.split(';') {
            if let Some(v) = c.trim().strip_prefix("workq_session=") {
                // Every session compared, so the time taken tells nothing of which matched.
                let hit = sessions.iter().fold(false, |acc, s| {
                    acc | util::ct_eq(s.as_bytes(), v.as_bytes())
                });
                if hit {
                    return true;
                }
            }
        }
    }
    false
}

/// `/login?token=TOKEN`: a new session, its cookie, and a redirect to the overview. The
/// token is percent-decoded without reading `+` as a space (base64 tokens have `+`);
/// only the token makes a session (Basic credentials are sent by the browser each time,
/// and a cross-site `<img src=/login>` must not churn the sessions).
fn login(app: &App, _h: &HeaderMap, query: Option<&str>) -> Resp {
    let redirect = || {
        let mut res = full(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
        res.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
        res
    };
    if !app.auth.required() {
        return redirect();
    }
    let given = query.unwrap_or("").split('&').find_map(|p| {
        p.strip_prefix("token=")
            .and_then(|v| util::percent_decode(v, false))
    });
    let by_token = match (&app.auth.token, given) {
        (Some(t), Some(given)) => util::ct_eq(t.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !by_token {
        return unauthorized(app);
    }
    let session = match util::random_hex(32) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read /dev/urandom: {e}"),
            )
        }
    };
    if let Ok(mut sessions) = app.sessions.lock() {
        if sessions.len() >= MAX_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(session.clone());
    }
    let mut res = redirect();
    let cookie = format!("workq_session={session}; HttpOnly; SameSite=Strict; Path=/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

/// A POST must carry the shell's CSRF value, and come from a page of this host.
fn csrf_ok(app: &App, h: &HeaderMap) -> Result<(), &'static str> {
    let given = h.get("x-workq-csrf").map(HeaderValue::as_bytes);
    if !given.is_some_and(|g| util::ct_eq(g, app.csrf.as_bytes())) {
        return Err("missing or wrong X-Workq-Csrf header (the value of the page's <meta name=\"workq-csrf\">)");
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
        });
        match (origin, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => {}
            _ => return Err("the Origin header does not match the Host"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_patterns_and_methods() {
        let r = route(&Method::GET, "/api/queues/a%20b/jobs").expect("route");
        assert_eq!(r.pattern, "/api/queues/{queue}/jobs");
        assert_eq!(r.params, ["a b"]);
        assert!(matches!(
            route(&Method::GET, "/api/jobs/x/retry"),
            Err(Some(a)) if a == "POST"
        ));
        assert!(matches!(route(&Method::GET, "/nope"), Err(None)));
        assert!(route(&Method::HEAD, "/").is_ok());
    }
}
