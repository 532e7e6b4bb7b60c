//! Operational endpoints: /ready, /metrics, buildinfo, request histogram.

use std::collections::BTreeSet;

use sluice_integration_tests::*;

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

#[test]
fn ready_answers_200_ready() {
    let s = SluiceProcess::start_default();
    let r = s.ready();
    assert_eq!((r.status, r.text()), (200, "ready"));
}

#[test]
fn buildinfo_has_the_loki_keys() {
    let s = SluiceProcess::start_default();
    let v = s.get("/loki/api/v1/status/buildinfo", &[], None).ok_json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "version",
            "revision",
            "branch",
            "buildUser",
            "buildDate",
            "goVersion"
        ]),
        "{v}"
    );
    for (k, val) in obj {
        assert!(val.is_string(), "{k} should be a string: {v}");
    }
    assert!(
        !v["version"].as_str().unwrap_or("").is_empty(),
        "version non-empty: {v}"
    );
}

#[test]
fn metrics_count_pushed_lines_bytes_and_streams() {
    let s = SluiceProcess::start_default();
    let b = base();
    let proto_lines = ["alpha", "beta beta", "gamma gamma gamma", "d", "epsilon!"];
    s.push_proto_ok(
        &[
            Stream::new(
                r#"{job="m1"}"#,
                proto_lines[..3]
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (b + i as i64, *l)),
            ),
            Stream::new(
                r#"{job="m2"}"#,
                proto_lines[3..]
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (b + i as i64, *l)),
            ),
        ],
        None,
    );
    let json_lines = ["json line one", "json line two!"];
    let r = s.push_json(
        &json_push(vec![json_stream(
            &[("job", "m3")],
            &[(b, json_lines[0]), (b + 1, json_lines[1])],
        )]),
        false,
        None,
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    let lines = (proto_lines.len() + json_lines.len()) as f64;
    let bytes: usize = proto_lines
        .iter()
        .chain(json_lines.iter())
        .map(|l| l.len())
        .sum();

    let r = s.get("/metrics", &[], None);
    assert_eq!(r.status, 200);
    let mut f = Failures::new();
    // Loki's promhttp answers a request without Accept header in the classic
    // Prometheus text format 0.0.4.
    f.check(
        "/metrics content-type (no Accept header)",
        r.content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("text/plain"),
        format!(
            "expected text/plain; version=0.0.4, got {:?}",
            r.content_type
        ),
    );
    let text = r.body;
    f.eq(
        "loki_distributor_lines_received_total{tenant=\"fake\"}",
        prom::find(
            &text,
            "loki_distributor_lines_received_total",
            &[("tenant", "fake")],
        ),
        Some(lines),
    );
    let byte_samples = prom::find_all(
        &text,
        "loki_distributor_bytes_received_total",
        &[("tenant", "fake")],
    );
    f.eq(
        "loki_distributor_bytes_received_total{tenant=\"fake\"} (summed over retention_hours)",
        byte_samples.iter().map(|s| s.value).sum::<f64>(),
        bytes as f64,
    );
    f.check(
        "bytes_received_total has a retention_hours label",
        !byte_samples.is_empty()
            && byte_samples
                .iter()
                .all(|s| s.labels.contains_key("retention_hours")),
        format!("{byte_samples:?}"),
    );
    f.eq(
        "loki_ingester_memory_streams{tenant=\"fake\"}",
        prom::find(&text, "loki_ingester_memory_streams", &[("tenant", "fake")]),
        Some(3.0),
    );
    f.finish();
}

#[test]
fn request_duration_histogram_has_loki_labels() {
    let s = SluiceProcess::start_default();
    let b = base();
    s.push_proto_ok(&[Stream::new(r#"{job="h"}"#, [(b, "one")])], None);
    s.push_proto_ok(&[Stream::new(r#"{job="h"}"#, [(b + 1, "two")])], None);
    let r = s.push_proto(&[Stream::new("{}", [(b, "bad")])], None);
    assert_eq!(r.status, 400);
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    for _ in 0..3 {
        let r = s.query_range(
            &[("query", r#"{job="h"}"#), ("start", &st), ("end", &en)],
            None,
        );
        assert_eq!(r.status, 200);
    }
    let text = s.metrics_text();
    let mut f = Failures::new();
    f.eq(
        "# TYPE loki_request_duration_seconds",
        prom::metric_type(&text, "loki_request_duration_seconds"),
        Some("histogram".to_string()),
    );
    let push_ok = [
        ("method", "POST"),
        ("route", "loki_api_v1_push"),
        ("status_code", "204"),
        ("ws", "false"),
    ];
    let push_bad = [
        ("method", "POST"),
        ("route", "loki_api_v1_push"),
        ("status_code", "400"),
        ("ws", "false"),
    ];
    let qr_ok = [
        ("method", "GET"),
        ("route", "loki_api_v1_query_range"),
        ("status_code", "200"),
        ("ws", "false"),
    ];
    for (what, lbls, n) in [
        ("push 204", &push_ok, 2.0),
        ("push 400", &push_bad, 1.0),
        ("query_range 200", &qr_ok, 3.0),
    ] {
        f.eq(
            &format!("loki_request_duration_seconds_count {what}"),
            prom::find(&text, "loki_request_duration_seconds_count", lbls),
            Some(n),
        );
        let mut inf: Vec<(&str, &str)> = lbls.to_vec();
        inf.push(("le", "+Inf"));
        f.eq(
            &format!("loki_request_duration_seconds_bucket{{le=\"+Inf\"}} {what}"),
            prom::find(&text, "loki_request_duration_seconds_bucket", &inf),
            Some(n),
        );
        let sum = prom::find(&text, "loki_request_duration_seconds_sum", lbls);
        f.check(
            &format!("_sum {what}"),
            sum.is_some_and(|v| v >= 0.0),
            format!("{sum:?}"),
        );
        let buckets = prom::find_all(&text, "loki_request_duration_seconds_bucket", lbls);
        f.check(
            &format!("several buckets {what}"),
            buckets.len() > 1,
            format!("{} buckets", buckets.len()),
        );
    }
    // Label names are exactly method, route, status_code, ws (+ le on buckets).
    for sample in prom::parse(&text) {
        if sample.name == "loki_request_duration_seconds_count" {
            let keys: BTreeSet<&str> = sample.labels.keys().map(String::as_str).collect();
            f.eq(
                "label names",
                keys,
                BTreeSet::from(["method", "route", "status_code", "ws"]),
            );
        }
    }
    f.finish();
}
