//! The ruler through the real binary, with a real Alertmanager and a real
//! Prometheus: an alert on pushed error lines goes pending, fires at
//! Alertmanager after `for` and resolves when the errors stop; a recording
//! rule's samples are queryable in Prometheus with the right values, also
//! those recorded while Prometheus was down and the ruler was killed; the
//! rules API stores, shows and deletes groups; two rulers on a ring split
//! the groups and one takes over when the other is killed. Alert labels
//! and annotations are templates with `if`, `range`, `with` and variables;
//! one that does not parse is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::{self, ClusterConfig, Memcached};
use sluice_integration_tests::durable::{metric, wait_metric};
use sluice_integration_tests::monitoring::{Alertmanager, Prometheus};
use sluice_integration_tests::*;

/// Polls `check` every 200 ms until it returns `Some`, at most `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn write_rules(dir: &Path, tenant: &str, file: &str, text: &str) {
    let tenant_dir = dir.join(tenant);
    std::fs::create_dir_all(&tenant_dir).expect("create rules dir");
    std::fs::write(tenant_dir.join(file), text).expect("write rules");
}

fn ruler_yaml(rules_dir: &Path, extra: &str) -> String {
    format!(
        "ruler:\n  storage:\n    type: local\n    local:\n      directory: {}\n  \
         poll_interval: 1s\n  evaluation_interval: 1s\n{extra}",
        rules_dir.display()
    )
}

fn rfc3339_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|err| panic!("bad time {text:?}: {err}"))
        .timestamp_millis()
}

