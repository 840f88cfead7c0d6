//! The Kubernetes manifests of `deploy/k8s/`: the standard kinds through
//! `kubernetes-validate --strict` (tests/run.sh installs it into target/venv), the KEDA
//! ScaledObject's structure here (no schema for it there), the autoscaling queries through
//! `promtool`, and the places where two files must agree: the grace period and the
//! worker's `--grace-ms`, the probes and its `--http` port, the autoscalers and the
//! Deployment they scale, the PodDisruptionBudget and the worker pods. A manifest that
//! Kubernetes would refuse, or that scales on the scheduled set, or that SIGKILLs workers
//! in their grace period or hand-back, fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_norway::Value as Yaml;
use workq_tests::prometheus::{check_promql, metric_names};

/// The exporter's series (the observability issue's list; deploy_assets.rs has the same
/// list beside the worker's). The autoscalers read queue state, which only the exporter
/// serves.
const EXPORTER_METRICS: &[&str] = &[
    "workq_queue_jobs",
    "workq_queue_oldest_ready_age_seconds",
    "workq_queue_unsatisfiable_jobs",
    "workq_queue_paused",
    "workq_queue_workers",
    "workq_queue_events_total",
    "workq_redis_up",
];

/// After the grace period, how long a worker's hand-back and last acks may take
/// (worker/src/runtime/shutdown.rs, `DRAIN`): the kubelet's SIGKILL must come after both.
const HAND_BACK_MS: u64 = 5_000;

/// Not a Kubernetes object: the prometheus-adapter's own configuration file.
const ADAPTER_RULES: &str = "prometheus-adapter-rules.yaml";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn k8s(name: &str) -> PathBuf {
    root().join("deploy/k8s").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents of a (multi-document) YAML file; empty documents left out.
fn documents(path: &Path) -> Vec<Yaml> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The manifests: every `.yaml` of deploy/k8s/ but the adapter's configuration.
fn manifest_files() -> Vec<PathBuf> {
    let dir = root().join("deploy/k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read_dir").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| p.file_name().is_some_and(|n| n != ADAPTER_RULES))
        .collect();
    files.sort();
    files
}

/// A kind of a CRD, which kubernetes-validate has no schema for.
fn is_custom(doc: &Yaml) -> bool {
    doc["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("keda.sh/"))
}

fn str_at<'a>(doc: &'a Yaml, what: &str) -> &'a str {
    doc.as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {doc:?}"))
}

/// The one document of `kind` in `file`.
fn object(file: &str, kind: &str) -> Yaml {
    let mut found: Vec<Yaml> = documents(&k8s(file))
        .into_iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{file}: {} documents of kind {kind}",
        found.len()
    );
    found.remove(0)
}

fn workers() -> Yaml {
    object("workers.yaml", "Deployment")
}

fn scaled_object() -> Yaml {
    object("keda-scaledobject.yaml", "ScaledObject")
}

/// The container's `args`.
fn container_args(deployment: &Yaml) -> Vec<String> {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container: {containers:?}");
    containers[0]["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| str_at(a, "an argument").to_owned())
        .collect()
}

/// The values given to `--name` (as `--name V` or `--name=V`).
fn flag(args: &[String], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a == name {
            out.push(args.get(i + 1).cloned().unwrap_or_default());
        } else if let Some(v) = a.strip_prefix(&format!("{name}=")) {
            out.push(v.to_owned());
        }
    }
    out
}

fn one_flag(args: &[String], name: &str) -> String {
    let values = flag(args, name);
    assert_eq!(values.len(), 1, "{name} in {args:?}");
    values[0].clone()
}

/// The port of an `--http HOST:PORT` flag.
fn http_port(args: &[String]) -> u64 {
    let http = one_flag(args, "--http");
    let (_, port) = http.rsplit_once(':').expect("--http HOST:PORT");
    port.parse()
        .unwrap_or_else(|e| panic!("--http {http}: {e}"))
}

/// A probe's or a Service's port: a number, or the name of a container port.
fn resolve_port(container: &Yaml, port: &Yaml) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = str_at(port, "a port");
    container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn number(value: &Yaml, what: &str) -> f64 {
    // KEDA's trigger metadata is strings; an HPA's quantities too.
    let text = match value {
        Yaml::Number(n) => n.to_string(),
        other => str_at(other, what).to_owned(),
    };
    text.parse()
        .unwrap_or_else(|e| panic!("{what}: {text:?}: {e}"))
}

