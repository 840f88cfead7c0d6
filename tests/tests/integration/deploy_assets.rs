//! The monitoring assets of `deploy/`: the Prometheus scrape configuration, the alert rules
//! and their unit tests (through `promtool`, which tests/run.sh installs), and the Grafana
//! dashboard. A typo in a metric name, `rate()` over a gauge, an alert without a test that
//! shows it firing and one that shows it quiet, or a query Prometheus cannot parse fails
//! here rather than on an operator's screen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use workq_tests::prometheus::{
    counter_function_arguments, dashboard_queries, metric_names, promtool, TempDir,
};

/// The series workq exposes, as named by the observability issue: per worker process,
/// then from the exporter. A histogram is listed by its base name.
const WORKER_METRICS: &[&str] = &[
    "workq_jobs_claimed_total",
    "workq_attempts_total",
    "workq_attempt_duration_seconds",
    "workq_job_lateness_seconds",
    "workq_leases_lost_total",
    "workq_acks_refused_total",
    "workq_redis_errors_total",
    "workq_redis_call_duration_seconds",
    "workq_worker_slots",
    "workq_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
];
const EXPORTER_METRICS: &[&str] = &[
    "workq_queue_jobs",
    "workq_queue_oldest_ready_age_seconds",
    "workq_queue_unsatisfiable_jobs",
    "workq_queue_paused",
    "workq_queue_workers",
    "workq_queue_events_total",
    "workq_redis_up",
];
const HISTOGRAMS: &[&str] = &[
    "workq_attempt_duration_seconds",
    "workq_job_lateness_seconds",
    "workq_redis_call_duration_seconds",
];
/// The series with a `queue` label, which the dashboard must filter by `$queue`.
const QUEUE_LABELLED: &[&str] = &[
    "workq_jobs_claimed_total",
    "workq_attempts_total",
    "workq_attempt_duration_seconds_bucket",
    "workq_job_lateness_seconds_bucket",
    "workq_leases_lost_total",
    "workq_acks_refused_total",
    "workq_queue_jobs",
    "workq_queue_oldest_ready_age_seconds",
    "workq_queue_unsatisfiable_jobs",
    "workq_queue_paused",
    "workq_queue_workers",
    "workq_queue_events_total",
];

/// Every series name a query may read: the metrics above, a histogram as its `_bucket`,
/// `_count` and `_sum` series.
fn known_series() -> BTreeSet<String> {
    let mut known = BTreeSet::new();
    for m in WORKER_METRICS.iter().chain(EXPORTER_METRICS) {
        if HISTOGRAMS.contains(m) {
            for suffix in ["_bucket", "_count", "_sum"] {
                known.insert(format!("{m}{suffix}"));
            }
        } else {
            known.insert((*m).to_owned());
        }
    }
    known
}

/// Counters and histogram series: the only ones that rate(), irate() and increase() make
/// sense of.
fn is_counter_like(series: &str) -> bool {
    ["_total", "_bucket", "_count", "_sum"]
        .iter()
        .any(|s| series.ends_with(s))
}

/// The problems of one expression: unknown metric names (`extra` allows more, such as
/// Prometheus' own `up`), and counter functions over anything but counters.
fn expr_problems(expr: &str, extra: &[&str]) -> Vec<String> {
    let known = known_series();
    let mut problems = Vec::new();
    for name in metric_names(expr) {
        if !known.contains(&name) && !extra.contains(&name.as_str()) {
            problems.push(format!("unknown metric {name:?} in {expr:?}"));
        }
    }
    for (function, series) in counter_function_arguments(expr) {
        if !is_counter_like(&series) {
            problems.push(format!(
                "{function}() over {series:?}, which is not a counter, in {expr:?}"
            ));
        }
    }
    problems
}

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for")]
    pending: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RuleTestFile {
    rule_files: Vec<String>,
    tests: Vec<RuleTestGroup>,
}

#[derive(Deserialize)]
struct RuleTestGroup {
    #[serde(default)]
    input_series: Vec<InputSeries>,
    #[serde(default)]
    alert_rule_test: Vec<AlertCase>,
}

#[derive(Deserialize)]
struct InputSeries {
    series: String,
}

#[derive(Deserialize)]
struct AlertCase {
    alertname: String,
    /// promtool takes a missing list as "no alert".
    #[serde(default)]
    exp_alerts: Vec<Yaml>,
}

fn rules() -> Vec<Rule> {
    let path = deploy("prometheus/workq-rules.yml");
    let file: RuleFile =
        serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.groups.into_iter().flat_map(|g| g.rules).collect()
}