fn ruler_alerts(p: &SluiceProcess) -> Vec<Value> {
    let resp = p.get("/prometheus/api/v1/alerts", &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body: Value = resp.json();
    assert_eq!(body["status"], "success", "{body}");
    body["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn error_lines(service: &str, count: usize, start_ns: i64) -> Stream {
    Stream::new(
        &format!(r#"{{service="{service}", level="error"}}"#),
        (0..count).map(|i| (start_ns + i as i64 * 1000, format!("request failed n={i}"))),
    )
}

/// Pushes error lines for `service` every 200 ms until stopped.
struct ErrorPusher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ErrorPusher {
    fn start(url: String, service: &'static str, per_push: usize) -> ErrorPusher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let client = http_client();
            while !flag.load(Ordering::Relaxed) {
                let now = now_ns();
                let values: Vec<Value> = (0..per_push)
                    .map(|i| json!([(now + i as i64).to_string(), format!("boom {i}")]))
                    .collect();
                let body = json!({"streams": [{
                    "stream": {"service": service, "level": "error"},
                    "values": values,
                }]});
                let _ = client
                    .post(format!("{url}/loki/api/v1/push"))
                    .json(&body)
                    .send();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        ErrorPusher {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("pusher thread");
        }
    }
}

impl Drop for ErrorPusher {
    fn drop(&mut self) {
        self.stop();
    }
}

const HIGH_ERROR_RATE: &str = r#"groups:
  - name: loki_alerts
    interval: 1s
    rules:
      - alert: HighErrorRate
        expr: |
          sum by (service) (rate({level="error"}[5s])) > 10
        for: 2s
        labels:
          severity: page
          tier: "{{ if gt $value 5.0 }}hot{{ else }}warm{{ end }}"
        annotations:
          summary: "High error rate in {{ $labels.service }}"
          value: "{{ printf \"%.0f\" $value }} errors/s"
          labels: "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"
          owner: "{{ with $labels.team }}{{ . }}{{ else }}nobody{{ end }} ({{ $labels.service | toUpper }}) {{ $v := humanize $value }}{{ if $v }}{{ $v }}/s{{ end }}"
"#;

#[test]
fn alert_fires_at_alertmanager_after_for_and_resolves_when_errors_stop() {
    let alertmanager = Alertmanager::start();
    let rules = tempfile::tempdir().expect("tempdir");
    write_rules(rules.path(), "fake", "alerts.yaml", HIGH_ERROR_RATE);
    // resend_delay stays at its 1m default, so a firing alert is valid at
    // Alertmanager for 4 minutes: it disappears sooner only if the ruler
    // sends the resolution.
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(&ruler_yaml(
        rules.path(),
        &format!(
            "  alertmanager_url: {}\n  external_url: http://sluice.example:3100\n",
            alertmanager.url()
        ),
    )));
    let mut pusher = ErrorPusher::start(p.http_url(), "ryot", 10);

    let sent = wait_for(
        Duration::from_secs(60),
        "HighErrorRate at Alertmanager",
        || {
            alertmanager
                .alerts()
                .into_iter()
                .find(|alert| alert["labels"]["alertname"] == "HighErrorRate")
        },
    );
    assert_eq!(sent["labels"]["service"], "ryot", "{sent}");
    assert_eq!(sent["labels"]["severity"], "page", "{sent}");
    assert_eq!(
        sent["annotations"]["summary"], "High error rate in ryot",
        "{sent}"
    );
    // Control flow, variables and Prometheus' functions in templates.
    assert_eq!(sent["labels"]["tier"], "hot", "{sent}");
    assert_eq!(sent["annotations"]["labels"], "service=ryot;", "{sent}");
    let owner = sent["annotations"]["owner"].as_str().expect("owner");
    assert!(
        owner.starts_with("nobody (RYOT) ") && owner.ends_with("/s"),
        "{sent}"
    );
    let value_text = sent["annotations"]["value"]
        .as_str()
        .expect("value annotation");
    assert!(value_text.ends_with(" errors/s"), "{sent}");
    let rate: f64 = value_text
        .trim_end_matches(" errors/s")
        .parse()
        .expect("rate");
    assert!(rate > 10.0, "{sent}");
    assert_eq!(sent["status"]["state"], "active", "{sent}");
    let generator = sent["generatorURL"].as_str().expect("generatorURL");
    assert!(
        generator.starts_with("http://sluice.example:3100/graph?g0.expr=sum+by+%28service%29"),
        "{generator}"
    );
    // Fired only after being pending for `for` (2s).
    let firing = ruler_alerts(&p)
        .into_iter()
        .find(|alert| alert["labels"]["alertname"] == "HighErrorRate")
        .expect("the ruler lists the alert");
    assert_eq!(firing["state"], "firing", "{firing}");
    let active_at = rfc3339_ms(firing["activeAt"].as_str().expect("activeAt"));
    let starts_at = rfc3339_ms(sent["startsAt"].as_str().expect("startsAt"));
    assert!(
        starts_at - active_at >= 2000,
        "startsAt {starts_at} must be at least `for` after activeAt {active_at}"
    );
    let ends_at = rfc3339_ms(sent["endsAt"].as_str().expect("endsAt"));
    assert!(ends_at > starts_at + 60_000, "{sent}");

    pusher.stop();
    wait_for(
        Duration::from_secs(60),
        "the alert resolved at Alertmanager",
        || {
            (!alertmanager
                .alerts()
                .iter()
                .any(|alert| alert["labels"]["alertname"] == "HighErrorRate"))
            .then_some(())
        },
    );
    assert!(ruler_alerts(&p).is_empty());
    assert!(metric(&p, "loki_prometheus_notifications_sent_total") >= 2.0);
}

const RECORDING: &str = r#"groups:
  - name: loki_recordings
    interval: 1s
    rules:
      - record: loki:error_count:5m
        expr: sum by (service) (count_over_time({level="error"}[5m]))
        labels:
          team: ops
"#;

fn recorded_values(
    prometheus: &Prometheus,
    time: Option<f64>,
) -> BTreeMap<String, (String, Value)> {
    prometheus
        .query("loki:error_count:5m", time)
        .into_iter()
        .map(|sample| {
            let service = sample["metric"]["service"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (
                service,
                (
                    sample["value"][1].as_str().unwrap_or_default().to_string(),
                    sample["metric"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn recording_rule_samples_are_queryable_in_prometheus() {
    let prometheus = Prometheus::start();
    let rules = tempfile::tempdir().expect("tempdir");
    write_rules(rules.path(), "fake", "recordings.yaml", RECORDING);
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(&ruler_yaml(
        rules.path(),
        &format!(
            "  remote_write:\n    enabled: true\n    clients:\n      prometheus:\n        url: {}\n",
            prometheus.write_url()
        ),
    )));
    let base = now_ns() - 30 * SEC;
    p.push_proto_ok(
        &[
            error_lines("ryot", 7, base),
            error_lines("sigmavault", 3, base),
            Stream::new(
                r#"{service="ryot", level="info"}"#,
                (0..5).map(|i| (base + i, "fine")),
            ),
        ],
        None,
    );
    let values = wait_for(
        Duration::from_secs(60),
        "both series in Prometheus with their counts",
        || {
            let values = recorded_values(&prometheus, None);
            let counts: BTreeMap<&str, &str> = values
                .iter()
                .map(|(service, (value, _))| (service.as_str(), value.as_str()))
                .collect();
            (counts == BTreeMap::from([("ryot", "7"), ("sigmavault", "3")])).then_some(values)
        },
    );
    assert_eq!(
        values["ryot"].1,
        json!({"__name__": "loki:error_count:5m", "service": "ryot", "team": "ops"})
    );
    assert!(metric(&p, "loki_ruler_remote_write_samples_sent_total") >= 2.0);
}

#[test]
fn samples_recorded_while_prometheus_is_down_survive_a_ruler_crash() {
    let prometheus_port = free_port();
    let rules = tempfile::tempdir().expect("tempdir");
    write_rules(rules.path(), "fake", "recordings.yaml", RECORDING);
    let mut p = SluiceProcess::start(SluiceOptions::new().extra_yaml(&ruler_yaml(
        rules.path(),
        &format!(
            "  remote_write:\n    enabled: true\n    clients:\n      prometheus:\n        \
             url: http://127.0.0.1:{prometheus_port}/api/v1/write\n        queue_config:\n          \
             min_backoff: 50ms\n          max_backoff: 200ms\n"
        ),
    )));
    p.push_proto_ok(&[error_lines("ryot", 4, now_ns() - 10 * SEC)], None);
    wait_metric(
        &p,
        "loki_ruler_wal_samples_appended_total",
        Duration::from_secs(30),
        |appended| appended >= 3.0,
        "samples recorded into the WAL",
    );
    wait_metric(
        &p,
        "loki_ruler_remote_write_retries_total",
        Duration::from_secs(30),
        |retries| retries >= 1.0,
        "sends retried while Prometheus is down",
    );
    assert_eq!(
        metric(&p, "loki_ruler_remote_write_samples_sent_total"),
        0.0
    );
    let killed_at = now_ns() as f64 / SEC as f64;
    p.kill();

    let prometheus = Prometheus::start_on(prometheus_port);
    p.restart();
    // Every sample from before the crash comes from the replayed WAL: the
    // restarted ruler only records later ones.
    let before = wait_for(
        Duration::from_secs(60),
        "pre-crash samples in Prometheus",
        || {
            let values = recorded_values(&prometheus, Some(killed_at));
            values.get("ryot").cloned()
        },
    );
    assert_eq!(before.0, "4");
    let stamped = prometheus.query("timestamp(loki:error_count:5m)", Some(killed_at));
    let stamp: f64 = stamped[0]["value"][1]
        .as_str()
        .expect("timestamp value")
        .parse()
        .expect("number");
    assert!(
        stamp <= killed_at,
        "sample at {stamp} after the crash at {killed_at}"
    );
    wait_for(Duration::from_secs(60), "post-restart samples", || {
        recorded_values(&prometheus, None)
            .get("ryot")
            .filter(|(value, _)| value == "4")
            .cloned()
    });
}

#[test]
fn rules_api_stores_lists_and_deletes_groups() {
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "ruler:\n  storage:\n    type: filesystem\n  poll_interval: 1s\n  evaluation_interval: 1s\n",
    ));
    let url = |path: &str| format!("{}{path}", p.http_url());
    let resp = p.get("/loki/api/v1/rules", &[], None);
    assert_eq!(resp.status, 404, "{}", resp.body);
    assert_eq!(resp.body.trim(), "no rule groups found");

    let alert_group = "name: errors\ninterval: 1s\nrules:\n  - alert: HighErrorRate\n    \
                       expr: sum(rate({level=\"error\"}[5m])) > 10\n    for: 5m\n    \
                       annotations:\n      summary: too many errors\n";
    let resp = p.send(
        p.client()
            .post(url("/loki/api/v1/rules/team%2Fapp"))
            .body(alert_group),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let body: Value = resp.json();
    assert_eq!(body["status"], "success");
    let record_group = "name: recordings\nrules:\n  - record: loki:error_rate:5m\n    \
                        expr: sum(rate({level=\"error\"}[5m]))\n";
    let resp = p.send(
        p.client()
            .post(url("/loki/api/v1/rules/other"))
            .body(record_group),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);

    let bad = "name: broken\nrules:\n  - alert: Good\n    expr: vector(1)\n  - alert: Bad\n    \
               expr: sum(rate({level=\"error\"}[5m]) > 10\n";
    let resp = p.send(p.client().post(url("/loki/api/v1/rules/other")).body(bad));
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body
            .contains(r#"other: group "broken", rule 2 (alert "Bad"): could not parse expression"#),
        "{}",
        resp.body
    );
    let resp = p.send(
        p.client()
            .post(url("/loki/api/v1/rules/other"))
            .body("name: [x"),
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    let bad_template = "name: broken\nrules:\n  - alert: Bad\n    expr: vector(1)\n    \
                        annotations:\n      summary: '{{ if $value }}high'\n";
    let resp = p.send(
        p.client()
            .post(url("/loki/api/v1/rules/other"))
            .body(bad_template),
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.contains(
            r#"other: group "broken", rule 1 (alert "Bad"): annotation "summary": invalid template: template: __alert:1: unexpected EOF"#
        ),
        "{}",
        resp.body
    );

    let resp = p.get("/loki/api/v1/rules", &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("team/app:"), "{}", resp.body);
    assert!(resp.body.contains("other:"), "{}", resp.body);
    assert!(!resp.body.contains("broken"), "{}", resp.body);
    let resp = p.get("/loki/api/v1/rules/team%2Fapp/errors", &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("alert: HighErrorRate"), "{}", resp.body);
    assert!(resp.body.contains("for: 5m"), "{}", resp.body);
    assert_eq!(
        p.get("/loki/api/v1/rules/other/nope", &[], None).status,
        404
    );

    // The stored groups run: Grafana's view lists them with their state.
    let groups = wait_for(Duration::from_secs(30), "both groups evaluated", || {
        let body: Value = p.get("/prometheus/api/v1/rules", &[], None).json();
        let groups = body["data"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (groups.len() == 2
            && groups
                .iter()
                .all(|group| group["lastEvaluation"] != "0001-01-01T00:00:00Z"))
        .then_some(groups)
    });
    assert_eq!(groups[0]["file"], "other");
    assert_eq!(groups[0]["rules"][0]["type"], "recording");
    assert_eq!(groups[0]["rules"][0]["name"], "loki:error_rate:5m");
    assert_eq!(groups[1]["file"], "team/app");
    assert_eq!(groups[1]["interval"], 1.0);
    let alerting = &groups[1]["rules"][0];
    assert_eq!(alerting["type"], "alerting");
    assert_eq!(alerting["state"], "inactive");
    assert_eq!(alerting["duration"], 300.0);
    assert_eq!(alerting["health"], "ok", "{alerting}");
    assert_eq!(alerting["annotations"]["summary"], "too many errors");
    let body: Value = p
        .get("/prometheus/api/v1/rules", &[("type", "record")], None)
        .json();
    assert_eq!(
        body["data"]["groups"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );

    let resp = p.send(
        p.client()
            .delete(url("/loki/api/v1/rules/team%2Fapp/errors")),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert_eq!(
        p.get("/loki/api/v1/rules/team%2Fapp/errors", &[], None)
            .status,
        404
    );
    let resp = p.send(
        p.client()
            .delete(url("/loki/api/v1/rules/team%2Fapp/errors")),
    );
    assert_eq!(resp.status, 404, "{}", resp.body);
    let resp = p.send(p.client().delete(url("/loki/api/v1/rules/other")));
    assert_eq!(resp.status, 202, "{}", resp.body);
    assert_eq!(p.get("/loki/api/v1/rules", &[], None).status, 404);
    wait_for(Duration::from_secs(30), "groups stopped", || {
        let body: Value = p.get("/prometheus/api/v1/rules", &[], None).json();
        body["data"]["groups"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
}

/// The groups a ruler evaluates itself.
fn owned_groups(p: &SluiceProcess) -> BTreeSet<String> {
    let resp = p.get("/ruler/internal/groups", &[], None);
    assert_eq!(resp.status, 200, "{}", resp.body);
    let groups: Vec<Value> = resp.json().as_array().cloned().unwrap_or_default();
    groups
        .iter()
        .map(|group| {
            group["key"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn two_rulers_split_the_groups_and_one_takes_over_when_the_other_dies() {
    let memcached = Memcached::start();
    let root = tempfile::tempdir().expect("tempdir");
    let rules = root.path().join("rules");
    let mut text = String::from("groups:\n");
    for index in 0..16 {
        text.push_str(&format!(
            "  - name: group-{index:02}\n    interval: 1s\n    rules:\n      - record: job:lines:{index}\n        \
             expr: sum(count_over_time({{job=\"app\"}}[1m]))\n"
        ));
    }
    write_rules(&rules, "fake", "groups.yaml", &text);
    let config = ClusterConfig {
        memcached: memcached.addr(),
        store_dir: cluster::store_dir(root.path()),
        extra_yaml: ruler_yaml(
            &rules,
            &format!(
                "  enable_sharding: true\n  ring:\n    kvstore:\n      store: memcached\n      \
                 memcached:\n        addresses: [{}]\n    heartbeat_period: 500ms\n    \
                 heartbeat_timeout: 3s\n",
                memcached.addr()
            ),
        ),
    };
    // The rulers' queries read this ingester (there is nothing to find:
    // the groups only need to evaluate).
    let data = cluster::start_node(&config, "ingester", "ingester-0");
    let ruler_a = cluster::start_node(&config, "ruler", "ruler-a");
    let mut ruler_b = cluster::start_node(&config, "ruler", "ruler-b");
    let all: BTreeSet<String> = (0..16).map(|index| format!("group-{index:02}")).collect();

    let (owned_a, owned_b) = wait_for(
        Duration::from_secs(30),
        "the groups split between two rulers",
        || {
            let owned_a = owned_groups(&ruler_a);
            let owned_b = owned_groups(&ruler_b);
            let split = owned_a.is_disjoint(&owned_b)
                && owned_a.union(&owned_b).cloned().collect::<BTreeSet<_>>() == all
                && !owned_a.is_empty()
                && !owned_b.is_empty();
            split.then_some((owned_a, owned_b))
        },
    );
    assert_eq!(owned_a.len() + owned_b.len(), 16);
    // Either ruler answers for the whole ring, with evaluated groups.
    let groups = wait_for(
        Duration::from_secs(30),
        "all groups evaluated, seen from ruler-a",
        || {
            let body: Value = ruler_a.get("/prometheus/api/v1/rules", &[], None).json();
            let groups = body["data"]["groups"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            (groups.len() == 16
                && groups
                    .iter()
                    .all(|group| group["rules"][0]["health"] == "ok"))
            .then_some(groups)
        },
    );
    assert_eq!(groups[0]["name"], "group-00");

    ruler_b.kill();
    wait_for(
        Duration::from_secs(30),
        "ruler-a took over every group",
        || (owned_groups(&ruler_a) == all).then_some(()),
    );
    drop(data);
}

/// A separate query frontend forwards the rules API to a ruler
/// (`frontend.ruler_proxy_url`), so Grafana's alerting UI works on the
/// frontend's URL.
#[test]
fn a_query_frontend_forwards_the_rules_api_to_a_ruler() {
    let ruler = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "ruler:\n  storage:\n    type: filesystem\n  poll_interval: 1s\n  evaluation_interval: 1s\n",
    ));
    let frontend = SluiceProcess::start(SluiceOptions::new().target("query-frontend").extra_yaml(
        &format!("frontend:\n  ruler_proxy_url: {}\n", ruler.http_url()),
    ));
    let group = "name: errors\ninterval: 1s\nrules:\n  - alert: HighErrorRate\n    \
                 expr: sum(rate({level=\"error\"}[5m])) > 10\n    for: 5m\n";
    let resp = frontend.send(
        frontend
            .client()
            .post(format!("{}/loki/api/v1/rules/team", frontend.http_url()))
            .body(group),
    );
    assert_eq!(resp.status, 202, "{}", resp.body);
    let listed = frontend.get("/loki/api/v1/rules/team/errors", &[], None);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("HighErrorRate"), "{}", listed.body);
    // The Prometheus-style rules list Grafana reads, once the ruler loaded
    // the group: the same through the frontend as from the ruler.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let direct = ruler.get("/prometheus/api/v1/rules", &[], None).ok_json();
        if direct["data"]["groups"]
            .as_array()
            .is_some_and(|g| !g.is_empty())
        {
            let proxied = frontend.get("/prometheus/api/v1/rules", &[], None);
            assert_eq!(proxied.status, 200, "{}", proxied.body);
            let proxied: Value = proxied.json();
            assert_eq!(
                proxied["data"]["groups"][0]["rules"][0]["name"],
                "HighErrorRate"
            );
            // Evaluation times move between the two reads; the rest matches.
            let shape = |groups: &Value| -> Vec<(Value, Value, Value, Value)> {
                groups
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|group| {
                        group["rules"].as_array().into_iter().flatten().map(|rule| {
                            (
                                group["name"].clone(),
                                group["file"].clone(),
                                rule["name"].clone(),
                                rule["query"].clone(),
                            )
                        })
                    })
                    .collect()
            };
            assert_eq!(
                shape(&proxied["data"]["groups"]),
                shape(&direct["data"]["groups"])
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ruler never loaded the group"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let missing = frontend.get("/loki/api/v1/rules/team/nope", &[], None);
    assert_eq!(missing.status, 404, "{}", missing.body);
}