/// The ScaledObject's prometheus triggers: (name, metadata).
fn prometheus_triggers(scaled: &Yaml) -> Vec<Yaml> {
    scaled["spec"]["triggers"]
        .as_sequence()
        .expect("spec.triggers")
        .iter()
        .filter(|t| t["type"].as_str() == Some("prometheus"))
        .map(|t| t["metadata"].clone())
        .collect()
}

#[derive(Deserialize)]
struct AdapterConfig {
    #[serde(rename = "externalRules")]
    external_rules: Vec<ExternalRule>,
}

#[derive(Deserialize)]
struct ExternalRule {
    #[serde(rename = "seriesQuery")]
    series_query: String,
    name: RuleName,
    #[serde(rename = "metricsQuery")]
    metrics_query: String,
}

#[derive(Deserialize)]
struct RuleName {
    #[serde(rename = "as")]
    as_name: String,
}

fn adapter_rules() -> Vec<ExternalRule> {
    let path = k8s(ADAPTER_RULES);
    let config: AdapterConfig =
        serde_norway::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    config.external_rules
}

/// An adapter query with its templates filled in as the adapter does for hpa.yaml's
/// selector in namespace `workq`.
fn expand_adapter_template(query: &str) -> String {
    query
        .replace("<<.LabelMatchers>>", r#"namespace="workq",queue="default""#)
        .replace("<<.GroupBy>>", "queue")
}

/// Every autoscaling query: (where, PromQL, whether it is a series selector only).
fn autoscaling_queries() -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (i, trigger) in prometheus_triggers(&scaled_object()).iter().enumerate() {
        let query = str_at(&trigger["query"], "trigger query");
        out.push((format!("ScaledObject trigger {i}"), query.to_owned(), false));
    }
    for rule in adapter_rules() {
        let name = &rule.name.as_name;
        out.push((
            format!("adapter rule {name} seriesQuery"),
            rule.series_query.clone(),
            true,
        ));
        out.push((
            format!("adapter rule {name} metricsQuery"),
            expand_adapter_template(&rule.metrics_query),
            false,
        ));
    }
    out
}

