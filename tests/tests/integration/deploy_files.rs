//! The deployment files of `deploy/systemd/` and `deploy/docker/` (those of `deploy/k8s/`
//! are k8s_manifests.rs'): the units through `systemd-analyze verify` and `security`
//! where it exists, and parsed here for the settings that must agree with the worker (a
//! stop timeout above the grace period plus the hand-back, SIGTERM, restart on failure,
//! no root, flags the binaries know); the units' command lines expanded as systemd does
//! and run against a real Redis as the README's ACL users; the Dockerfile's build command,
//! packages, features and binaries against the workspace and the READMEs, and its
//! HEALTHCHECK run against a real exporter; `compose.yaml`'s services and settings, and its
//! Prometheus configuration through `promtool`. No Docker engine runs here: nothing is
//! built into an image or started by Compose.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_norway::Value as Yaml;
use workq_tests::prometheus::{promtool, TempDir};
use workq_tests::{free_port, readme_acl_rules, RedisServer, WorkerProcess};

use crate::support::workspace_bin;

/// After the grace period, how long a worker's hand-back and last acks may take
/// (worker/src/runtime/shutdown.rs, `DRAIN`): a supervisor's SIGKILL must come after both.
const HAND_BACK_MS: u64 = 5_000;
/// `workq-worker --grace-ms`'s default.
const DEFAULT_GRACE_MS: u64 = 25_000;
/// Flags of `workq-worker` that may be given once only (clap refuses a second one).
const WORKER_SINGLE_FLAGS: &[&str] = &[
    "--redis",
    "--concurrency",
    "--lease-ms",
    "--grace-ms",
    "--claim-batch",
    "--id",
    "--http",
];

/// Whether a supervisor that SIGKILLs `stop_ms` after SIGTERM leaves a worker its grace
/// period and the hand-back.
fn kill_comes_after_hand_back(stop_ms: u64, grace_ms: u64) -> bool {
    stop_ms > grace_ms + HAND_BACK_MS
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn systemd_dir() -> PathBuf {
    root().join("deploy/systemd")
}

fn docker_dir() -> PathBuf {
    root().join("deploy/docker")
}

// ---- systemd ---------------------------------------------------------------------------

/// A unit file: (section, key, value) in file order, comments dropped, continued lines
/// joined.
#[derive(Debug)]
struct Unit {
    name: String,
    entries: Vec<(String, String, String)>,
}

impl Unit {
    fn load(name: &str) -> Self {
        Self::parse(name, &read(&systemd_dir().join(name)))
    }

    fn parse(name: &str, text: &str) -> Self {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(cont) = line.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            let line = format!("{pending}{line}");
            pending.clear();
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_owned();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}: not key=value: {line:?}"));
            entries.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
        assert!(pending.is_empty(), "{name}: ends in a continued line");
        Unit {
            name: name.to_owned(),
            entries,
        }
    }

    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The one value of `key`: set exactly once, so that nothing later overrides it.
    fn one(&self, section: &str, key: &str) -> &str {
        let values = self.all(section, key);
        assert_eq!(
            values.len(),
            1,
            "{}: [{section}] {key}: {values:?}",
            self.name
        );
        values[0]
    }
}

/// A systemd time span in milliseconds: "40", "40s", "1min 30s", "500ms".
fn timespan_ms(text: &str) -> u64 {
    let mut total = 0;
    let compact: String = text.split_whitespace().collect();
    let mut rest = compact.as_str();
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        assert!(digits > 0, "time span {text:?}");
        let n: u64 = rest[..digits].parse().expect("number");
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" | "msec" => 1,
            "" | "s" | "sec" | "second" | "seconds" => 1_000,
            "m" | "min" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            other => panic!("time span {text:?}: unit {other:?}"),
        };
        total += n * factor;
        rest = &rest[unit_len..];
    }
    total
}

/// `KEY=VALUE` lines of an environment file, comments left out.
fn env_file(path: &Path) -> Vec<(String, String)> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not KEY=VALUE: {l:?}", path.display()));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The unit's environment for `instance`, as systemd builds it: `Environment=` first,
/// then each `EnvironmentFile=` in order (`/etc/workq/NAME` read from this folder's
/// example `NAME`; an optional file that has no example is absent), later settings
/// winning.
fn unit_env(unit: &Unit, instance: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for assignment in unit.all("Service", "Environment") {
        let assignment = assignment.replace("%i", instance);
        let (k, v) = assignment.split_once('=').expect("Environment=KEY=VALUE");
        env.insert(k.to_owned(), v.to_owned());
    }
    for file in unit.all("Service", "EnvironmentFile") {
        let (optional, path) = match file.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, file),
        };
        let path = path.replace("%i", instance);
        let name = path
            .strip_prefix("/etc/workq/")
            .unwrap_or_else(|| panic!("{}: EnvironmentFile {path} not in /etc/workq", unit.name));
        let example = systemd_dir().join(name);
        if example.is_file() {
            env.extend(env_file(&example));
        } else {
            assert!(
                optional,
                "{}: {path} is required and has no example",
                unit.name
            );
        }
    }
    env
}

