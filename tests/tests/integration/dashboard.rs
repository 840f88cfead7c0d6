//! `workq serve`'s dashboard, as a process: every route answers, the OpenAPI file lists
//! exactly the router's routes, POSTs need the CSRF value, a token or Basic credentials
//! guard everything but /metrics and /healthz, a non-loopback address without them is
//! refused, job data is served as JSON only, the actions change what the library reports,
//! and the event stream delivers what happens after it opened. One HTTP/1.1 client over
//! `std::net::TcpStream`, written below.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value;
use workq_producer::{OneTimeWorkRequest, PeriodicWorkRequest, WorkId, WorkState};
use workq_tests::jobs::{Fail, FailWorker};
use workq_tests::{WorkerProcess, HANG};
use workq_worker::WorkerRuntime;

use crate::fixture::TestContext;
use crate::support::{workspace_bin, InProcess};

mod routes {
    include!("../../../producer/src/bin/workq/dashboard/route_table.rs");
}

/// A `workq serve` process and the address it printed.
struct Serve {
    proc: WorkerProcess,
    addr: SocketAddr,
}

impl Serve {
    fn start(url: &str, extra: &[&str]) -> Self {
        let mut args = vec![
            "--redis".to_owned(),
            url.to_owned(),
            "serve".to_owned(),
            "--http".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let env = [
            ("WORKQ_DASHBOARD_TOKEN".to_owned(), String::new()),
            ("WORKQ_DASHBOARD_BASIC_AUTH".to_owned(), String::new()),
        ];
        let mut proc =
            WorkerProcess::spawn_capturing(&workspace_bin("workq-producer", "workq"), &args, &env);
        let line = proc.wait_stderr(&["workq serve: listening on http://"]);
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Serve { proc, addr }
    }

    fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[], "")
    }

    /// The CSRF value the HTML shell carries.
    fn csrf(&self, headers: &[(&str, &str)]) -> String {
        let shell = http(self.addr, "GET", "/", headers, "");
        assert_eq!(shell.status, 200, "{}", shell.body);
        let at = shell
            .body
            .find("name=\"workq-csrf\" content=\"")
            .expect("the csrf meta tag")
            + "name=\"workq-csrf\" content=\"".len();
        shell.body[at..].split('"').next().unwrap().to_owned()
    }

    fn post(&self, path: &str, csrf: &str, body: &str) -> Reply {
        http(self.addr, "POST", path, &[("X-Workq-Csrf", csrf)], body)
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on its own connection (`Connection: close`), read to the end.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(HANG)).unwrap();
    // The Host is the address, unless the caller gives one.
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or(addr.to_string(), |(_, v)| (*v).to_owned());
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the reply");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn delayed(mode: &str) -> OneTimeWorkRequest {
    OneTimeWorkRequest::builder(Fail { mode: mode.into() })
        .initial_delay(std::time::Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// The documented (method, path) pairs of docs/dashboard-openapi.json.
fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(include_str!("../../../docs/dashboard-openapi.json"))
        .expect("the OpenAPI file is JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn the_openapi_file_lists_exactly_the_routers_routes() {
    let routed: BTreeSet<(String, String)> = routes::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(routed.len(), routes::ROUTES.len(), "a route listed twice");
    let documented = documented();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes not in the OpenAPI file: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_and_a_get_of_an_action_is_405() {
    let ctx = TestContext::new().await;
    let req = delayed("failure");
    let id = req.id().to_string();
    ctx.wm.enqueue(req).await.unwrap();
    let serve = Serve::start(&ctx.url(), &[]);
    let served: Value = serve.get("/api/openapi.json").json();
    assert_eq!(
        served,
        serde_json::from_str::<Value>(include_str!("../../../docs/dashboard-openapi.json"))
            .unwrap(),
        "/api/openapi.json serves the file"
    );
    for (method, pattern) in routes::ROUTES {
        let path = pattern.replace("{queue}", "default").replace("{id}", &id);
        if *method == "POST" {
            let r = serve.get(&path);
            assert_eq!(r.status, 405, "GET {path}: {r:?}");
            assert_eq!(r.header("allow"), Some("POST"), "{path}");
            assert!(r.json()["error"].is_string(), "{path}");
            continue;
        }
        let path = match *pattern {
            "/api/history" | "/api/events" => format!("{path}?queue=default"),
            _ => path,
        };
        if *pattern == "/api/events" {
            let mut s = TcpStream::connect(serve.addr).unwrap();
            s.set_read_timeout(Some(HANG)).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            let head = read_until(&mut s, "\r\n\r\n");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: text/event-stream"),
                "{head}"
            );
            continue;
        }
        let r = serve.get(&path);
        let want = if *pattern == "/login" { 303 } else { 200 };
        assert_eq!(r.status, want, "GET {path}: {r:?}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        if r.header("content-type") == Some("application/json") {
            r.json();
        }
    }
    // The pages are the shell, with its headers.
    let shell = serve.get(&format!("/jobs/{id}"));
    assert_eq!(
        shell.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(shell.header("x-frame-options"), Some("DENY"));
    assert_eq!(shell.header("referrer-policy"), Some("no-referrer"));
    // The API's answers have the documented shapes.
    let queues = serve.get("/api/queues").json();
    let q = &queues["queues"][0];
    assert_eq!(q["name"], "default");
    assert_eq!(q["scheduled"], 1);
    for k in [
        "ready",
        "running",
        "blocked",
        "succeeded",
        "failed",
        "cancelled",
    ] {
        assert_eq!(q[k], 0, "{k}: {q}");
    }
    assert_eq!(q["paused"], false);
    assert!(q["rates"]["succeeded_per_s"].is_number(), "{q}");
    let page = serve
        .get("/api/queues/default/jobs?state=scheduled&limit=10")
        .json();
    assert_eq!(page["jobs"][0]["id"], id.as_str());
    assert!(page["next"].is_null() || page["next"].is_string());
    let job = serve.get(&format!("/api/jobs/{id}")).json();
    assert_eq!(job["state"], "ENQUEUED");
    assert_eq!(job["kind"], "fail");
    let missing = serve.get(&format!("/api/jobs/{}", WorkId::new()));
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"].is_string());
    assert_eq!(serve.get("/api/jobs/not-an-id").status, 400);
    assert_eq!(
        serve.get("/api/queues/default/jobs?state=bogus").status,
        400
    );
    let history = serve.get("/api/history?queue=default").json();
    assert_eq!(history["queue"], "default");
    assert!(history["minutes"].is_array());
    assert_eq!(
        serve.get("/api/workers").json()["workers"],
        serde_json::json!([])
    );
    // Periodic work, with its schedule.
    let periodic = PeriodicWorkRequest::cron(
        Fail {
            mode: "failure".into(),
        },
        "@daily",
    )
    .build()
    .unwrap();
    let pid = periodic.id().to_string();
    ctx.wm.enqueue_periodic(periodic).await.unwrap();
    let listed = serve.get("/api/periodic").json();
    let jobs = listed["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{listed}");
    assert_eq!(jobs[0]["id"], pid.as_str());
    assert_eq!(jobs[0]["schedule"]["cron"], "@daily", "{listed}");
    assert!(jobs[0]["due_at_ms"].is_u64(), "the next run: {listed}");
    let nowhere = serve.get("/no/such/page");
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.json()["error"].is_string());
    // /metrics and /healthz as before.
    assert!(serve.get("/metrics").body.contains("workq_redis_up 1"));
    assert_eq!(serve.get("/healthz").body, "ok\n");
}

/// Reads from `s` until what was read contains `end`; returns it all.
fn read_until(s: &mut TcpStream, end: &str) -> String {
    let mut text = String::new();
    while !text.contains(end) {
        text += &read_some(s);
    }
    text
}

/// What one read of `s` gives (the connection must not close).
fn read_some(s: &mut TcpStream) -> String {
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).expect("read");
    assert!(n > 0, "the connection closed");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_value_or_from_another_origin_is_403_and_changes_nothing() {
    let ctx = TestContext::new().await;
    let req = delayed("failure");
    let id = req.id();
    ctx.wm.enqueue(req).await.unwrap();
    let serve = Serve::start(&ctx.url(), &[]);
    let csrf = serve.csrf(&[]);
    assert_eq!(csrf.len(), 64, "{csrf}");
    let no_csrf = http(serve.addr, "POST", "/api/queues/default/pause", &[], "");
    assert_eq!(no_csrf.status, 403, "{no_csrf:?}");
    let wrong = serve.post("/api/queues/default/pause", "0123", "");
    assert_eq!(wrong.status, 403);
    let other_origin = http(
        serve.addr,
        "POST",
        &format!("/api/jobs/{id}/cancel"),
        &[("X-Workq-Csrf", &csrf), ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(other_origin.status, 403, "{other_origin:?}");
    assert!(!ctx.wm.queue_stats("default").await.unwrap().paused);
    assert_eq!(ctx.info(id).await.state, WorkState::Enqueued);
    // The same requests with the value and this host as the origin go through.
    let origin = format!("http://{}", serve.addr);
    let ok = http(
        serve.addr,
        "POST",
        "/api/queues/default/pause",
        &[("X-Workq-Csrf", &csrf), ("Origin", &origin)],
        "",
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ctx.wm.queue_stats("default").await.unwrap().paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_every_page_and_api_route_but_metrics_and_healthz() {
    let ctx = TestContext::new().await;
    let token = "s3cret-token";
    let serve = Serve::start(&ctx.url(), &["--token", token]);
    for path in ["/", "/api/queues", "/assets/app.js", "/workers"] {
        let r = serve.get(path);
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(r.json()["error"].is_string());
        let wrong = http(
            serve.addr,
            "GET",
            path,
            &[("Authorization", "Bearer nope")],
            "",
        );
        assert_eq!(wrong.status, 401, "{path}");
        let bearer = format!("Bearer {token}");
        let ok = http(serve.addr, "GET", path, &[("Authorization", &bearer)], "");
        assert_eq!(ok.status, 200, "{path}: {ok:?}");
    }
    assert_eq!(serve.get("/metrics").status, 200);
    assert_eq!(serve.get("/healthz").status, 200);
    assert_eq!(serve.get("/login?token=wrong").status, 401);
    let login = serve.get(&format!("/login?token={token}"));
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/"));
    let cookie = login.header("set-cookie").expect("a cookie");
    assert!(cookie.starts_with("workq_session="), "{cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        !cookie.contains(token),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let ok = http(serve.addr, "GET", "/api/queues", &[("Cookie", session)], "");
    assert_eq!(ok.status, 200, "{ok:?}");
    let forged = http(
        serve.addr,
        "GET",
        "/api/queues",
        &[("Cookie", "workq_session=0000")],
        "",
    );
    assert_eq!(forged.status, 401);
    // The token from the environment, the same way.
    drop(serve);
    let mut args = vec![
        "--redis".to_owned(),
        ctx.url(),
        "serve".to_owned(),
        "--http".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    args.extend(["--basic-auth".to_owned(), "ops:pa55".to_owned()]);
    let mut proc = WorkerProcess::spawn_capturing(
        &workspace_bin("workq-producer", "workq"),
        &args,
        &[("WORKQ_DASHBOARD_TOKEN".to_owned(), token.to_owned())],
    );
    let line = proc.wait_stderr(&["workq serve: listening on http://"]);
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    let r = http(addr, "GET", "/api/queues", &[], "");
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{r:?}"
    );
    // "ops:pa55" in base64.
    let basic = http(
        addr,
        "GET",
        "/api/queues",
        &[("Authorization", "Basic b3BzOnBhNTU=")],
        "",
    );
    assert_eq!(basic.status, 200, "{basic:?}");
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(addr, "GET", "/", &[("Authorization", &bearer)], "").status,
        200,
        "the token from WORKQ_DASHBOARD_TOKEN"
    );
    let bad = http(
        addr,
        "GET",
        "/",
        &[("Authorization", "Basic b3BzOndyb25n")],
        "",
    );
    assert_eq!(bad.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_without_a_token_or_credentials_exits_2() {
    let ctx = TestContext::new().await;
    let args = [
        "--redis".to_owned(),
        ctx.url(),
        "serve".to_owned(),
        "--http".to_owned(),
        "0.0.0.0:0".to_owned(),
    ];
    let env = [
        ("WORKQ_DASHBOARD_TOKEN".to_owned(), String::new()),
        ("WORKQ_DASHBOARD_BASIC_AUTH".to_owned(), String::new()),
    ];
    let mut proc =
        WorkerProcess::spawn_capturing(&workspace_bin("workq-producer", "workq"), &args, &env);
    assert_eq!(proc.exit_within(HANG), Some(2));
    let err = proc.stderr_seen().join("\n");
    assert!(
        err.contains("--token") && err.contains("--basic-auth"),
        "{err}"
    );
    assert!(!err.contains("listening on"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_dashboard_any_address_serves_only_metrics_and_healthz() {
    let ctx = TestContext::new().await;
    let args = [
        "--redis".to_owned(),
        ctx.url(),
        "serve".to_owned(),
        "--http".to_owned(),
        "0.0.0.0:0".to_owned(),
        "--no-dashboard".to_owned(),
    ];
    let mut proc =
        WorkerProcess::spawn_capturing(&workspace_bin("workq-producer", "workq"), &args, &[]);
    let line = proc.wait_stderr(&["workq serve: listening on http://"]);
    let port: u16 = line
        .split("http://0.0.0.0:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(http(addr, "GET", "/metrics", &[], "")
        .body
        .contains("workq_redis_up 1"));
    assert_eq!(http(addr, "GET", "/healthz", &[], "").status, 200);
    for path in ["/", "/api/queues", "/login?token=x"] {
        assert_eq!(http(addr, "GET", path, &[], "").status, 404, "{path}");
    }
    proc.signal("TERM");
    assert_eq!(proc.exit_within(HANG), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_data_comes_back_as_json_text_and_the_shell_carries_none() {
    let ctx = TestContext::new().await;
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    let req = delayed(evil);
    let id = req.id().to_string();
    ctx.wm.enqueue(req).await.unwrap();
    let serve = Serve::start(&ctx.url(), &[]);
    let r = serve.get(&format!("/api/jobs/{id}"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["input"]["mode"], evil, "{}", r.body);
    let listed = serve.get("/api/queues/default/jobs?state=scheduled").json();
    assert_eq!(listed["jobs"][0]["input"]["mode"], evil);
    for page in [
        format!("/jobs/{id}"),
        "/queues/default".to_owned(),
        "/".to_owned(),
    ] {
        let shell = serve.get(&page);
        assert_eq!(shell.status, 200);
        assert!(!shell.body.contains("alert("), "{page}: {}", shell.body);
        assert!(!shell.body.contains(&id), "{page} carries job data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_through_the_api_change_what_the_library_reports() {
    let mut ctx = TestContext::new().await;
    let serve = Serve::start(&ctx.url(), &[]);
    let csrf = serve.csrf(&[]);

    let req = delayed("failure");
    let a = req.id();
    ctx.wm.enqueue(req).await.unwrap();

    // Pause and resume.
    let r = serve.post("/api/queues/default/pause", &csrf, "").json();
    assert_eq!(r["changed"], true, "{r}");
    assert!(ctx.wm.queue_stats("default").await.unwrap().paused);
    assert_eq!(serve.get("/api/queues").json()["queues"][0]["paused"], true);
    serve.post("/api/queues/default/resume", &csrf, "");
    assert!(!ctx.wm.queue_stats("default").await.unwrap().paused);

    // Run now, cancel, retry, delete.
    let r = serve.post(&format!("/api/jobs/{a}/run-now"), &csrf, "");
    assert_eq!((r.status, r.json()["status"].clone()), (200, "done".into()));
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().ready, 1);
    let r = serve.post(&format!("/api/jobs/{a}/cancel"), &csrf, "");
    assert_eq!(r.json()["status"], "cancelled", "{r:?}");
    assert_eq!(ctx.info(a).await.state, WorkState::Cancelled);
    let r = serve.post(&format!("/api/jobs/{a}/retry"), &csrf, "");
    assert_eq!(r.json()["status"], "done", "{r:?}");
    assert_eq!(ctx.info(a).await.state, WorkState::Enqueued);
    let again = serve.post(&format!("/api/jobs/{a}/retry"), &csrf, "");
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (400, "wrong_state".into())
    );
    let r = serve.post(&format!("/api/jobs/{a}/delete"), &csrf, "");
    assert_eq!(r.json()["status"], "done", "{r:?}");
    assert!(ctx.wm.get_work_info(a).await.unwrap().is_none());
    let gone = serve.post(&format!("/api/jobs/{a}/retry"), &csrf, "");
    assert_eq!(gone.status, 404);

    // Jobs that fail, then retry-failed and purge.
    let w = InProcess::run(
        WorkerRuntime::builder(&ctx.url())
            .queue("default")
            .register(FailWorker),
    );
    let reqs: Vec<OneTimeWorkRequest> = (0..3)
        .map(|_| {
            OneTimeWorkRequest::builder(Fail {
                mode: "failure".into(),
            })
            .build()
            .unwrap()
        })
        .collect();
    let ids: Vec<WorkId> = reqs.iter().map(OneTimeWorkRequest::id).collect();
    ctx.wm.enqueue_many(reqs).await.unwrap();
    for id in &ids {
        assert_eq!(ctx.finished(*id).await.state, WorkState::Failed);
    }
    w.stop().await;
    // The worker that ran them is listed, with the jobs' error history.
    let workers = serve.get("/api/workers").json();
    let ws = workers["workers"].as_array().expect("workers");
    assert_eq!(ws.len(), 1, "{workers}");
    assert_eq!(ws[0]["queue"], "default");
    assert!(
        ws[0]["id"].is_string() && ws[0]["last_seen_ms"].is_u64(),
        "{workers}"
    );
    let job = serve.get(&format!("/api/jobs/{}", ids[0])).json();
    assert_eq!(job["state"], "FAILED");
    assert_eq!(job["errors"][0]["message"], "gave up at attempt 1", "{job}");
    let failed = serve.get("/api/queues/default/jobs?state=failed").json();
    assert_eq!(failed["jobs"].as_array().map(Vec::len), Some(3), "{failed}");
    let r = serve
        .post("/api/queues/default/retry-failed", &csrf, "")
        .json();
    assert_eq!(r["retried"], 3, "{r}");
    assert_eq!(ctx.wm.queue_stats("default").await.unwrap().ready, 3);
    for id in &ids {
        serve.post(&format!("/api/jobs/{id}/cancel"), &csrf, "");
    }
    let bad = serve.post(
        "/api/queues/default/purge",
        &csrf,
        "{\"state\":\"running\"}",
    );
    assert_eq!(bad.status, 400);
    let r = serve
        .post(
            "/api/queues/default/purge",
            &csrf,
            "{\"state\":\"cancelled\"}",
        )
        .json();
    assert_eq!(r["purged"], 3, "{r}");
    for id in &ids {
        assert!(ctx.wm.get_work_info(*id).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_delivers_a_job_enqueued_after_it_opened_and_ends_with_the_server() {
    let ctx = TestContext::new().await;
    let mut serve = Serve::start(&ctx.url(), &[]);
    let mut s = TcpStream::connect(serve.addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    // Twelve queues: more watches (each a Redis connection) than a manager's default
    // pool of 8, which `serve` enlarges for its streams.
    let queues: String = (1..12).map(|i| format!("&queue=q{i}")).collect();
    write!(
        s,
        "GET /api/events?queue=default{queues} HTTP/1.1\r\nHost: {}\r\n\r\n",
        serve.addr
    )
    .unwrap();
    let head = read_until(&mut s, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let req = delayed("failure");
    let id = req.id().to_string();
    ctx.wm.enqueue(req).await.unwrap();
    // Comment lines (keep-alives) may come first; the event is two lines.
    let mut got = String::new();
    while !got.find(&id).is_some_and(|at| got[at..].contains('\n')) {
        got += &read_some(&mut s);
    }
    let data = got
        .lines()
        .skip_while(|l| *l != "event: job")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no job event in {got:?}"));
    let ev: Value = serde_json::from_str(data).unwrap();
    assert_eq!(ev["id"], id.as_str());
    assert_eq!(ev["state"], "ENQUEUED");
    assert_eq!(ev["queue"], "default");
    // Stopping the server ends the stream.
    serve.proc.signal("TERM");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the stream ends");
    assert_eq!(serve.proc.exit_within(HANG), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authentication_only_loopback_hosts_are_answered_against_dns_rebinding() {
    let ctx = TestContext::new().await;
    let serve = Serve::start(&ctx.url(), &[]);
    let port = serve.addr.port();
    // A page of another site whose name now resolves to 127.0.0.1: its requests carry
    // its own name as the Host (and the Origin), which must not be answered.
    let evil = format!("evil.example:{port}");
    let page = http(serve.addr, "GET", "/", &[("Host", &evil)], "");
    assert_eq!(page.status, 421, "{page:?}");
    assert!(
        !page.body.contains("workq-csrf"),
        "no CSRF value handed out"
    );
    let api = http(serve.addr, "GET", "/api/queues", &[("Host", &evil)], "");
    assert_eq!(api.status, 421);
    let csrf = serve.csrf(&[]);
    let origin = format!("http://{evil}");
    let pause = http(
        serve.addr,
        "POST",
        "/api/queues/default/pause",
        &[
            ("Host", &evil),
            ("Origin", &origin),
            ("X-Workq-Csrf", &csrf),
        ],
        "",
    );
    assert_eq!(pause.status, 421, "{pause:?}");
    assert!(!ctx.wm.queue_stats("default").await.unwrap().paused);
    // Loopback names are answered, and /metrics whatever the Host (Prometheus).
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let ok = http(serve.addr, "GET", "/api/queues", &[("Host", &host)], "");
        assert_eq!(ok.status, 200, "{host}: {ok:?}");
    }
    let metrics = http(serve.addr, "GET", "/metrics", &[("Host", &evil)], "");
    assert_eq!(metrics.status, 200);
    drop(serve);
    // A name given with --allowed-host is answered too.
    let serve = Serve::start(&ctx.url(), &["--allowed-host", "dash.example"]);
    let host = format!("dash.example:{}", serve.addr.port());
    let ok = http(serve.addr, "GET", "/", &[("Host", &host)], "");
    assert_eq!(ok.status, 200, "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_plus_logs_in_any_bearer_case_works_and_basic_credentials_make_no_session() {
    let ctx = TestContext::new().await;
    let token = "ab+cd/ef==";
    let serve = Serve::start(&ctx.url(), &["--token", token]);
    // Pasted into the address bar as it is: `+` is not a space here.
    let login = serve.get("/login?token=ab+cd/ef==");
    assert_eq!(login.status, 303, "{login:?}");
    let encoded = serve.get("/login?token=ab%2Bcd%2Fef%3D%3D");
    assert_eq!(encoded.status, 303, "{encoded:?}");
    assert_eq!(
        serve.get("/login?token=ab%2").status,
        401,
        "a malformed escape"
    );
    let lower = format!("bearer {token}");
    let ok = http(
        serve.addr,
        "GET",
        "/api/queues",
        &[("Authorization", &lower)],
        "",
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    drop(serve);
    let serve = Serve::start(&ctx.url(), &["--basic-auth", "ops:pa55"]);
    let basic = "Basic b3BzOnBhNTU="; // ops:pa55
    let ok = http(
        serve.addr,
        "GET",
        "/api/queues",
        &[("Authorization", basic)],
        "",
    );
    assert_eq!(ok.status, 200, "{ok:?}");
    let login = http(serve.addr, "GET", "/login", &[("Authorization", basic)], "");
    assert_eq!(
        login.status, 401,
        "only the token makes a session: {login:?}"
    );
    assert!(login.header("set-cookie").is_none());
}