fn rule_tests() -> RuleTestFile {
    let path = deploy("prometheus/workq-rules.test.yml");
    serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_promtool(args: &[&str]) {
    let run = promtool(args);
    assert!(run.success, "promtool {}:\n{}", args.join(" "), run.output);
}

/// Debian's promtool is built without Kubernetes discovery, so it refuses
/// `kubernetes_sd_configs`. With such a promtool the configuration is checked with each
/// `kubernetes_sd_configs` replaced by an empty `static_configs` (everything else,
/// relabelling included, still goes through promtool), and the discovery settings are
/// checked here: role pod. This is said on stderr, not skipped quietly.
#[test]
fn scrape_config_passes_promtool_check_config() {
    let path = deploy("prometheus/prometheus.yml");
    let run = promtool(["check".as_ref(), "config".as_ref(), path.as_os_str()]);
    if run.success {
        return;
    }
    assert!(
        run.output.contains("field kubernetes_sd_configs not found"),
        "promtool check config {}:\n{}",
        path.display(),
        run.output
    );
    eprintln!(
        "this promtool has no Kubernetes discovery (Debian's build): checking prometheus.yml \
         with kubernetes_sd_configs replaced by static_configs, and the discovery role here"
    );
    let mut config: Yaml = serde_norway::from_str(&read(&path)).expect("prometheus.yml");
    let jobs = config
        .get_mut("scrape_configs")
        .and_then(Yaml::as_sequence_mut)
        .expect("scrape_configs");
    for job in jobs.iter_mut() {
        let job = job.as_mapping_mut().expect("a scrape config is a mapping");
        let Some(sd) = job.remove("kubernetes_sd_configs") else {
            continue;
        };
        for entry in sd.as_sequence().expect("kubernetes_sd_configs is a list") {
            assert_eq!(
                entry.get("role").and_then(Yaml::as_str),
                Some("pod"),
                "kubernetes_sd_configs: {entry:?}"
            );
        }
        job.insert(
            "static_configs".into(),
            serde_norway::from_str("[{targets: []}]").expect("static_configs"),
        );
    }
    let dir = TempDir::new("promconfig");
    let copy = dir.path().join("prometheus.yml");
    std::fs::write(&copy, serde_norway::to_string(&config).expect("yaml")).expect("write");
    for rule_file in config
        .get("rule_files")
        .and_then(Yaml::as_sequence)
        .into_iter()
        .flatten()
    {
        let name = rule_file.as_str().expect("rule file name");
        std::fs::copy(deploy("prometheus").join(name), dir.path().join(name)).expect("copy");
    }
    let run = promtool(["check".as_ref(), "config".as_ref(), copy.as_os_str()]);
    assert!(
        run.success,
        "promtool check config (kubernetes_sd_configs replaced):\n{}",
        run.output
    );
}

/// The jobs the rules and the README name exist, and the pod discovery honours the three
/// annotations.
#[test]
fn scrape_config_has_the_static_jobs_and_pod_annotations() {
    let config: Yaml =
        serde_norway::from_str(&read(&deploy("prometheus/prometheus.yml"))).expect("yaml");
    let rule_files: Vec<&str> = config["rule_files"]
        .as_sequence()
        .expect("rule_files")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(rule_files, ["workq-rules.yml"]);
    let jobs = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs");
    let job = |name: &str| {
        jobs.iter()
            .find(|j| j["job_name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no scrape job {name}"))
    };
    for name in ["workq-worker", "workq-exporter"] {
        assert!(job(name).get("static_configs").is_some(), "{name}");
    }
    let pods = job("kubernetes-pods");
    assert!(pods.get("kubernetes_sd_configs").is_some());
    let sources: BTreeSet<&str> = pods["relabel_configs"]
        .as_sequence()
        .expect("relabel_configs")
        .iter()
        .flat_map(|r| r["source_labels"].as_sequence().into_iter().flatten())
        .filter_map(Yaml::as_str)
        .collect();
    for annotation in ["scrape", "port", "path"] {
        let label = format!("__meta_kubernetes_pod_annotation_prometheus_io_{annotation}");
        assert!(
            sources.contains(label.as_str()),
            "no relabelling reads {label}"
        );
    }
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let path = deploy("prometheus/workq-rules.yml");
    assert_promtool(&["check", "rules", path.to_str().expect("utf-8 path")]);
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    let path = deploy("prometheus/workq-rules.test.yml");
    assert_promtool(&["test", "rules", path.to_str().expect("utf-8 path")]);
}

/// Every alert tells the operator what it is and what to do, has a severity and a `for`,
/// and has a unit test where it fires and one where it stays quiet; every test names an
/// alert that exists (a misspelt name would pass an `exp_alerts: []` case vacuously).
#[test]
fn every_alert_is_documented_and_tested_firing_and_quiet() {
    let rules = rules();
    let tests = rule_tests();
    assert_eq!(tests.rule_files, ["workq-rules.yml"]);
    let alerts: BTreeSet<String> = rules.iter().filter_map(|r| r.alert.clone()).collect();
    assert!(!alerts.is_empty());
    let mut problems = Vec::new();
    for rule in &rules {
        let Some(alert) = &rule.alert else {
            continue;
        };
        for key in ["summary", "description"] {
            if rule
                .annotations
                .get(key)
                .is_none_or(|t| t.trim().is_empty())
            {
                problems.push(format!("{alert}: no {key} annotation"));
            }
        }
        match rule.labels.get("severity").map(String::as_str) {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!("{alert}: severity {other:?}")),
        }
        if rule.pending.is_none() {
            problems.push(format!("{alert}: no `for:`"));
        }
    }
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in tests.tests.iter().flat_map(|t| &t.alert_rule_test) {
        if !alerts.contains(&case.alertname) {
            problems.push(format!("a test names unknown alert {}", case.alertname));
        }
        if case.exp_alerts.is_empty() {
            quiet.insert(case.alertname.clone());
        } else {
            firing.insert(case.alertname.clone());
        }
    }
    for alert in &alerts {
        if !firing.contains(alert) {
            problems.push(format!("{alert}: no test case where it fires"));
        }
        if !quiet.contains(alert) {
            problems.push(format!("{alert}: no test case where it does not fire"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rules and their test input read only the metrics workq exposes (a misspelt name
/// in both would pass promtool's unit tests and never fire), and apply rate() and
/// increase() only to counters.
#[test]
fn alert_rules_read_only_workq_metrics_and_rate_only_counters() {
    let mut problems = Vec::new();
    for rule in rules() {
        problems.extend(expr_problems(&rule.expr, &["up"]));
    }
    for series in rule_tests().tests.iter().flat_map(|t| &t.input_series) {
        problems.extend(expr_problems(&series.series, &["up"]));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn dashboard() -> Json {
    let path = deploy("grafana/workq.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The panels of the dashboard, those inside collapsed rows included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

#[test]
fn dashboard_has_datasource_and_queue_variables() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64() >= Some(39),
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    let datasource = variable("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let queue = variable("queue");
    assert_eq!(queue["type"], "query");
    assert_eq!(queue["datasource"]["uid"], "${datasource}");
    assert_eq!(
        queue["query"]["query"], "label_values(workq_queue_jobs, queue)",
        "queue variable query"
    );
    assert_eq!(queue["multi"], true);
    assert_eq!(queue["includeAll"], true);

    // Every panel and query reads the chosen data source, not one of the author's.
    for panel in panels(&dashboard) {
        if panel["type"] == "row" {
            continue;
        }
        let title = &panel["title"];
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {title}");
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(
                target["datasource"]["uid"], "${datasource}",
                "panel {title}"
            );
        }
    }
    // Every query over a series with a queue label follows the queue variable.
    let mut problems = Vec::new();
    for (title, expr) in dashboard_queries() {
        let per_queue = metric_names(&expr)
            .iter()
            .any(|m| QUEUE_LABELLED.contains(&m.as_str()));
        if per_queue && !expr.contains(r#"queue=~"$queue""#) {
            problems.push(format!("panel {title}: {expr:?} ignores $queue"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// promtool parses each query, written as a recording rule (with Grafana's variables
/// replaced by values).
#[test]
fn dashboard_queries_are_valid_promql() {
    let queries = dashboard_queries();
    assert!(!queries.is_empty());
    let exprs: Vec<String> = queries
        .iter()
        .map(|(_, expr)| {
            expr.replace("$__rate_interval", "5m")
                .replace("$__interval", "1m")
                .replace("$queue", ".*")
        })
        .collect();
    let run = workq_tests::prometheus::check_promql("dashboard_query", &exprs);
    assert!(run.success, "promtool check rules:\n{}", run.output);
}

/// The queries read only the metrics workq exposes, and rate(), irate() and increase()
/// only counters and histogram series: the rate of a gauge is a slope that means nothing.
#[test]
fn dashboard_reads_only_workq_metrics_and_rates_only_counters() {
    let mut problems = Vec::new();
    for (title, expr) in dashboard_queries() {
        problems.extend(
            expr_problems(&expr, &[])
                .into_iter()
                .map(|p| format!("panel {title}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The scanner the two checks above rely on finds what it must.
#[test]
fn promql_scanner_finds_metrics_and_rate_arguments() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(workq_job_lateness_seconds_bucket{queue=~"$queue"}[5m])))
        / on (queue) group_left max by (queue) (workq_queue_jobs{state="ready", x="rate(y)"}) offset 5m"#;
    assert_eq!(
        metric_names(expr),
        ["workq_job_lateness_seconds_bucket", "workq_queue_jobs"]
    );
    assert_eq!(
        counter_function_arguments(expr),
        [(
            "rate".to_owned(),
            "workq_job_lateness_seconds_bucket".to_owned()
        )]
    );
    assert_eq!(
        expr_problems("sum(irate(workq_queue_jobs[5m]))", &[]),
        [
            r#"irate() over "workq_queue_jobs", which is not a counter, in "sum(irate(workq_queue_jobs[5m]))""#
        ]
    );
    assert_eq!(
        expr_problems("workq_queue_job", &[]),
        [r#"unknown metric "workq_queue_job" in "workq_queue_job""#]
    );
    assert!(expr_problems(
        "sum by (queue) (increase(workq_acks_refused_total[15m])) > 0",
        &[]
    )
    .is_empty());
}
