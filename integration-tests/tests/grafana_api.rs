//! The calls Grafana's Loki data source makes, and every endpoint listed in
//! `docs/api.md`, answered by the real binary in Loki's JSON shapes
//! (`shared/reference/loki-compat.md` §2–§3); index stats and volumes
//! counted once when an ingester and the store both hold a chunk.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sluice_integration_tests::live_tail::TailClient;
use sluice_integration_tests::{
    json, json_push, json_stream, now_ns, workspace_root, SluiceOptions, SluiceProcess, Stream,
    Value, SEC,
};

/// The keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// Endpoints (`METHOD /path`) in the first column of docs/api.md's table.
fn documented_endpoints() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/api.md")).expect("docs/api.md");
    let table = doc
        .split("## Endpoints and what Grafana uses them for")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the endpoint table section");
    table
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect()
}

/// Checks a Prometheus-style vector/matrix body and returns its results.
fn metric_result(value: &Value, result_type: &str) -> Vec<Value> {
    assert_eq!(keys(value), set(&["status", "data"]), "{value}");
    assert_eq!(value["status"], "success");
    assert_eq!(value["data"]["resultType"], result_type, "{value}");
    let result = value["data"]["result"].as_array().expect("result array");
    for item in result {
        let sample_key = if result_type == "vector" {
            "value"
        } else {
            "values"
        };
        assert_eq!(keys(item), set(&["metric", sample_key]), "{item}");
        assert!(item["metric"].is_object());
        let samples = if result_type == "vector" {
            vec![item["value"].clone()]
        } else {
            item["values"].as_array().expect("values").clone()
        };
        for sample in samples {
            assert!(sample[0].is_number(), "time is a number: {sample}");
            assert!(sample[1].is_string(), "value is a string: {sample}");
        }
    }
    result.clone()
}

fn push_sample_data(p: &SluiceProcess, now: i64) {
    let lines: Vec<(i64, String)> = (0..20)
        .map(|i| (now - 60 * SEC + i * SEC, format!("level=info request {i}")))
        .collect();
    p.push_proto_ok(
        &[
            Stream::new("{job=\"api\", pod=\"a\"}", lines.clone()),
            Stream::new("{job=\"api\", pod=\"b\"}", lines[..10].to_vec()),
            Stream::new("{job=\"db\"}", lines[..5].to_vec()),
        ],
        None,
    );
}