/// `ExecStart`'s command line for `instance`, expanded as systemd does: `%i`, `${VAR}` as
/// one word, `$VAR` alone split into words (none if empty).
fn exec_start(unit: &Unit, instance: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let line = unit.one("Service", "ExecStart").replace("%i", instance);
    assert!(
        !line.contains(['"', '\'']),
        "{}: quoting in ExecStart is beyond this test's expansion",
        unit.name
    );
    let mut argv = Vec::new();
    for word in line.split_whitespace() {
        if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{')) {
            let value = env
                .get(name)
                .unwrap_or_else(|| panic!("{}: ${name} is not set", unit.name));
            argv.extend(value.split_whitespace().map(str::to_owned));
            continue;
        }
        let mut out = word.to_owned();
        while let Some(start) = out.find("${") {
            let end = start + out[start..].find('}').expect("${VAR}");
            let name = &out[start + 2..end];
            let value = env
                .get(name)
                .unwrap_or_else(|| panic!("{}: ${{{name}}} is not set", unit.name));
            out = format!("{}{value}{}", &out[..start], &out[end + 1..]);
        }
        argv.push(out);
    }
    argv
}

/// The `--flags` a binary's `--help` lists.
fn help_flags(bin: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(out.status.success(), "{} {args:?} --help", bin.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches([',', '=']).to_owned())
        .collect()
}

fn unknown_flags(argv: &[String], known: &[String]) -> Vec<String> {
    argv.iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .filter(|a| !known.contains(a))
        .collect()
}

/// The value of the only `--name V` in `argv`, if any.
fn flag_value<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let at: Vec<usize> = (0..argv.len()).filter(|&i| argv[i] == name).collect();
    assert!(at.len() <= 1, "{name} given {} times: {argv:?}", at.len());
    at.first()
        .map(|&i| argv.get(i + 1).map(String::as_str).expect("a flag's value"))
}

fn worker_bin() -> PathBuf {
    workspace_bin("workq-worker", "workq-worker")
}

fn workq_bin() -> PathBuf {
    workspace_bin("workq-producer", "workq")
}

fn is_root_user(unit: &Unit) -> bool {
    let dynamic = unit.all("Service", "DynamicUser").contains(&"yes");
    let user = unit.all("Service", "User");
    !dynamic && (user.is_empty() || user.iter().any(|u| *u == "root" || *u == "0"))
}

