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
async fn the_readmes_operator_user_runs_stats_and_info() {
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
    // Read-only: it may not cancel.
    let out = workq(&["--redis", &operator, "cancel", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("no permissions"),
        "{}",
        text(&out.stderr)
    );
}