#[test]
fn every_documented_endpoint_answers_like_loki() {
    let p = SluiceProcess::start_default();
    let now = now_ns();
    push_sample_data(&p, now);
    let (start, end) = ((now - 3600 * SEC).to_string(), (now + SEC).to_string());
    let range = [("start", start.as_str()), ("end", end.as_str())];
    let with_range = |extra: &[(&'static str, &'static str)]| {
        let mut params: Vec<(&str, &str)> = range.to_vec();
        params.extend_from_slice(extra);
        params
    };
    let mut checked = BTreeSet::new();
    let mut check = |endpoint: &str| {
        checked.insert(endpoint.to_string());
    };

    // Push.
    let resp = p.push_json(
        &json_push(vec![json_stream(
            &[("job", "json")],
            &[(now, "pushed as json")],
        )]),
        false,
        None,
    );
    assert_eq!((resp.status, resp.body.as_str()), (204, ""));
    check("POST /loki/api/v1/push");
    let legacy = json!({"streams":[{"labels":"{job=\"legacy\"}","entries":[
        {"ts": sluice_integration_tests::rfc3339_nano(now), "line": "legacy line"}]}]});
    let resp = p.send(
        p.client()
            .post(format!("{}/api/prom/push", p.http_url()))
            .header("Content-Type", "application/json")
            .body(legacy.to_string()),
    );
    assert_eq!(resp.status, 204, "{}", resp.body);
    check("POST /api/prom/push");

    // Data queries.
    let body = p
        .query_range(
            &with_range(&[("query", "{job=\"api\"}"), ("limit", "5")]),
            None,
        )
        .ok_json();
    assert_eq!(keys(&body["data"]), set(&["resultType", "result", "stats"]));
    assert_eq!(body["data"]["resultType"], "streams");
    let entries: usize = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stream| stream["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(entries, 5);
    check("GET /loki/api/v1/query_range");
    // Grafana's "Save & test".
    let body = p
        .query(
            &[("query", "vector(1)+vector(1)"), ("time", "4000000000")],
            None,
        )
        .ok_json();
    let result = metric_result(&body, "vector");
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["metric"], json!({}));
    assert_eq!(result[0]["value"], json!([4000000000u64, "2"]));
    check("GET /loki/api/v1/query");

    // Label browser and query builder.
    for path in ["/loki/api/v1/labels", "/loki/api/v1/label"] {
        let body = p.get(path, &with_range(&[]), None).ok_json();
        assert_eq!(keys(&body), set(&["status", "data"]));
        let names: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["job", "pod"], "{path}");
        check(&format!("GET {path}"));
    }
    let body = p
        .label_values("pod", &with_range(&[("query", "{job=\"api\"}")]), None)
        .ok_json();
    assert_eq!(body, json!({"status":"success","data":["a","b"]}));
    let body = p.label_values("nothing", &with_range(&[]), None).ok_json();
    assert_eq!(body, json!({"status":"success"}), "no data key when empty");
    check("GET /loki/api/v1/label/<name>/values");
    let body = p
        .series(&with_range(&[("match[]", "{job=\"db\"}")]), None)
        .ok_json();
    assert_eq!(body, json!({"status":"success","data":[{"job":"db"}]}));
    check("GET /loki/api/v1/series");

    // Index stats and volumes.
    let body = p
        .get(
            "/loki/api/v1/index/stats",
            &with_range(&[("query", "{job=\"api\"}")]),
            None,
        )
        .ok_json();
    assert_eq!(keys(&body), set(&["streams", "chunks", "bytes", "entries"]));
    assert_eq!(body["streams"], 2);
    assert_eq!(body["chunks"], 2);
    assert_eq!(body["entries"], 30);
    assert!(body["bytes"].as_u64().unwrap() > 30 * 16, "{body}");
    check("GET /loki/api/v1/index/stats");
    let body = p
        .get(
            "/loki/api/v1/index/volume",
            &with_range(&[("query", "{job=~\"api|db\"}")]),
            None,
        )
        .ok_json();
    let result = metric_result(&body, "vector");
    let metrics: Vec<&Value> = result.iter().map(|item| &item["metric"]).collect();
    assert_eq!(metrics, vec![&json!({"job":"api"}), &json!({"job":"db"})]);
    check("GET /loki/api/v1/index/volume");
    let body = p
        .get(
            "/loki/api/v1/index/volume_range",
            &with_range(&[("query", "{job=\"api\"}"), ("step", "60")]),
            None,
        )
        .ok_json();
    let result = metric_result(&body, "matrix");
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["metric"], json!({"job":"api"}));
    let per_step: Vec<u64> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample[1].as_str().unwrap().parse().unwrap())
        .collect();
    let api_bytes = p
        .get(
            "/loki/api/v1/index/stats",
            &with_range(&[("query", "{job=\"api\"}")]),
            None,
        )
        .ok_json()["bytes"]
        .as_u64()
        .unwrap();
    let summed: u64 = per_step.iter().sum();
    assert!(
        summed <= api_bytes && summed + 2 * per_step.len() as u64 >= api_bytes,
        "the steps add up to the whole: {per_step:?} vs {api_bytes}"
    );
    check("GET /loki/api/v1/index/volume_range");

    // Live tail.
    let mut client =
        TailClient::connect(&p, &[("query", "{job=\"db\"}"), ("start", start.as_str())]);
    let entries = client.read_until(Duration::from_secs(20), |entries| entries.len() >= 5);
    assert_eq!(entries.len(), 5, "the backfill of {{job=\"db\"}}");
    client.close();
    check("GET /loki/api/v1/tail");

    // Tools.
    let body = p
        .get(
            "/loki/api/v1/format_query",
            &[("query", "{job=\"a\"}|=\"x\"")],
            None,
        )
        .ok_json();
    assert_eq!(
        body,
        json!({"status":"success","data":"{job=\"a\"} |= \"x\""})
    );
    check("GET /loki/api/v1/format_query");
    let body = p.get("/loki/api/v1/status/buildinfo", &[], None).ok_json();
    assert_eq!(
        keys(&body),
        set(&[
            "version",
            "revision",
            "branch",
            "buildUser",
            "buildDate",
            "goVersion"
        ])
    );
    check("GET /loki/api/v1/status/buildinfo");

    // Operations.
    let resp = p.ready();
    assert_eq!((resp.status, resp.body.trim()), (200, "ready"));
    check("GET /ready");
    assert!(p.metrics_text().contains("loki_querier_tail_active"));
    check("GET /metrics");
    let resp = p.get("/config", &[], None);
    assert_eq!(resp.status, 200);
    assert!(resp.body.contains("tail_max_duration: 1h"), "{}", resp.body);
    check("GET /config");
    let resp = p.get("/services", &[], None);
    assert!(resp.body.contains("querier => Running"), "{}", resp.body);
    check("GET /services");
    for path in ["/ring", "/distributor/ring"] {
        let resp = p.send(
            p.client()
                .get(format!("{}{path}", p.http_url()))
                .header("Accept", "application/json"),
        );
        let body = resp.ok_json();
        assert!(
            keys(&body).is_superset(&set(&["shards", "now"])),
            "{path}: {body}"
        );
        check(&format!("GET {path}"));
    }
    // The ruler's APIs (no rules configured here; tests/ruler.rs has them
    // with rules).
    let body = p.get("/prometheus/api/v1/rules", &[], None).ok_json();
    assert_eq!(
        body,
        json!({"status": "success", "data": {"groups": []}, "errorType": "", "error": ""})
    );
    check("GET /prometheus/api/v1/rules");
    let body = p.get("/prometheus/api/v1/alerts", &[], None).ok_json();
    assert_eq!(body["data"], json!({"alerts": []}));
    check("GET /prometheus/api/v1/alerts");
    let resp = p.get("/loki/api/v1/rules", &[], None);
    assert_eq!(
        (resp.status, resp.body.trim()),
        (404, "no rule groups found")
    );
    check("GET|POST|DELETE /loki/api/v1/rules…");
    let resp = p.send(p.client().post(format!("{}/flush", p.http_url())));
    assert_eq!(resp.status, 204);
    check("POST /flush");
    let resp = p.send(p.client().post(format!(
        "{}/ingester/shutdown?flush=false&terminate=false",
        p.http_url()
    )));
    assert_eq!(resp.status, 204, "{}", resp.body);
    check("POST /ingester/shutdown");

    assert_eq!(
        checked,
        documented_endpoints(),
        "the endpoints checked here and the ones docs/api.md lists differ"
    );
}