/// The units' settings that must agree with the worker and the exporter: SIGKILL only
/// after the grace period and the hand-back, SIGTERM as the stop signal, a restart on
/// failure, no root, a queue per instance, and command lines the binaries accept.
#[test]
fn systemd_units_stop_after_the_grace_period_and_restart_on_failure() {
    let worker = Unit::load("workq-worker@.service");
    let env = unit_env(&worker, "emails");
    let argv = exec_start(&worker, "emails", &env);
    assert_eq!(argv[0], "/usr/local/bin/workq-worker", "{argv:?}");
    assert_eq!(
        flag_value(&argv, "--queue"),
        Some("emails"),
        "the instance is the queue"
    );
    for single in WORKER_SINGLE_FLAGS {
        flag_value(&argv, single);
    }
    let unknown = unknown_flags(&argv, &help_flags(&worker_bin(), &[]));
    assert!(
        unknown.is_empty(),
        "flags workq-worker does not know: {unknown:?}"
    );
    let grace_ms = flag_value(&argv, "--grace-ms")
        .map_or(DEFAULT_GRACE_MS, |g| g.parse().expect("--grace-ms"));
    let stop_ms = timespan_ms(worker.one("Service", "TimeoutStopSec"));
    assert!(
        kill_comes_after_hand_back(stop_ms, grace_ms),
        "TimeoutStopSec {stop_ms} ms must exceed --grace-ms {grace_ms} + the hand-back \
         {HAND_BACK_MS} ms"
    );
    assert!(
        flag_value(&argv, "--http").is_some(),
        "the worker serves /metrics, /healthz and /readyz"
    );
    // An instance file may name another queue (an instance per index).
    let mut by_index = env.clone();
    by_index.insert("WORKQ_QUEUE".into(), "default".into());
    assert_eq!(
        flag_value(&exec_start(&worker, "2", &by_index), "--queue"),
        Some("default")
    );
    assert!(
        env["REDIS_URL"].starts_with("redis://"),
        "worker.env's REDIS_URL"
    );

    let exporter = Unit::load("workq-exporter.service");
    let env = unit_env(&exporter, "");
    let argv = exec_start(&exporter, "", &env);
    assert_eq!(
        argv[..3],
        ["/usr/local/bin/workq", "serve", "--http"],
        "{argv:?}"
    );
    let unknown = unknown_flags(&argv, &help_flags(&workq_bin(), &["serve"]));
    assert!(
        unknown.is_empty(),
        "flags workq serve does not know: {unknown:?}"
    );
    assert!(
        argv[3].ends_with(":9464"),
        "the exporter on this project's port: {argv:?}"
    );

    for unit in [&worker, &exporter] {
        assert_eq!(
            unit.one("Service", "KillSignal"),
            "SIGTERM",
            "{}",
            unit.name
        );
        assert_eq!(
            unit.one("Service", "Restart"),
            "on-failure",
            "{}",
            unit.name
        );
        assert!(!is_root_user(unit), "{} runs as root", unit.name);
        assert!(
            timespan_ms(unit.one("Service", "TimeoutStopSec")) > 0,
            "{}",
            unit.name
        );
        assert_eq!(
            unit.one("Install", "WantedBy"),
            "multi-user.target",
            "{}",
            unit.name
        );
        assert!(
            !unit.all("Service", "EnvironmentFile").is_empty(),
            "{}: REDIS_URL from an environment file",
            unit.name
        );
    }
}

/// The checks above catch what they must.
#[test]
fn unit_checks_refuse_a_short_timeout_and_root() {
    let unit = Unit::parse(
        "t",
        "[Service]\n# c\nExecStart=/bin/x --a ${A} \\\n  $B\nTimeoutStopSec=1min 5s\nUser=root\n",
    );
    assert_eq!(timespan_ms(unit.one("Service", "TimeoutStopSec")), 65_000);
    // Kubernetes' default 30 s is exactly the default grace period plus the hand-back: no
    // margin, refused.
    assert!(!kill_comes_after_hand_back(
        timespan_ms("30"),
        DEFAULT_GRACE_MS
    ));
    assert!(kill_comes_after_hand_back(
        timespan_ms("40s"),
        DEFAULT_GRACE_MS
    ));
    assert!(is_root_user(&unit));
    let env = BTreeMap::from([
        ("A".to_owned(), "1 2".to_owned()),
        ("B".to_owned(), String::new()),
    ]);
    assert_eq!(exec_start(&unit, "", &env), ["/bin/x", "--a", "1 2"]);
    let env = BTreeMap::from([
        ("A".to_owned(), String::new()),
        ("B".to_owned(), "-x  -y".to_owned()),
    ]);
    assert_eq!(
        exec_start(&unit, "", &env),
        ["/bin/x", "--a", "", "-x", "-y"]
    );
    let known = vec!["--a".to_owned()];
    assert_eq!(
        unknown_flags(&["--a".into(), "--b=1".into()], &known),
        ["--b"]
    );
}

/// The units copied to a temp dir with `ExecStart` on the binaries the tests build (verify
/// needs an existing executable).
fn units_for_systemd_analyze(dir: &Path) -> (PathBuf, PathBuf) {
    let worker = read(&systemd_dir().join("workq-worker@.service")).replace(
        "/usr/local/bin/workq-worker",
        &worker_bin().display().to_string(),
    );
    let exporter = read(&systemd_dir().join("workq-exporter.service")).replace(
        "/usr/local/bin/workq ",
        &format!("{} ", workq_bin().display()),
    );
    assert!(!worker.contains("/usr/local/bin") && !exporter.contains("/usr/local/bin"));
    std::fs::write(dir.join("workq-worker@.service"), worker).expect("write");
    std::fs::write(dir.join("workq-exporter.service"), exporter).expect("write");
    (
        dir.join("workq-worker@default.service"),
        dir.join("workq-exporter.service"),
    )
}

/// `systemd-analyze verify` prints a bad value and carries on (exit status 0): its output
/// about the units must be empty.
fn verify_output(units: &[&Path]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output()
        .expect("systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_units: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("workq-") || units.iter().any(|u| l.contains(&*u.display().to_string()))
        })
        .collect();
    (out.status.success(), about_units.join("\n"))
}

