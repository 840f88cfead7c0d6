//! workq's metrics as a real Prometheus sees them: it scrapes two worker processes and the
//! exporter (`workq serve`) every second; the test runs a known workload, SIGKILLs a
//! worker holding jobs, stops the other, and asks Prometheus' HTTP API (queries and
//! alerts).

use workq_producer::{OneTimeWorkRequest, WorkManager};
use workq_tests::jobs::{Fail, Nop, Sleep};
use workq_tests::prom_server::PrometheusServer;
use workq_tests::{free_port, RedisServer, WorkerProcess};

use crate::support::{spawn_worker, workspace_bin};

fn http_env(port: u16) -> Vec<(String, String)> {
    vec![("WORKQ_TEST_HTTP".to_owned(), format!("127.0.0.1:{port}"))]
}

/// The dashboard's queries, with its variables filled in for the queue `default`.
fn dashboard_queries() -> Vec<String> {
    workq_tests::prometheus::dashboard_queries()
        .into_iter()
        .map(|(_, e)| {
            e.replace("$__rate_interval", "1m")
                .replace("$__interval", "1m")
                .replace("$queue", "default")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_the_workload_a_lease_expiry_and_the_backlog_drain() {
    let redis = RedisServer::start();
    let url = redis.url();
    let wm = WorkManager::connect(&url).await.unwrap();
    let (a_port, b_port, exporter_port) = (free_port(), free_port(), free_port());
    let (mut a, _, _) = spawn_worker(&url, "default", 4, 1_000, 500, &http_env(a_port));
    let (mut b, _, _) = spawn_worker(&url, "default", 4, 1_000, 500, &http_env(b_port));
    let mut exporter = WorkerProcess::spawn_capturing(
        &workspace_bin("workq-producer", "workq"),
        &[
            "--redis".to_owned(),
            url.clone(),
            "serve".to_owned(),
            "--http".to_owned(),
            format!("127.0.0.1:{exporter_port}"),
        ],
        &[],
    );
    exporter.wait_stderr(&["workq serve: listening on"]);
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
         - job_name: workq-worker\n    static_configs:\n      - targets: \
         ['127.0.0.1:{a_port}', '127.0.0.1:{b_port}']\n  - job_name: workq-exporter\n    \
         static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n"
    );
    // The project's alert rules, with every `for:` cut to nothing so that an alert fires
    // at its first evaluation.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/prometheus/workq-rules.yml"
    ))
    .expect("the rules");
    let rules: String = rules
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => format!("{}for: 0s\n", &l[..l.len() - l.trim_start().len()]),
            None => format!("{l}\n"),
        })
        .collect();
    let config = format!("{config}rule_files: [workq-rules.yml]\n");
    let prom = PrometheusServer::start(&config, &[("workq-rules.yml", &rules)]);
    prom.until("all three targets are up", || {
        prom.value("sum(up)") == Some(3.0)
    });

    // 500 jobs that succeed and 20 that fail for good.
    let mut reqs: Vec<OneTimeWorkRequest> = (0..500)
        .map(|i| OneTimeWorkRequest::builder(Nop { i }).build().unwrap())
        .collect();
    reqs.extend((0..20).map(|_| {
        OneTimeWorkRequest::builder(Fail {
            mode: "failure".into(),
        })
        .max_attempts(1)
        .build()
        .unwrap()
    }));
    wm.enqueue_many(reqs).await.unwrap();
    let event =
        |e: &str| format!("max(workq_queue_events_total{{queue=\"default\",event=\"{e}\"}})");
    prom.until(
        "500 succeeded and 20 failed, as the exporter counts",
        || {
            prom.value(&event("succeeded")) == Some(500.0)
                && prom.value(&event("failed")) == Some(20.0)
        },
    );
    prom.until("the workers' own counters agree", || {
        prom.value("sum(workq_attempts_total{outcome=\"succeeded\"})") == Some(500.0)
            && prom.value("sum(workq_attempts_total{outcome=\"failed\"})") == Some(20.0)
    });

    // Eight jobs of two seconds on two workers of four slots: each holds four. Killing one
    // leaves its four to the other once the lease (1 s) runs out.
    let sleeps: Vec<OneTimeWorkRequest> = (0..8)
        .map(|_| {
            OneTimeWorkRequest::builder(Sleep::ms(2_000))
                .build()
                .unwrap()
        })
        .collect();
    wm.enqueue_many(sleeps).await.unwrap();
    for w in [&mut a, &mut b] {
        for _ in 0..4 {
            w.wait_line("START ");
        }
    }
    a.signal("KILL");
    prom.until("a lease expiry is counted", || {
        prom.value(&event("lease_expired"))
            .is_some_and(|n| n >= 1.0)
    });
    prom.until("the backlog is back to zero", || {
        prom.value("max(workq_queue_jobs{queue=\"default\",state=\"ready\"})") == Some(0.0)
            && prom.value("max(workq_queue_jobs{queue=\"default\",state=\"running\"})") == Some(0.0)
            && prom.value(&event("succeeded")) == Some(508.0)
    });

    // Every query of the dashboard has data on this Prometheus.
    let empty: Vec<String> = dashboard_queries()
        .into_iter()
        .filter(|q| {
            prom.query(q)["result"]
                .as_array()
                .is_none_or(|r| r.is_empty())
        })
        .collect();
    assert!(
        empty.is_empty(),
        "dashboard queries without a result: {empty:#?}"
    );

    // Work is ready and no worker is left (the killed one stops counting as live a
    // minute after it was last seen): the alert fires, and not before.
    let firing = |prom: &PrometheusServer| {
        prom.alerts()
            .iter()
            .any(|(name, state)| name == "WorkqReadyJobsWithoutWorker" && state == "firing")
    };
    assert!(!firing(&prom), "fired while a worker runs");
    b.signal("TERM");
    assert_eq!(b.wait(), Some(0));
    wm.enqueue(OneTimeWorkRequest::builder(Nop { i: 0 }).build().unwrap())
        .await
        .unwrap();
    prom.until("WorkqReadyJobsWithoutWorker fires", || firing(&prom));
}