#[test]
fn index_stats_and_volumes_count_a_chunk_in_memory_and_in_the_store_once() {
    // Flushed chunks stay in memory for an hour: the ingester and the
    // store both report them.
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "ingester:\n  chunk_retain_period: 1h\n\
         storage_config:\n  index_shipper:\n    resync_interval: 1s\n",
    ));
    let now = now_ns();
    push_sample_data(&p, now);
    let (start, end) = ((now - 3600 * SEC).to_string(), (now + SEC).to_string());
    let stats = |query: &str| {
        p.get(
            "/loki/api/v1/index/stats",
            &[("query", query), ("start", &start), ("end", &end)],
            None,
        )
        .ok_json()
    };
    let before = stats("{job=~\".+\"}");
    assert_eq!(before["streams"], 3);
    assert_eq!(before["entries"], 35);
    let resp = p.send(p.client().post(format!("{}/flush", p.http_url())));
    assert_eq!(resp.status, 204);
    // Wait until the store serves the chunks (the querier's index cache
    // re-lists recent tables every few seconds).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = p.metrics_text();
        let stored = sluice_integration_tests::prom::find_all(
            &metrics,
            "loki_ingester_chunks_stored_total",
            &[],
        )
        .iter()
        .map(|sample| sample.value)
        .sum::<f64>();
        if stored >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "chunks never flushed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the querier's index cache list the new index file.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(stats("{job=~\".+\"}"), before, "same numbers once flushed");
    // A range covering part of a stream counts part of its chunk.
    let half_start = (now - 50 * SEC).to_string();
    let partial = p
        .get(
            "/loki/api/v1/index/stats",
            &[
                ("query", "{job=\"api\", pod=\"a\"}"),
                ("start", &half_start),
                ("end", &end),
            ],
            None,
        )
        .ok_json();
    assert_eq!(partial["chunks"], 1);
    let partial_entries = partial["entries"].as_u64().unwrap();
    assert!(
        (9..=11).contains(&partial_entries),
        "about half of 20 entries: {partial}"
    );

    // Volumes by target label and by label name.
    let volume = |extra: &[(&str, &str)]| {
        let mut params = vec![("start", start.as_str()), ("end", end.as_str())];
        params.extend_from_slice(extra);
        p.get("/loki/api/v1/index/volume", &params, None).ok_json()
    };
    let body = volume(&[("query", "{job=\"api\"}"), ("targetLabels", "pod")]);
    let result = metric_result(&body, "vector");
    let metrics: Vec<&Value> = result.iter().map(|item| &item["metric"]).collect();
    assert_eq!(metrics, vec![&json!({"pod":"a"}), &json!({"pod":"b"})]);
    let bytes: Vec<u64> = result
        .iter()
        .map(|item| item["value"][1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(bytes[0] > bytes[1], "sorted largest first: {bytes:?}");
    let total: u64 = volume(&[("query", "{job=\"api\"}")])["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(total, bytes[0] + bytes[1], "one series {{job=\"api\"}}");
    let api_stats = stats("{job=\"api\"}");
    assert_eq!(api_stats["bytes"].as_u64().unwrap(), total);
    let body = volume(&[("query", "{}"), ("aggregateBy", "labels")]);
    let result = metric_result(&body, "vector");
    let metrics: Vec<&Value> = result.iter().map(|item| &item["metric"]).collect();
    assert_eq!(metrics, vec![&json!({"job":""}), &json!({"pod":""})]);
    let body = volume(&[("query", "{}"), ("limit", "1")]);
    assert_eq!(metric_result(&body, "vector").len(), 1);

    // Loki's errors.
    for (params, message) in [
        (
            vec![("query", "{}"), ("aggregateBy", "pods")],
            "invalid aggregation option\n",
        ),
        (
            vec![("query", "{}"), ("limit", "-1")],
            "limit must be a positive value\n",
        ),
    ] {
        let resp = p.get("/loki/api/v1/index/volume", &params, None);
        assert_eq!((resp.status, resp.body.as_str()), (400, message));
    }
    let resp = p.get("/loki/api/v1/index/stats", &[("query", "{}")], None);
    assert_eq!(resp.status, 400);
    assert!(resp.body.starts_with("parse error"), "{}", resp.body);
}