/// `systemd-analyze verify` finds nothing wrong in the units (a broken copy shows that it
/// would), and `systemd-analyze security --offline=yes` rates both at an exposure of 2.5 or
/// less (of 10). Skipped, saying so, where systemd-analyze is not installed.
#[test]
fn systemd_units_pass_systemd_analyze_verify_and_security() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED systemd_units_pass_systemd_analyze_verify: no systemd-analyze on PATH");
        return;
    }
    let dir = TempDir::new("systemd-units");
    let (worker, exporter) = units_for_systemd_analyze(dir.path());
    let (ok, complaints) = verify_output(&[&worker, &exporter]);
    assert!(
        ok && complaints.is_empty(),
        "systemd-analyze verify:\n{complaints}"
    );

    let broken = read(&exporter).replace("TimeoutStopSec=10", "TimeoutStopSec=ten");
    let broken_path = dir.path().join("workq-broken.service");
    std::fs::write(&broken_path, broken).expect("write");
    let (_, complaints) = verify_output(&[&broken_path]);
    assert!(
        complaints.contains("TimeoutStopSec") || complaints.contains("time value"),
        "a bad value goes unnoticed: {complaints:?}"
    );

    for unit in [&worker, &exporter] {
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=25", "--no-pager"])
            .arg(unit)
            .output()
            .expect("systemd-analyze security");
        let text = String::from_utf8_lossy(&out.stdout);
        let overall = text
            .lines()
            .find(|l| l.contains("Overall exposure level"))
            .unwrap_or("");
        eprintln!("{overall}");
        assert!(
            out.status.success(),
            "systemd-analyze security {}: {overall}\n{}",
            unit.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One HTTP/1.1 GET: (status, body), or None if nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Polls `path` until `done` holds for its answer; panics after `limit`.
fn wait_http(port: u16, path: &str, limit: Duration, done: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + limit;
    loop {
        if let Some((status, body)) = http_get(port, path) {
            if done(status, &body) {
                return body;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{path} on port {port}: not there within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Dockerfile's HEALTHCHECK command (its exec form).
fn dockerfile_healthcheck() -> Option<Vec<String>> {
    let text = dockerfile_instructions();
    let line = text.iter().find(|l| l.starts_with("HEALTHCHECK "))?;
    let json = &line[line.find("CMD [").expect("HEALTHCHECK ... CMD [...]") + 4..];
    Some(serde_json::from_str(json).unwrap_or_else(|e| panic!("HEALTHCHECK CMD {json}: {e}")))
}

/// The units' command lines, expanded as systemd would, run: the worker as the README's
/// worker ACL user is ready on its `--http` port and stops on SIGTERM within
/// `TimeoutStopSec`; the exporter as the README's (read-only) operator user serves the
/// queues' metrics, the Dockerfile's HEALTHCHECK passes against it, and fails once it is
/// gone.
#[test]
fn systemd_command_lines_run_as_the_readmes_acl_users() {
    let redis = RedisServer::start();
    let mut admin = redis.client().get_connection().expect("connect");
    for rule in readme_acl_rules() {
        redis::cmd(&rule[0])
            .arg(&rule[1..])
            .query::<()>(&mut admin)
            .unwrap_or_else(|e| panic!("{rule:?}: {e}"));
    }
    let url = |role: &str| {
        format!(
            "redis://workq-{role}:{role}-password@127.0.0.1:{}",
            redis.port()
        )
    };

    let worker = Unit::load("workq-worker@.service");
    let worker_port = free_port();
    let mut env = unit_env(&worker, "default");
    env.insert("REDIS_URL".into(), url("worker"));
    env.insert("WORKQ_HTTP".into(), format!("127.0.0.1:{worker_port}"));
    let argv = exec_start(&worker, "default", &env);
    let process_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| *k == "REDIS_URL" || k.starts_with("WORKQ_LOG"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut worker_process = WorkerProcess::spawn(&worker_bin(), &argv[1..], &process_env);
    wait_http(worker_port, "/readyz", Duration::from_secs(30), |s, _| {
        s == 200
    });

    let exporter = Unit::load("workq-exporter.service");
    let exporter_port = free_port();
    let mut env = unit_env(&exporter, "");
    env.insert("REDIS_URL".into(), url("operator"));
    env.insert("WORKQ_HTTP".into(), format!("127.0.0.1:{exporter_port}"));
    let argv = exec_start(&exporter, "", &env);
    let mut exporter_process = WorkerProcess::spawn(
        &workq_bin(),
        &argv[1..],
        &[("REDIS_URL".to_owned(), env["REDIS_URL"].clone())],
    );
    let metrics = wait_http(
        exporter_port,
        "/metrics",
        Duration::from_secs(30),
        |s, body| s == 200 && body.contains(r#"workq_queue_workers{queue="default"} 1"#),
    );
    assert!(
        metrics.lines().any(|l| l == "workq_redis_up 1"),
        "the exporter as the operator user reads Redis:\n{metrics}"
    );

    let healthcheck = dockerfile_healthcheck().expect("the Dockerfile has a HEALTHCHECK");
    let on_port = |port: u16| -> Vec<String> {
        healthcheck
            .iter()
            .map(|a| a.replace("/127.0.0.1/9464", &format!("/127.0.0.1/{port}")))
            .collect()
    };
    let run = |argv: &[String]| {
        Command::new(&argv[0])
            .args(&argv[1..])
            .status()
            .expect("the HEALTHCHECK command")
            .success()
    };
    let check = on_port(exporter_port);
    assert_ne!(check, healthcheck, "the HEALTHCHECK asks 127.0.0.1:9464");
    assert!(
        run(&check),
        "HEALTHCHECK {check:?} against a running exporter"
    );

    for (process, unit) in [
        (&mut worker_process, &worker),
        (&mut exporter_process, &exporter),
    ] {
        process.signal("TERM");
        let limit = Duration::from_millis(timespan_ms(unit.one("Service", "TimeoutStopSec")));
        assert_eq!(
            process.exit_within(limit),
            Some(0),
            "{} after SIGTERM",
            unit.name
        );
    }
    assert!(!run(&check), "HEALTHCHECK {check:?} with nothing listening");
}

// ---- Docker ----------------------------------------------------------------------------

/// The Dockerfile's instructions, continued lines joined, comments left out.
fn dockerfile_instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in read(&docker_dir().join("Dockerfile")).lines() {
        let line = raw.trim();
        if line.starts_with('#') || (pending.is_empty() && line.is_empty()) {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont.trim_end());
            pending.push(' ');
        } else {
            out.push(format!("{pending}{line}"));
            pending.clear();
        }
    }
    out
}

/// The `cargo build ...` command of a text, up to a shell operator or the end of its line.
fn cargo_build_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("cargo build ") {
        let tail = &rest[at..];
        let end = [tail.find("&&"), tail.find('\n'), tail.find(';')]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(tail.len());
        out.push(tail[..end].split_whitespace().collect::<Vec<_>>().join(" "));
        rest = &tail[end..];
    }
    out
}

/// A workspace member's Cargo.toml, read for what the build command names: its package
/// name, its features, its binaries with their required features.
#[derive(Debug, Default)]
struct Manifest {
    name: String,
    features: Vec<String>,
    bins: BTreeMap<String, Vec<String>>,
}

fn manifest(dir: &str) -> Manifest {
    let text = read(&root().join(dir).join("Cargo.toml"));
    let mut m = Manifest::default();
    let mut section = String::new();
    let mut bin: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            bin = None;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let unquoted = value.trim_matches('"').to_owned();
        match section.as_str() {
            "[package]" if key == "name" => m.name = unquoted,
            "[features]" if !key.starts_with('#') => m.features.push(key.to_owned()),
            "[[bin]]" if key == "name" => {
                m.bins.insert(unquoted.clone(), Vec::new());
                bin = Some(unquoted);
            }
            "[[bin]]" if key == "required-features" => {
                let name = bin.clone().expect("[[bin]] name before required-features");
                let list: Vec<String> = value
                    .trim_matches(['[', ']'])
                    .split(',')
                    .map(|f| f.trim().trim_matches('"').to_owned())
                    .filter(|f| !f.is_empty())
                    .collect();
                m.bins.insert(name, list);
            }
            _ => {}
        }
    }
    m
}

/// The Dockerfile builds, with the command its README documents (and systemd's README
/// installs from), `--release --locked`, binaries that exist in the packages it names,
/// with the features they require; in a Rust image no older than the workspace's
/// rust-version; and the runtime stage runs them as a non-root user, exposes 9464, and
/// has a HEALTHCHECK only if its base has a shell to run it.
#[test]
fn dockerfile_builds_the_documented_binaries_of_the_workspace() {
    let instructions = dockerfile_instructions();
    let runs: Vec<&String> = instructions
        .iter()
        .filter(|l| l.starts_with("RUN "))
        .collect();
    let builds: Vec<String> = runs.iter().flat_map(|r| cargo_build_commands(r)).collect();
    assert_eq!(builds.len(), 1, "one cargo build: {builds:?}");
    let build = &builds[0];
    for readme in [
        docker_dir().join("README.md"),
        systemd_dir().join("README.md"),
    ] {
        assert!(
            cargo_build_commands(&read(&readme)).contains(build),
            "{} does not document the Dockerfile's {build:?}",
            readme.display()
        );
    }
    let words: Vec<&str> = build.split_whitespace().collect();
    assert!(
        words.contains(&"--release") && words.contains(&"--locked"),
        "{build}"
    );

    let members: Vec<Manifest> = ["common", "producer", "worker", "tests"]
        .iter()
        .map(|d| manifest(d))
        .collect();
    let mut package: Option<&Manifest> = None;
    let mut features: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bins = Vec::new();
    let mut i = 2;
    while i < words.len() {
        let value = words.get(i + 1).copied().unwrap_or("");
        match words[i] {
            "-p" | "--package" => {
                let m = members
                    .iter()
                    .find(|m| m.name == value)
                    .unwrap_or_else(|| panic!("no workspace package {value}"));
                package = Some(m);
                i += 2;
            }
            "--features" | "-F" => {
                let m = package.expect("-p before --features");
                for f in value.split(',') {
                    assert!(
                        m.features.iter().any(|x| x == f),
                        "{} has no feature {f}",
                        m.name
                    );
                    features
                        .entry(m.name.clone())
                        .or_default()
                        .push(f.to_owned());
                }
                i += 2;
            }
            "--bin" => {
                let m = package.expect("-p before --bin");
                assert!(
                    m.bins.contains_key(value),
                    "{} has no [[bin]] {value}",
                    m.name
                );
                bins.push((m.name.clone(), value.to_owned()));
                i += 2;
            }
            "--release" | "--locked" => i += 1,
            other => panic!("{build}: unexpected {other:?}"),
        }
    }
    let mut built: Vec<&str> = bins.iter().map(|(_, b)| b.as_str()).collect();
    built.sort_unstable();
    assert_eq!(built, ["workq", "workq-worker"], "{build}");
    for (pkg, bin) in &bins {
        let m = members.iter().find(|m| &m.name == pkg).expect("member");
        for required in &m.bins[bin] {
            assert!(
                features.get(pkg).is_some_and(|f| f.contains(required)),
                "{bin} requires {pkg}'s feature {required}: {build}"
            );
        }
        assert!(
            instructions
                .iter()
                .any(|l| l.starts_with("COPY --from=builder") && l.contains(&format!("/{bin} "))),
            "the runtime stage does not copy {bin}"
        );
    }

    let froms: Vec<&String> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    let builder: Vec<&str> = froms[0].split_whitespace().collect();
    assert_eq!(
        builder.get(2..),
        Some(&["AS", "builder"][..]),
        "{}",
        froms[0]
    );
    let rust = builder[1]
        .strip_prefix("rust:")
        .expect("the builder is a rust image");
    let version: Vec<u32> = rust
        .split('-')
        .next()
        .unwrap_or("")
        .split('.')
        .map(|n| n.parse().expect("rust:MAJOR.MINOR"))
        .collect();
    let workspace = read(&root().join("Cargo.toml"));
    let msrv: Vec<u32> = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"')
        .split('.')
        .map(|n| n.parse().expect("rust-version"))
        .collect();
    assert!(
        version >= msrv,
        "{} is older than rust-version {msrv:?}",
        builder[1]
    );

    let runtime = &instructions[instructions
        .iter()
        .position(|l| l == froms[1])
        .expect("stage")..];
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        uid != "root" && uid != "0" && !uid.is_empty(),
        "USER {user}"
    );
    assert!(runtime.iter().any(|l| l == "EXPOSE 9464"), "EXPOSE 9464");
    let healthcheck = dockerfile_healthcheck();
    if froms[1].contains("distroless") {
        assert!(
            healthcheck.is_none(),
            "distroless has no tool to run a HEALTHCHECK"
        );
    } else if let Some(cmd) = healthcheck {
        assert!(
            cmd.iter().any(|a| a.contains("/healthz")),
            "the HEALTHCHECK asks /healthz: {cmd:?}"
        );
    }
    let ignore = read(&docker_dir().join("Dockerfile.dockerignore"));
    assert!(
        ignore.lines().any(|l| l.trim_end_matches('/') == "target"),
        "target/ in the context"
    );
}

fn compose() -> Yaml {
    let path = docker_dir().join("compose.yaml");
    let mut doc: Yaml =
        serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    doc.apply_merge().expect("merge keys");
    doc
}

fn strings(value: &Yaml, what: &str) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: not a list: {value:?}"))
        .iter()
        .map(|v| match v {
            Yaml::String(s) => s.clone(),
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            other => panic!("{what}: {other:?}"),
        })
        .collect()
}

/// A Compose duration ("40s", "1m30s") in milliseconds.
fn compose_duration_ms(value: &Yaml) -> u64 {
    let text = value.as_str().expect("a duration");
    timespan_ms(text)
}

/// `compose.yaml` has the services its README describes: Redis 7 with AOF fsynced every
/// second and no eviction, healthy before the workers and the exporter start; workers with
/// flags workq-worker knows, two replicas and a stop grace period above --grace-ms plus
/// the hand-back; the exporter on 9464; Prometheus with this folder's configuration and the
/// rules of deploy/prometheus/ mounted (files that exist); every `service_healthy`
/// dependency on a service with a healthcheck; both workq services built from the
/// Dockerfile. `docker compose config` also checks it, where it is installed.
#[test]
fn compose_file_has_the_services_and_settings_the_readme_describes() {
    let doc = compose();
    let services = &doc["services"];
    for name in ["redis", "worker", "exporter", "prometheus"] {
        assert!(services.get(name).is_some(), "no service {name}");
    }

    let redis = &services["redis"];
    assert!(
        redis["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("redis:7")),
        "{:?}",
        redis["image"]
    );
    let command = strings(&redis["command"], "redis command");
    for (flag, value) in [
        ("--appendonly", "yes"),
        ("--appendfsync", "everysec"),
        ("--maxmemory-policy", "noeviction"),
    ] {
        let at = command.iter().position(|c| c == flag);
        assert_eq!(
            at.and_then(|i| command.get(i + 1)).map(String::as_str),
            Some(value),
            "redis {flag}: {command:?}"
        );
    }
    assert!(
        strings(&redis["healthcheck"]["test"], "redis healthcheck").contains(&"ping".to_owned())
    );

    let has_image_healthcheck = dockerfile_healthcheck().is_some();
    let healthy = |name: &str| -> bool {
        let s = &services[name];
        s.get("healthcheck").is_some() || (s.get("build").is_some() && has_image_healthcheck)
    };
    for (name, service) in services.as_mapping().expect("services") {
        let name = name.as_str().expect("service name");
        if let Some(deps) = service.get("depends_on").and_then(Yaml::as_mapping) {
            for (dep, how) in deps {
                let dep = dep.as_str().expect("dependency");
                assert!(
                    services.get(dep).is_some(),
                    "{name} depends on no service {dep}"
                );
                if how["condition"].as_str() == Some("service_healthy") {
                    assert!(
                        healthy(dep),
                        "{name} waits for {dep} to be healthy; it has no check"
                    );
                }
            }
        }
    }

    let worker = &services["worker"];
    let argv = strings(&worker["command"], "worker command");
    assert_eq!(argv[0], "workq-worker");
    let unknown = unknown_flags(&argv, &help_flags(&worker_bin(), &[]));
    assert!(
        unknown.is_empty(),
        "flags workq-worker does not know: {unknown:?}"
    );
    for single in WORKER_SINGLE_FLAGS {
        flag_value(&argv, single);
    }
    assert_eq!(flag_value(&argv, "--http"), Some("0.0.0.0:9464"));
    let grace_ms = flag_value(&argv, "--grace-ms")
        .map_or(DEFAULT_GRACE_MS, |g| g.parse().expect("--grace-ms"));
    let stop_ms = compose_duration_ms(&worker["stop_grace_period"]);
    assert!(
        kill_comes_after_hand_back(stop_ms, grace_ms),
        "stop_grace_period {stop_ms} ms must exceed --grace-ms {grace_ms} + {HAND_BACK_MS} ms"
    );
    if let Some(signal) = worker.get("stop_signal") {
        assert_eq!(signal.as_str(), Some("SIGTERM"));
    }
    assert!(
        worker["deploy"]["replicas"].as_u64() >= Some(2),
        "worker replicas"
    );
    for name in ["worker", "exporter"] {
        let s = &services[name];
        assert_eq!(
            s["depends_on"]["redis"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} waits for Redis"
        );
        let url = s["environment"]["REDIS_URL"].as_str().expect("REDIS_URL");
        assert!(url.starts_with("redis://redis:"), "{name}: REDIS_URL {url}");
        let build = &s["build"];
        let context = docker_dir().join(build["context"].as_str().expect("build.context"));
        let dockerfile = context.join(build["dockerfile"].as_str().expect("build.dockerfile"));
        assert_eq!(
            dockerfile.canonicalize().expect("the Dockerfile"),
            docker_dir()
                .join("Dockerfile")
                .canonicalize()
                .expect("Dockerfile"),
            "{name} is built from deploy/docker/Dockerfile"
        );
        assert_eq!(
            context.canonicalize().expect("context"),
            root().canonicalize().expect("root"),
            "{name}: the build context is the workspace"
        );
    }
    let exporter = strings(&services["exporter"]["command"], "exporter command");
    assert_eq!(exporter[..3], ["workq", "serve", "--http"], "{exporter:?}");
    let unknown = unknown_flags(&exporter, &help_flags(&workq_bin(), &["serve"]));
    assert!(
        unknown.is_empty(),
        "flags workq serve does not know: {unknown:?}"
    );
    assert!(exporter[3].ends_with(":9464"));

    let prometheus = &services["prometheus"];
    assert!(
        prometheus.get("healthcheck").is_some(),
        "prometheus healthcheck"
    );
    let config_flag = strings(&prometheus["command"], "prometheus command")
        .into_iter()
        .find_map(|c| c.strip_prefix("--config.file=").map(str::to_owned))
        .expect("--config.file");
    let mut mounts = BTreeMap::new();
    for volume in strings(&prometheus["volumes"], "prometheus volumes") {
        let parts: Vec<&str> = volume.split(':').collect();
        if parts[0].starts_with('.') {
            let source = docker_dir().join(parts[0]);
            assert!(
                source.is_file(),
                "{volume}: {} is missing",
                source.display()
            );
            mounts.insert(parts[1].to_owned(), source.canonicalize().expect("mount"));
        }
    }
    assert_eq!(
        mounts.get(&config_flag),
        Some(
            &docker_dir()
                .join("prometheus.yml")
                .canonicalize()
                .expect("prometheus.yml")
        ),
        "the configuration Prometheus reads"
    );
    let rules = root()
        .join("deploy/prometheus/workq-rules.yml")
        .canonicalize()
        .expect("rules");
    let config_dir = Path::new(&config_flag).parent().expect("config dir");
    assert_eq!(
        mounts.get(&config_dir.join("workq-rules.yml").display().to_string()),
        Some(&rules),
        "the rules beside the configuration, where its rule_files finds them"
    );

    let compose_available = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if compose_available {
        let out = Command::new("docker")
            .args(["compose", "-f"])
            .arg(docker_dir().join("compose.yaml"))
            .args(["config", "--quiet"])
            .output()
            .expect("docker compose config");
        assert!(
            out.status.success(),
            "docker compose config:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!(
            "SKIPPED docker compose config: `docker compose version` fails (no compose plugin)"
        );
    }
}

/// The Prometheus configuration of compose.yaml passes `promtool check config` with the
/// rules of deploy/prometheus/ beside it, scrapes the compose services by name, and uses
/// the job names the rules match on.
#[test]
fn compose_prometheus_config_passes_promtool_and_scrapes_the_services() {
    let dir = TempDir::new("compose-prometheus");
    std::fs::copy(
        docker_dir().join("prometheus.yml"),
        dir.path().join("prometheus.yml"),
    )
    .expect("copy");
    std::fs::copy(
        root().join("deploy/prometheus/workq-rules.yml"),
        dir.path().join("workq-rules.yml"),
    )
    .expect("copy");
    let run = promtool(
        ["check", "config"].map(String::from).into_iter().chain([dir
            .path()
            .join("prometheus.yml")
            .display()
            .to_string()]),
    );
    assert!(run.success, "promtool check config:\n{}", run.output);

    let config: Yaml = serde_norway::from_str(&read(&docker_dir().join("prometheus.yml")))
        .expect("prometheus.yml");
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no job {name}"))
    };
    let services = compose()["services"].clone();
    let worker = job("workq-worker");
    let names = strings(&worker["dns_sd_configs"][0]["names"], "dns names");
    assert_eq!(names, ["worker"]);
    assert!(services.get("worker").is_some());
    assert_eq!(worker["dns_sd_configs"][0]["port"].as_u64(), Some(9464));
    let targets = strings(
        &job("workq-exporter")["static_configs"][0]["targets"],
        "targets",
    );
    assert_eq!(targets, ["exporter:9464"]);
    assert!(services.get("exporter").is_some());
}
