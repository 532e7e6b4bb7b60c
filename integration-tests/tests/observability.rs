//! Dashboards and rules cannot drift from the metrics: every metric the
//! Grafana dashboards (helm/sluice/dashboards/*.json) and the Prometheus
//! rules (helm/sluice/rules/*.yaml) query is on a running Sluice's
//! /metrics after a push, a flush, queries and a compaction, with the
//! labels they match and group by; recording-rule names they use are
//! recorded by the rules; and promtool accepts the rule files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use promql_parser::parser::{parse, Expr, LabelModifier};
use sluice_integration_tests::durable::post;
use sluice_integration_tests::{
    now_ns, prom, workspace_root, SluiceOptions, SluiceProcess, Stream, Value, SEC,
};

/// Labels Prometheus adds when it scrapes (or the chart's ServiceMonitor
/// relabels), not Sluice.
const SCRAPE_LABELS: &[&str] = &[
    "namespace",
    "job",
    "instance",
    "pod",
    "component",
    "cluster",
    "container",
];

fn dashboard_files() -> Vec<PathBuf> {
    files(&workspace_root().join("helm/sluice/dashboards"), "json")
}

fn rule_files() -> Vec<PathBuf> {
    files(&workspace_root().join("helm/sluice/rules"), "yaml")
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == extension))
        .collect();
    found.sort();
    assert!(
        !found.is_empty(),
        "no .{extension} files in {}",
        dir.display()
    );
    found
}

/// Where an expression came from, for messages.
struct Query {
    origin: String,
    expr: String,
}

/// Every PromQL expression of the dashboards: panel targets (rows
/// included) and query variables (`label_values(metric, label)`).
fn dashboard_queries() -> Vec<Query> {
    let mut queries = Vec::new();
    for path in dashboard_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        assert!(
            json["uid"].is_string() && json["title"].is_string(),
            "{name}"
        );
        let mut stack: Vec<&Value> = json["panels"].as_array().expect("panels").iter().collect();
        while let Some(panel) = stack.pop() {
            if let Some(children) = panel["panels"].as_array() {
                stack.extend(children);
            }
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("target expr");
                queries.push(Query {
                    origin: format!("{name}: panel {:?}", panel["title"]),
                    expr: expr.to_string(),
                });
            }
        }
        for variable in json["templating"]["list"].as_array().expect("templating") {
            let Some(definition) = variable["definition"].as_str() else {
                continue;
            };
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable query {definition:?}"));
            let (selector, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
            queries.push(Query {
                origin: format!("{name}: variable {:?}", variable["name"]),
                expr: format!("count by ({}) ({})", label.trim(), selector.trim()),
            });
        }
    }
    queries
}

/// Every rule expression, and the names the rules record.
fn rule_queries() -> (Vec<Query>, BTreeSet<String>) {
    let mut queries = Vec::new();
    let mut recorded = BTreeSet::new();
    for path in rule_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).expect("read"))
                .unwrap_or_else(|err| panic!("{name}: {err}"));
        for group in doc["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                let expr = rule["expr"].as_str().expect("expr");
                let id = rule["record"]
                    .as_str()
                    .or_else(|| rule["alert"].as_str())
                    .expect("record or alert");
                if let Some(record) = rule["record"].as_str() {
                    recorded.insert(record.to_string());
                }
                queries.push(Query {
                    origin: format!("{name}: {id}"),
                    expr: expr.to_string(),
                });
            }
        }
    }
    (queries, recorded)
}

/// Grafana's variables, replaced by values PromQL accepts.
fn without_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1d")
}