/// The problems of one autoscaling query: metrics the exporter does not serve, a state
/// other than ready or running (the scheduled set is future work, not backlog), and, for a
/// query whose value is used, an aggregation other than max (several exporters report the
/// same numbers: a sum counts them once per exporter).
fn query_problems(place: &str, expr: &str, selector_only: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let names = metric_names(expr);
    if names.is_empty() {
        problems.push(format!("{place}: reads no metric: {expr:?}"));
    }
    for name in &names {
        if !EXPORTER_METRICS.contains(&name.as_str()) {
            problems.push(format!(
                "{place}: {name:?} is not an exporter metric: {expr:?}"
            ));
        }
    }
    if names.iter().any(|n| n == "workq_queue_jobs") {
        let state_matchers = expr.matches("state").count();
        let exact =
            expr.matches(r#"state="ready""#).count() + expr.matches(r#"state="running""#).count();
        if state_matchers == 0 || exact != state_matchers {
            problems.push(format!(
                "{place}: workq_queue_jobs must be selected with state=\"ready\" (or \
                 \"running\"), nothing else: {expr:?}"
            ));
        }
    }
    if !selector_only {
        let trimmed = expr.trim_start();
        if !(trimmed.starts_with("max(") || trimmed.starts_with("max by")) {
            problems.push(format!("{place}: not aggregated with max(): {expr:?}"));
        }
        for other in ["sum", "avg", "count"] {
            if expr.contains(other) {
                problems.push(format!("{place}: uses {other}, not max: {expr:?}"));
            }
        }
    }
    problems
}

/// (a) The standard kinds (Deployment, Service, HPA, Secret) pass the Kubernetes OpenAPI
/// schemas, unknown fields refused. A file holds standard kinds only or custom kinds only,
/// so that each file goes wholly to one of the two checks.
#[test]
fn standard_manifests_pass_kubernetes_validate_strict() {
    let tool = root().join("target/venv/bin/kubernetes-validate");
    assert!(
        tool.is_file(),
        "{} is missing: run tests/run.sh, which installs kubernetes-validate into target/venv",
        tool.display()
    );
    let mut standard = Vec::new();
    let mut kinds = BTreeSet::new();
    for file in manifest_files() {
        let docs = documents(&file);
        assert!(!docs.is_empty(), "{}: no documents", file.display());
        for doc in &docs {
            assert!(
                doc["apiVersion"].is_string() && doc["kind"].is_string(),
                "{}: a document without apiVersion and kind",
                file.display()
            );
        }
        let custom = docs.iter().filter(|d| is_custom(d)).count();
        if custom == 0 {
            kinds.extend(
                docs.iter()
                    .map(|d| d["kind"].as_str().unwrap_or("").to_owned()),
            );
            standard.push(file);
        } else {
            assert_eq!(
                custom,
                docs.len(),
                "{}: mixes custom and standard kinds",
                file.display()
            );
        }
    }
    for kind in [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "Secret",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    let out = Command::new(&tool)
        .arg("--strict")
        .args(&standard)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "kubernetes-validate --strict:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (b) The ScaledObject, which kubernetes-validate has no schema for: KEDA's v1alpha1,
/// down to zero workers, prometheus triggers with a query, a numeric threshold and an
/// activation threshold, and a missing series taken as an error (KEDA's default takes it
/// as 0 and would scale the workers away while the exporter is down).
#[test]
fn scaled_object_scales_the_workers_from_zero_on_a_prometheus_trigger() {
    let scaled = scaled_object();
    assert_eq!(scaled["apiVersion"].as_str(), Some("keda.sh/v1alpha1"));
    let spec = &scaled["spec"];
    assert_eq!(
        spec["scaleTargetRef"]["name"].as_str(),
        workers()["metadata"]["name"].as_str(),
        "scaleTargetRef names the workers' Deployment"
    );
    if let Some(kind) = spec["scaleTargetRef"].get("kind") {
        assert_eq!(kind.as_str(), Some("Deployment"));
    }
    assert_eq!(spec["minReplicaCount"].as_u64(), Some(0), "minReplicaCount");
    assert!(
        spec["maxReplicaCount"].as_u64() > Some(0),
        "maxReplicaCount {:?}",
        spec["maxReplicaCount"]
    );
    assert!(
        spec["cooldownPeriod"].as_u64() > Some(0),
        "cooldownPeriod {:?}",
        spec["cooldownPeriod"]
    );
    let triggers = prometheus_triggers(&scaled);
    assert!(!triggers.is_empty(), "no prometheus trigger");
    let mut on_ready = 0;
    for meta in &triggers {
        let address = str_at(&meta["serverAddress"], "serverAddress");
        assert!(address.starts_with("http"), "serverAddress {address:?}");
        let query = str_at(&meta["query"], "query");
        assert!(!query.trim().is_empty(), "an empty query");
        if query.contains(r#"state="ready""#) {
            on_ready += 1;
        }
        assert!(number(&meta["threshold"], "threshold") > 0.0, "{meta:?}");
        assert!(
            number(&meta["activationThreshold"], "activationThreshold") >= 0.0,
            "{meta:?}"
        );
        assert_eq!(
            meta["ignoreNullValues"].as_str(),
            Some("false"),
            "ignoreNullValues in {meta:?}"
        );
    }
    assert_eq!(on_ready, 1, "one trigger on the ready backlog");
}

/// (c) The ScaledObject's queries and the adapter's rules parse (promtool, as recording
/// rules), read only the exporter's metrics, select the ready (or running) jobs and never
/// the scheduled ones, and take max over the exporters.
#[test]
fn autoscaling_queries_are_valid_promql_over_the_exporters_ready_backlog() {
    let queries = autoscaling_queries();
    let mut problems = Vec::new();
    for (place, expr, selector_only) in &queries {
        problems.extend(query_problems(place, expr, *selector_only));
    }
    for rule in adapter_rules() {
        if rule.name.as_name == "workq_queue_ready_jobs" {
            assert!(
                rule.metrics_query.contains(r#"state="ready""#),
                "{}",
                rule.metrics_query
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let exprs: Vec<String> = queries.iter().map(|(_, expr, _)| expr.clone()).collect();
    let run = check_promql("k8s_query", &exprs);
    assert!(
        run.success,
        "promtool check rules {queries:#?}:\n{}",
        run.output
    );
}

/// The query checks catch what they must.
#[test]
fn query_checks_refuse_scheduled_sum_and_unknown_metrics() {
    assert!(query_problems("q", r#"max(workq_queue_jobs{state="ready"})"#, false).is_empty());
    assert_eq!(
        query_problems("q", r#"sum(workq_queue_jobs{state="ready"})"#, false).len(),
        2
    );
    assert_eq!(
        query_problems(
            "q",
            r#"max(workq_queue_jobs{state=~"ready|scheduled"})"#,
            false
        )
        .len(),
        1
    );
    assert_eq!(query_problems("q", "max(workq_queue_jobs)", false).len(), 1);
    assert_eq!(
        query_problems("q", r#"max(workq_attempts_total{state="ready"})"#, false).len(),
        1
    );
}

/// (d) The worker Deployment agrees with its own flags: SIGKILL comes after the grace
/// period, the probes and the scrape annotation use the `--http` port, the pods carry the
/// label that becomes Prometheus' job label, and REDIS_URL comes from the Secret. The
/// exporter likewise for its port, label and `serve`.
#[test]
fn worker_deployment_agrees_with_its_flags() {
    let workers = workers();
    let args = container_args(&workers);
    let pod = &workers["spec"]["template"];
    let container = &pod["spec"]["containers"][0];

    let grace_ms: u64 = one_flag(&args, "--grace-ms").parse().expect("--grace-ms");
    let termination_s = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        termination_s * 1000 > grace_ms + HAND_BACK_MS,
        "terminationGracePeriodSeconds {termination_s} s must exceed --grace-ms {grace_ms} \
         plus the hand-back ({HAND_BACK_MS} ms)"
    );

    let port = http_port(&args);
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(resolve_port(container, &get["port"]), port, "{probe} port");
    }
    // A probe that fails the worker (liveness) or takes it out (readiness) must not do so
    // before the process could answer: the first check comes after its start, and
    // liveness gives up later than readiness.
    let give_up = |probe: &str| {
        let p = &container[probe];
        p["initialDelaySeconds"].as_u64().unwrap_or(0)
            + p["periodSeconds"].as_u64().unwrap_or(10)
                * p["failureThreshold"].as_u64().unwrap_or(3)
    };
    assert!(
        give_up("livenessProbe") > give_up("readinessProbe"),
        "liveness gives up before readiness"
    );
    for resource in ["cpu", "memory"] {
        assert!(
            container["resources"]["requests"].get(resource).is_some(),
            "the worker requests {resource}"
        );
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str()),
        "prometheus.io/port"
    );
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/name"].as_str(),
        Some("workq-worker")
    );

    let secret = object("redis-secret.yaml", "Secret");
    let env = container["env"].as_sequence().expect("env");
    let redis_url = env
        .iter()
        .find(|e| e["name"].as_str() == Some("REDIS_URL"))
        .expect("REDIS_URL");
    let key_ref = &redis_url["valueFrom"]["secretKeyRef"];
    assert_eq!(
        key_ref["name"], secret["metadata"]["name"],
        "REDIS_URL's Secret"
    );
    let key = str_at(&key_ref["key"], "secretKeyRef.key");
    assert!(
        secret["stringData"].get(key).is_some(),
        "the Secret has no {key}"
    );

    let exporter = object("exporter.yaml", "Deployment");
    let exporter_args = container_args(&exporter);
    assert_eq!(exporter_args.first().map(String::as_str), Some("serve"));
    let exporter_pod = &exporter["spec"]["template"];
    assert_eq!(
        exporter_pod["metadata"]["annotations"]["prometheus.io/port"].as_str(),
        Some(http_port(&exporter_args).to_string().as_str()),
        "exporter prometheus.io/port"
    );
    assert_eq!(
        exporter_pod["metadata"]["labels"]["app.kubernetes.io/name"].as_str(),
        Some("workq-exporter")
    );
    let service = object("exporter.yaml", "Service");
    let service_port = &service["spec"]["ports"][0]["targetPort"];
    assert_eq!(
        resolve_port(&exporter_pod["spec"]["containers"][0], service_port),
        http_port(&exporter_args),
        "the Service's targetPort"
    );
}

/// (d) The HPA and the ScaledObject scale the workers' Deployment, on the metrics the
/// adapter serves, for the queue the workers serve, with the same thresholds; the running
/// jobs' threshold is the worker's --concurrency (a worker per `concurrency` running jobs).
#[test]
fn autoscalers_target_the_worker_deployment_with_the_same_thresholds() {
    let workers = workers();
    let name = workers["metadata"]["name"].as_str().expect("name");
    let worker_args = container_args(&workers);
    let queues = flag(&worker_args, "--queue");
    assert_eq!(queues.len(), 1, "the manifests scale one queue: {queues:?}");
    let queue = &queues[0];
    let concurrency = number(
        &Yaml::String(one_flag(&worker_args, "--concurrency")),
        "--concurrency",
    );

    let hpa = object("hpa.yaml", "HorizontalPodAutoscaler");
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!(target["name"].as_str(), Some(name), "HPA scaleTargetRef");
    assert_eq!(target["kind"].as_str(), Some("Deployment"));
    assert!(
        hpa["spec"]["minReplicas"].as_u64() >= Some(1),
        "an HPA cannot scale to zero without the alpha gate"
    );
    let scaled = scaled_object();
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"].as_str(),
        Some(name),
        "ScaledObject scaleTargetRef"
    );

    let served: BTreeSet<String> = adapter_rules()
        .into_iter()
        .map(|r| r.name.as_name)
        .collect();
    let mut hpa_thresholds = Vec::new();
    for metric in hpa["spec"]["metrics"].as_sequence().expect("metrics") {
        assert_eq!(metric["type"].as_str(), Some("External"), "{metric:?}");
        let external = &metric["external"];
        let metric_name = str_at(&external["metric"]["name"], "metric name");
        assert!(
            served.contains(metric_name),
            "the adapter serves no {metric_name} ({served:?})"
        );
        assert_eq!(
            external["metric"]["selector"]["matchLabels"]["queue"].as_str(),
            Some(queue.as_str()),
            "{metric_name}'s queue"
        );
        assert_eq!(external["target"]["type"].as_str(), Some("AverageValue"));
        let state = metric_name
            .strip_prefix("workq_queue_")
            .and_then(|s| s.strip_suffix("_jobs"))
            .expect("workq_queue_<state>_jobs");
        hpa_thresholds.push((
            state.to_owned(),
            number(&external["target"]["averageValue"], "averageValue"),
        ));
    }

    let mut keda_thresholds = Vec::new();
    for meta in prometheus_triggers(&scaled) {
        let query = str_at(&meta["query"], "query");
        assert!(
            query.contains(&format!(r#"queue="{queue}""#)),
            "{query:?} is not on queue {queue}"
        );
        let state = ["ready", "running"]
            .into_iter()
            .find(|s| query.contains(&format!(r#"state="{s}""#)))
            .unwrap_or_else(|| panic!("{query:?}: no state"));
        keda_thresholds.push((state.to_owned(), number(&meta["threshold"], "threshold")));
    }
    hpa_thresholds.sort_by(|a, b| a.0.cmp(&b.0));
    keda_thresholds.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        hpa_thresholds, keda_thresholds,
        "HPA and ScaledObject thresholds"
    );
    let running = keda_thresholds
        .iter()
        .find(|(s, _)| s == "running")
        .map(|(_, t)| *t);
    assert_eq!(running, Some(concurrency), "the running jobs' threshold");
}

/// (d) The PodDisruptionBudget covers the worker pods (its selector matches their labels)
/// and lets a drain evict one at a time, also at zero replicas (maxUnavailable: a
/// minAvailable of 1 could not be met once KEDA scales to zero, and would block drains).
#[test]
fn pod_disruption_budget_covers_the_workers_and_never_blocks_a_drain() {
    let pdb = object("pdb.yaml", "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"].as_str(), Some("policy/v1"));
    let labels = &workers()["spec"]["template"]["metadata"]["labels"];
    let selector = pdb["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("selector.matchLabels");
    assert!(!selector.is_empty(), "an empty selector selects every pod");
    for (key, value) in selector {
        assert_eq!(
            labels.get(key.as_str().expect("label")),
            Some(value),
            "the worker pods lack the PDB's label {key:?}"
        );
    }
    assert!(
        pdb["spec"].get("minAvailable").is_none(),
        "minAvailable blocks drains at zero replicas"
    );
    let max = &pdb["spec"]["maxUnavailable"];
    assert!(
        max.as_u64() >= Some(1) || max.as_str().is_some_and(|p| p.ends_with('%') && p != "0%"),
        "maxUnavailable {max:?} lets no worker go"
    );
}
