//! The `workq` command line, run as a process against real redis-server processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Command, Output};

use workq_producer::{OneTimeWorkRequest, WorkId, WorkManager, WorkState};
use workq_tests::jobs::Nop;
use workq_tests::{readme_acl_rules, RedisServer};

fn workq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workq"))
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .expect("run workq")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = workq(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("usage: workq"), "{flag}");
    }
}

#[test]
fn unknown_commands_flags_and_arguments_are_refused_before_redis_is_reached() {
    // A listener that no Redis answers on: a CLI that connected would leave a connection
    // in its backlog.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let id = WorkId::new().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--redis", &url, "bogus"],
            "unrecognized subcommand 'bogus'",
        ),
        (&["--redis", &url, "stats", "--bogus", "1"], "--bogus"),
        (&["--redis", &url, "watch", "--folow", &id], "--folow"),
        (
            &["--redis", &url, "info", &id, "extra"],
            "unexpected argument 'extra'",
        ),
    ];
    for (args, says) in cases {
        let out = workq(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("usage: workq"), "{args:?}: {err}");
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{args:?} connected to Redis: {other:?}"),
        }
    }
}

#[tokio::test]
async fn cancel_and_info_of_an_unknown_id_exit_1_and_of_a_known_one_0() {
    let redis = RedisServer::start();
    let url = redis.url();
    let unknown = WorkId::new().to_string();
    for cmd in ["cancel", "info"] {
        let out = workq(&["--redis", &url, cmd, &unknown]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("not found"), "{cmd}");
    }

    let wm = WorkManager::connect(&url).await.unwrap();
    let id = wm
        .enqueue(
            OneTimeWorkRequest::builder(Nop { i: 1 })
                .initial_delay(std::time::Duration::from_secs(3600))
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
        .id
        .to_string();
    let out = workq(&["--redis", &url, "cancel", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = workq(&["--redis", &url, "info", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CANCELLED"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn the_readmes_operator_user_runs_the_reading_commands_and_may_not_cancel() {
    let redis = RedisServer::start();
    let url = redis.url();
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for rule in readme_acl_rules() {
        let _: () = redis::cmd(&rule[0])
            .arg(&rule[1..])
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let wm = WorkManager::connect(&url).await.unwrap();
    let id = wm
        .enqueue(OneTimeWorkRequest::builder(Nop { i: 1 }).build().unwrap())
        .await
        .unwrap()
        .id;
    let operator = format!(
        "redis://workq-operator:operator-password@127.0.0.1:{}",
        redis.port()
    );
    let out = workq(&["--redis", &operator, "stats"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("default: enqueued=1 "),
        "{}",
        text(&out.stdout)
    );
    let out = workq(&["--redis", &operator, "info", &id.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{id} {}", WorkState::Enqueued)),
        "{}",
        text(&out.stdout)
    );
    // The other reading commands, as the README lists them for this user.
    wm.enqueue_periodic(
        workq_producer::PeriodicWorkRequest::builder(
            Nop { i: 2 },
            std::time::Duration::from_secs(3600),
        )
        .build()
        .unwrap(),
    )
    .await
    .unwrap();
    for cmd in [
        &["queues"][..],
        &["workers"],
        &["periodic"],
        &["jobs", "--state", "ready"],
        &["jobs", "--state", "periodic"],
    ] {
        let mut args = vec!["--redis", operator.as_str()];
        args.extend(cmd);
        let out = workq(&args);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", text(&out.stderr));
    }
    // Read-only: it may not cancel.
    let out = workq(&["--redis", &operator, "cancel", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no permissions"),
        "{}",
        text(&out.stderr)
    );
}

/// Calls Redis served since the last `CONFIG RESETSTAT`, from `INFO commandstats`.
async fn commands_served(con: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            l.split_once("calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn metrics_prints_the_queues_by_state_and_costs_the_same_commands_however_many_jobs() {
    let redis = RedisServer::start();
    let url = redis.url();
    let wm = WorkManager::connect(&url).await.unwrap();
    let reqs: Vec<OneTimeWorkRequest> = (0..3)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .chain(std::iter::once(
            OneTimeWorkRequest::builder(Nop { i: 9 })
                .initial_delay(std::time::Duration::from_secs(3600))
                .build()
                .unwrap(),
        ))
        .collect();
    wm.enqueue_many(reqs).await.unwrap();
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    let scrape = |con: &mut redis::aio::MultiplexedConnection| {
        let url = url.clone();
        let mut con = con.clone();
        async move {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query_async(&mut con)
                .await
                .unwrap();
            let out = workq(&["--redis", &url, "metrics"]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            // The same overhead in every scrape: the CLI connecting, this INFO.
            let served = commands_served(&mut con).await;
            (text(&out.stdout), served)
        }
    };
    let (page, few) = scrape(&mut con).await;
    for line in [
        "# TYPE workq_queue_jobs gauge",
        "workq_queue_jobs{queue=\"default\",state=\"ready\"} 3",
        "workq_queue_jobs{queue=\"default\",state=\"scheduled\"} 1",
        "workq_queue_jobs{queue=\"default\",state=\"running\"} 0",
        "# TYPE workq_queue_events_total counter",
        "workq_queue_events_total{event=\"enqueued\",queue=\"default\"} 4",
        "workq_queue_events_total{event=\"lease_expired\",queue=\"default\"} 0",
        "workq_queue_workers{queue=\"default\"} 0",
        "workq_redis_up 1",
    ] {
        assert!(
            page.lines().any(|l| l == line),
            "no line {line:?} in\n{page}"
        );
    }

    // A thousand more jobs in the same lanes: the scrape sends the same commands.
    let more: Vec<OneTimeWorkRequest> = (100..1100)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    wm.enqueue_many(more).await.unwrap();
    let (page, many) = scrape(&mut con).await;
    assert!(
        page.contains("workq_queue_jobs{queue=\"default\",state=\"ready\"} 1003"),
        "{page}"
    );
    assert_eq!(
        few, many,
        "commands per scrape grew with the number of jobs"
    );
}

#[tokio::test]
async fn the_admin_commands_list_pause_run_now_delete_and_purge_with_json_and_exit_codes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let wm = WorkManager::connect(&url).await.unwrap();
    let later = OneTimeWorkRequest::builder(Nop { i: 1 })
        .initial_delay(std::time::Duration::from_secs(3600))
        .tag("cli")
        .build()
        .unwrap();
    let id = later.id().to_string();
    wm.enqueue(later).await.unwrap();

    // jobs --json: one document with the page and no cursor.
    let out = workq(&["--redis", &url, "jobs", "--state", "scheduled", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["jobs"][0]["id"], id.as_str(), "{doc}");
    assert_eq!(doc["jobs"][0]["state"], "ENQUEUED", "{doc}");
    assert_eq!(doc["jobs"][0]["tags"][0], "cli", "{doc}");
    assert!(doc["next"].is_null());
    // A table line per job by default.
    let out = workq(&["--redis", &url, "jobs", "--state", "scheduled"]);
    assert!(text(&out.stdout).starts_with(&id), "{}", text(&out.stdout));
    // A state that does not exist is an error naming the choices.
    let out = workq(&["--redis", &url, "jobs", "--state", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("use ready, scheduled"),
        "{}",
        text(&out.stderr)
    );

    // pause / resume.
    let out = workq(&["--redis", &url, "pause", "default"]);
    assert_eq!(text(&out.stdout).trim(), "default: paused");
    assert!(wm.queue_stats("default").await.unwrap().paused);
    let out = workq(&["--redis", &url, "resume", "default"]);
    assert_eq!(text(&out.stdout).trim(), "default: running");
    assert!(!wm.queue_stats("default").await.unwrap().paused);

    // run-now: done for the delayed job, exit 1 for an unknown id among them.
    let unknown = WorkId::new().to_string();
    let out = workq(&["--redis", &url, "run-now", &id, &unknown, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc[&id], "done");
    assert_eq!(doc[&unknown], "not_found");
    assert_eq!(wm.queue_stats("default").await.unwrap().ready, 1);

    // delete and purge refuse without --yes when stdin is not a terminal.
    let out = workq(&["--redis", &url, "delete", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(wm.get_work_info(later_id(&id)).await.unwrap().is_some());
    let out = workq(&["--redis", &url, "delete", &id, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(wm.get_work_info(later_id(&id)).await.unwrap().is_none());
    let out = workq(&["--redis", &url, "purge", "default", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["purged"], 0);
}

fn later_id(s: &str) -> WorkId {
    s.parse().unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&out.stdout)))
}

#[tokio::test]
async fn enqueue_info_queues_workers_periodic_and_prune_print_tables_json_and_exit_codes() {
    let redis = RedisServer::start();
    let url = redis.url();
    let wm = WorkManager::connect(&url).await.unwrap();

    // enqueue: the JSON input is stored as MessagePack; the id is printed.
    let input = r#"{"to":"a@example.com","html":"<b>hi</b>","n":[1,2]}"#;
    let doc = json_of(&workq(&[
        "--redis", &url, "enqueue", "emails", "--input", input, "--delay", "1h", "--tag", "t1",
        "--json",
    ]));
    assert_eq!(doc["status"], "enqueued", "{doc}");
    let id: WorkId = doc["ids"][0].as_str().unwrap().parse().unwrap();
    let info = wm.get_work_info(id).await.unwrap().unwrap();
    assert_eq!(
        (info.kind.as_str(), info.tags.as_slice()),
        ("emails", &["t1".to_owned()][..])
    );
    let stored: serde_json::Value = info.input.decode().unwrap();
    assert_eq!(
        stored,
        serde_json::from_str::<serde_json::Value>(input).unwrap()
    );
    assert!(info.next_due_at.is_some());
    // Bad input is refused, naming what is wrong, and stores nothing.
    for (args, says) in [
        (
            vec!["enqueue", "emails", "--input", "{not json"],
            "--input is not JSON",
        ),
        (
            vec!["enqueue", "emails", "--delay", "5weeks"],
            "unknown unit",
        ),
        (vec!["enqueue", "emails", "--at", "tomorrow"], "not a time"),
        (vec!["enqueue", "bad,kind"], "kind"),
    ] {
        let mut all = vec!["--redis", url.as_str()];
        all.extend(args);
        let out = workq(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{all:?}: {}",
            text(&out.stderr)
        );
    }
    // Unique work: the second enqueue keeps the first.
    let first = json_of(&workq(&[
        "--redis", &url, "enqueue", "report", "--unique", "nightly", "--json",
    ]));
    let again = json_of(&workq(&[
        "--redis", &url, "enqueue", "report", "--unique", "nightly", "--json",
    ]));
    assert_eq!(again["status"], "kept");
    assert_eq!(again["ids"], first["ids"]);
    let doc = json_of(&workq(&[
        "--redis", &url, "jobs", "--unique", "nightly", "--json",
    ]));
    assert_eq!(doc["jobs"][0]["id"], first["ids"][0], "{doc}");
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(
        wm.queue_stats("default").await.unwrap().enqueued,
        2,
        "nothing else stored"
    );

    // info: input as JSON, in text and in --json.
    let doc = json_of(&workq(&[
        "--redis",
        &url,
        "info",
        &id.to_string(),
        "--json",
    ]));
    assert_eq!(doc["input"]["html"], "<b>hi</b>");
    assert_eq!(doc["state"], "ENQUEUED");
    assert!(doc["due_at_ms"].is_u64() && doc["errors"].as_array().unwrap().is_empty());
    let out = workq(&["--redis", &url, "info", &id.to_string()]);
    assert!(
        text(&out.stdout).contains(r#"input: {"html":"<b>hi</b>","n":[1,2],"to":"a@example.com"}"#),
        "{}",
        text(&out.stdout)
    );

    // queues: a table, and the same counts in --json.
    let out = workq(&["--redis", &url, "queues"]);
    let t = text(&out.stdout);
    let mut lines = t.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("QUEUE    STATE   READY  SCHEDULED"),
        "{t}"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["default", "active", "1", "1"], "{t}");
    let doc = json_of(&workq(&["--redis", &url, "queues", "--json"]));
    assert_eq!(
        (
            doc["queues"][0]["ready"].as_u64(),
            doc["queues"][0]["scheduled"].as_u64()
        ),
        (Some(1), Some(1))
    );

    // workers: a running worker with its slots.
    let rt = workq_worker::WorkerRuntime::builder(&url)
        .worker_id("cli-worker")
        .concurrency(2)
        .register(workq_tests::jobs::NopWorker)
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(rt.run_until(async {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while wm.list_workers("default").await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never showed up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let doc = json_of(&workq(&["--redis", &url, "workers", "--json"]));
    assert_eq!(doc["workers"][0]["id"], "cli-worker", "{doc}");
    assert_eq!(doc["workers"][0]["slots"], 2, "{doc}");
    assert_eq!(doc["workers"][0]["live"], true, "{doc}");
    let t = text(&workq(&["--redis", &url, "workers"]).stdout);
    assert!(t.starts_with("QUEUE    WORKER      HOST"), "{t}");
    assert!(t.lines().nth(1).unwrap().contains("cli-worker"), "{t}");
    let _ = stop.send(());
    worker.await.unwrap().unwrap();

    // periodic: the schedule, in both forms.
    let p = workq_producer::PeriodicWorkRequest::builder(
        Nop { i: 9 },
        std::time::Duration::from_secs(3600),
    )
    .build()
    .unwrap();
    let pid = p.id().to_string();
    wm.enqueue_periodic(p).await.unwrap();
    let doc = json_of(&workq(&["--redis", &url, "periodic", "--json"]));
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["jobs"][0]["id"], pid.as_str());
    assert_eq!(doc["jobs"][0]["schedule"]["interval_ms"], 3_600_000);
    let t = text(&workq(&["--redis", &url, "periodic"]).stdout);
    assert!(t.lines().nth(1).unwrap().contains("every 3600s"), "{t}");

    // prune: the finished jobs (the worker ran the ready one) go.
    let doc = json_of(&workq(&[
        "--redis", &url, "prune", "--queue", "default", "--json",
    ]));
    assert!(doc["pruned"].is_u64(), "{doc}");
    assert_eq!(wm.queue_stats("default").await.unwrap().finished, 0);

    // completions: a script for the shell, no Redis needed.
    let out = workq(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("_workq"),
        "a bash completion function"
    );
    assert_eq!(workq(&["completions", "tcsh"]).status.code(), Some(2));
}