/// What one expression needs from /metrics: metric name → label names it
/// matches on or groups by.
fn needs(expr: &Expr, out: &mut BTreeMap<String, BTreeSet<String>>) {
    match expr {
        Expr::VectorSelector(selector) => selector_needs(selector, out),
        Expr::MatrixSelector(matrix) => selector_needs(&matrix.vs, out),
        Expr::Aggregate(aggregate) => {
            needs(&aggregate.expr, out);
            if let Some(param) = &aggregate.param {
                needs(param, out);
            }
            // Grouping labels must exist on the one metric aggregated.
            let mut inner = BTreeMap::new();
            needs(&aggregate.expr, &mut inner);
            if let (Some(LabelModifier::Include(labels)), 1) = (&aggregate.modifier, inner.len()) {
                let metric = inner.keys().next().unwrap().clone();
                out.entry(metric)
                    .or_default()
                    .extend(labels.labels.iter().cloned());
            }
        }
        Expr::Unary(unary) => needs(&unary.expr, out),
        Expr::Binary(binary) => {
            needs(&binary.lhs, out);
            needs(&binary.rhs, out);
        }
        Expr::Paren(paren) => needs(&paren.expr, out),
        Expr::Subquery(subquery) => needs(&subquery.expr, out),
        Expr::Call(call) => {
            for arg in &call.args.args {
                needs(arg, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_needs(
    selector: &promql_parser::parser::VectorSelector,
    out: &mut BTreeMap<String, BTreeSet<String>>,
) {
    let name = selector
        .name
        .clone()
        .or_else(|| {
            selector
                .matchers
                .matchers
                .iter()
                .find(|matcher| matcher.name == "__name__")
                .map(|matcher| matcher.value.clone())
        })
        .expect("every selector names its metric");
    let labels = out.entry(name).or_default();
    labels.extend(
        selector
            .matchers
            .matchers
            .iter()
            .filter(|matcher| matcher.name != "__name__")
            .map(|matcher| matcher.name.clone()),
    );
}

/// Metric name → label names, as /metrics shows them.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sample in prom::parse(text) {
        metrics
            .entry(sample.name.clone())
            .or_default()
            .extend(sample.labels.keys().cloned());
    }
    metrics
}

/// A process with both caches, retention and a fast compactor, after a
/// push (one line too old: a discard), a flush, metric and log queries
/// through the frontend, and a compaction run.
fn exercised_process() -> SluiceProcess {
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "query_range:\n  cache_results: true\n  results_cache:\n    cache:\n      embedded_cache:\n        enabled: true\n\
         chunk_store_config:\n  chunk_cache_config:\n    embedded_cache:\n      enabled: true\n\
         compactor:\n  retention_enabled: true\n  compaction_interval: 1s\n\
         limits_config:\n  retention_period: 720h\n\
         querier:\n  query_ingesters_within: 0s\n",
    ));
    let now = now_ns();
    p.push_proto_ok(
        &[Stream::new(
            r#"{job="obs", level="info"}"#,
            [(now - 2 * SEC, "first line"), (now - SEC, "second line")],
        )],
        None,
    );
    let too_old = p.push_proto(
        &[Stream::new(
            r#"{job="obs", level="info"}"#,
            [(now - 30 * 24 * 3600 * SEC, "ancient line")],
        )],
        None,
    );
    assert_eq!(too_old.status, 400, "{}", too_old.body);
    assert_eq!(post(&p, "/flush").status, 204);
    let (start, end) = ((now - 60 * SEC).to_string(), (now + 60 * SEC).to_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metric = p.query_range(
            &[
                ("query", r#"sum(count_over_time({job="obs"}[1m]))"#),
                ("start", &start),
                ("end", &end),
                ("step", "10"),
            ],
            None,
        );
        let logs = p.query_range(
            &[
                ("query", r#"{job="obs"}"#),
                ("start", &start),
                ("end", &end),
            ],
            None,
        );
        if metric.status == 200
            && logs.status == 200
            && logs.body.contains("second line")
            && metric.json()["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queries never read the flushed chunk: {} / {}",
            metric.body,
            logs.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    p
}

#[test]
fn every_metric_the_dashboards_and_rules_query_is_exported() {
    let (rules, recorded) = rule_queries();
    let dashboards = dashboard_queries();
    let mut wanted: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for query in dashboards.iter().chain(&rules) {
        let expr = parse(&without_grafana_variables(&query.expr))
            .unwrap_or_else(|err| panic!("{}: {err}\n{}", query.origin, query.expr));
        let mut found = BTreeMap::new();
        needs(&expr, &mut found);
        assert!(!found.is_empty(), "{} queries no metric", query.origin);
        for (metric, labels) in found {
            let entry = wanted.entry(metric).or_default();
            entry.0.extend(labels);
            entry.1.push(query.origin.clone());
        }
    }
    // The design notes' rules, by name.
    for (metric, _) in [
        ("loki_distributor_lines_received_total", ()),
        ("loki_ingester_chunk_size_bytes_sum", ()),
        ("cortex_memcache_request_cache_hits_total", ()),
        ("cortex_memcache_request_cache_misses_total", ()),
        ("loki_cache_hits", ()),
        ("loki_cache_fetched_keys", ()),
    ] {
        assert!(wanted.contains_key(metric), "{metric} is queried");
    }
    // Recording rules' outputs come from Prometheus, not /metrics.
    let (recordings, metrics): (Vec<_>, Vec<_>) =
        wanted.into_iter().partition(|(name, _)| name.contains(':'));
    for (name, (_, origins)) in &recordings {
        assert!(
            recorded.contains(name),
            "{name} (used by {origins:?}) is recorded by no rule"
        );
    }

    let p = exercised_process();
    let deadline = Instant::now() + Duration::from_secs(30);
    let problems = loop {
        let exposed = exposed(&p.metrics_text());
        let mut problems = Vec::new();
        for (name, (labels, origins)) in &metrics {
            match exposed.get(name) {
                None => problems.push(format!("{name} is not on /metrics (used by {origins:?})")),
                Some(has) => {
                    let missing: Vec<&String> = labels
                        .iter()
                        .filter(|label| !SCRAPE_LABELS.contains(&label.as_str()))
                        .filter(|label| !has.contains(*label))
                        .collect();
                    if !missing.is_empty() {
                        problems.push(format!(
                            "{name} has no label {missing:?} (has {has:?}; used by {origins:?})"
                        ));
                    }
                }
            }
        }
        if problems.is_empty() || Instant::now() >= deadline {
            break problems;
        }
        // The compactor's first runs may still be under way.
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn rule_files_pass_promtool() {
    for path in rule_files() {
        let output = match Command::new("promtool")
            .args(["check", "rules"])
            .arg(&path)
            .output()
        {
            Ok(output) => output,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                panic!("promtool is not installed: run `make test-deps`")
            }
            Err(err) => panic!("cannot run promtool: {err}"),
        };
        assert!(
            output.status.success(),
            "promtool check rules {}:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("SUCCESS"),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn promtool_refuses_a_broken_rule() {
    // The check above can fail: promtool rejects a bad expression.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: bad\n    rules:\n      - record: x:y\n        expr: sum(rate(foo[5m])\n",
    )
    .expect("write");
    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&bad)
        .output()
        .expect("promtool runs");
    assert!(!output.status.success());
}

/// GitHub's anchor for a Markdown heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_a_runbook() {
    let operations = std::fs::read_to_string(workspace_root().join("docs/operations.md"))
        .expect("docs/operations.md");
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| slug(heading.trim_start_matches('#')))
        .collect();
    let mut alerts = 0;
    for path in rule_files() {
        let doc: serde_norway::Value =
            serde_norway::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        for group in doc["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                let Some(alert) = rule["alert"].as_str() else {
                    continue;
                };
                alerts += 1;
                let url = rule["annotations"]["runbook_url"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{alert} has no runbook_url"));
                let anchor = url
                    .strip_prefix("docs/operations.md#")
                    .unwrap_or_else(|| panic!("{alert}: runbook_url {url}"));
                assert!(
                    anchors.contains(anchor),
                    "{alert}: docs/operations.md has no section #{anchor}"
                );
            }
        }
    }
    assert!(alerts >= 6, "{alerts} alerts");
}
