//! Tenancy: auth disabled ⇒ everything is tenant `fake`; auth enabled ⇒
//! tenants isolated on every read path, 401 without X-Scope-OrgID.

use sluice_integration_tests::*;

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

#[test]
fn auth_disabled_everything_is_tenant_fake() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(false));
    let b = base();
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="x", from="team-a"}"#,
            [(b, "pushed as team-a")],
        )],
        Some("team-a"),
    );
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="x", from="none"}"#,
            [(b + 1, "pushed without header")],
        )],
        None,
    );
    let r = s.push_json(
        &json_push(vec![json_stream(
            &[("job", "x"), ("from", "team-b")],
            &[(b + 2, "pushed as team-b")],
        )]),
        false,
        Some("team-b"),
    );
    assert_eq!(r.status, 204);
    let expected = StreamSet::from([
        (
            labels(&[("job", "x"), ("from", "team-a")]),
            vec![(b, "pushed as team-a".to_string())],
        ),
        (
            labels(&[("job", "x"), ("from", "none")]),
            vec![(b + 1, "pushed without header".to_string())],
        ),
        (
            labels(&[("job", "x"), ("from", "team-b")]),
            vec![(b + 2, "pushed as team-b".to_string())],
        ),
    ]);
    for tenant in [None, Some("team-a"), Some("team-b"), Some("someone-else")] {
        let got = s.read_all(r#"{job="x"}"#, b, b + 60 * SEC, tenant);
        assert_eq!(got, expected, "reading with X-Scope-OrgID {tenant:?}");
        let r = s.label_values("from", &[], tenant);
        assert_eq!(
            r.json(),
            json!({"status": "success", "data": ["none", "team-a", "team-b"]}),
            "label values with {tenant:?}"
        );
    }
    let text = s.metrics_text();
    assert_eq!(
        prom::find(
            &text,
            "loki_distributor_lines_received_total",
            &[("tenant", "fake")]
        ),
        Some(3.0)
    );
    for t in ["team-a", "team-b"] {
        assert!(
            prom::find_all(
                &text,
                "loki_distributor_lines_received_total",
                &[("tenant", t)]
            )
            .is_empty(),
            "no per-header tenant {t} when auth is disabled"
        );
    }
    assert_eq!(
        prom::find(&text, "loki_ingester_memory_streams", &[("tenant", "fake")]),
        Some(3.0)
    );
}

/// What each tenant pushed in the isolation tests: two private streams and
/// one whose labels every tenant uses, each with tenant-specific lines.
fn tenant_data(tenant: &str, b: i64) -> Vec<Stream> {
    let private_label = format!("{}_only", tenant.replace('-', "_"));
    vec![
        Stream::new(
            &format!(r#"{{job="{tenant}-app", owner="{tenant}"}}"#),
            [
                (b, format!("{tenant} private 1")),
                (b + SEC, format!("{tenant} private 2")),
            ],
        ),
        Stream::new(
            &format!(r#"{{job="{tenant}-db", {private_label}="yes"}}"#),
            [(b + 2 * SEC, format!("{tenant} database"))],
        ),
        Stream::new(
            r#"{job="shared"}"#,
            [(b + 3 * SEC, format!("shared stream of {tenant}"))],
        ),
    ]
}

/// The streams `streams` as a query returns them.
fn expected_streams(streams: &[Stream]) -> StreamSet {
    streams
        .iter()
        .map(|stream| {
            (
                sluice_integration_tests::durable::parse_label_text(&stream.labels),
                stream.entries.clone(),
            )
        })
        .collect()
}

/// One read endpoint: how to call it for a tenant over `[b, b + 60s)`, and
/// what it must answer when the tenant pushed `streams`. Each returns a
/// comparable JSON value (sorted where the order is not meaningful).
struct ReadEndpoint {
    name: &'static str,
    read: fn(&SluiceProcess, &str, i64) -> Value,
    expect: fn(&[Stream], i64) -> Value,
}

fn window(b: i64) -> (String, String) {
    (b.to_string(), (b + 60 * SEC).to_string())
}

fn sorted(mut values: Vec<Value>) -> Value {
    values.sort_by_key(|value| value.to_string());
    Value::Array(values)
}

/// `[{"job": <job>}, value(stream)]` for each stream, sorted.
fn per_job(streams: &[Stream], value: impl Fn(&Stream) -> Value) -> Value {
    sorted(
        streams
            .iter()
            .map(|stream| {
                let job = sluice_integration_tests::durable::parse_label_text(&stream.labels)
                    ["job"]
                    .clone();
                json!([{ "job": job }, value(stream)])
            })
            .collect(),
    )
}

fn label_sets(streams: &[Stream]) -> Vec<Labels> {
    streams
        .iter()
        .map(|stream| sluice_integration_tests::durable::parse_label_text(&stream.labels))
        .collect()
}

/// Every tenant-scoped read endpoint (live tail and delete requests have
/// their own isolation tests in tail.rs and compactor.rs).
const READ_ENDPOINTS: &[ReadEndpoint] = &[
    ReadEndpoint {
        name: "query_range (log query)",
        read: |s, tenant, b| {
            json!(s
                .read_all(r#"{job=~".+"}"#, b, b + 60 * SEC, Some(tenant))
                .into_iter()
                .collect::<Vec<_>>())
        },
        expect: |streams, _| json!(expected_streams(streams).into_iter().collect::<Vec<_>>()),
    },
    ReadEndpoint {
        name: "query_range (metric query)",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            let r = s.query_range(
                &[
                    (
                        "query",
                        r#"sum by (job) (count_over_time({job=~".+"}[1h]))"#,
                    ),
                    ("start", &end),
                    ("end", &end),
                    ("step", "60"),
                ],
                Some(tenant),
            );
            let _ = start;
            let v = r.ok_json();
            sorted(
                v["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|series| json!([series["metric"], series["values"][0][1]]))
                    .collect(),
            )
        },
        expect: |streams, _| per_job(streams, |stream| json!(stream.entries.len().to_string())),
    },
    ReadEndpoint {
        name: "query (instant log query)",
        read: |s, tenant, b| {
            let time = (b + 30 * SEC).to_string();
            let r = s.query(
                &[
                    ("query", r#"{job=~".+"}"#),
                    ("time", &time),
                    ("limit", "1000"),
                    ("direction", "forward"),
                ],
                Some(tenant),
            );
            json!(parse_streams(&r.ok_json()).into_iter().collect::<Vec<_>>())
        },
        expect: |streams, _| json!(expected_streams(streams).into_iter().collect::<Vec<_>>()),
    },
    ReadEndpoint {
        name: "query (instant metric query)",
        read: |s, tenant, b| {
            let time = (b + 60 * SEC).to_string();
            let r = s.query(
                &[
                    ("query", r#"sum(count_over_time({job=~".+"}[5m]))"#),
                    ("time", &time),
                ],
                Some(tenant),
            );
            let v = r.ok_json();
            v["data"]["result"]
                .as_array()
                .and_then(|result| result.first())
                .map(|sample| sample["value"][1].clone())
                .unwrap_or(Value::Null)
        },
        expect: |streams, _| {
            let total: usize = streams.iter().map(|stream| stream.entries.len()).sum();
            if total == 0 {
                Value::Null
            } else {
                json!(total.to_string())
            }
        },
    },
    ReadEndpoint {
        name: "labels",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            s.labels(&[("start", &start), ("end", &end)], Some(tenant))
                .ok_json()
        },
        expect: |streams, _| {
            let names: std::collections::BTreeSet<String> = label_sets(streams)
                .into_iter()
                .flat_map(|labels| labels.into_keys())
                .collect();
            if names.is_empty() {
                json!({"status": "success"})
            } else {
                json!({"status": "success", "data": names})
            }
        },
    },
    ReadEndpoint {
        name: "label/job/values",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            s.label_values("job", &[("start", &start), ("end", &end)], Some(tenant))
                .ok_json()
        },
        expect: |streams, _| {
            let values: std::collections::BTreeSet<String> = label_sets(streams)
                .into_iter()
                .map(|labels| labels["job"].clone())
                .collect();
            if values.is_empty() {
                json!({"status": "success"})
            } else {
                json!({"status": "success", "data": values})
            }
        },
    },
    ReadEndpoint {
        name: "series",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            let v = s
                .series(
                    &[
                        ("start", &start),
                        ("end", &end),
                        ("match[]", r#"{job=~".+"}"#),
                    ],
                    Some(tenant),
                )
                .ok_json();
            sorted(v["data"].as_array().cloned().unwrap_or_default())
        },
        expect: |streams, _| sorted(label_sets(streams).into_iter().map(|l| json!(l)).collect()),
    },
    ReadEndpoint {
        name: "index/stats",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            let v = s
                .get(
                    "/loki/api/v1/index/stats",
                    &[
                        ("query", r#"{job=~".+"}"#),
                        ("start", &start),
                        ("end", &end),
                    ],
                    Some(tenant),
                )
                .ok_json();
            json!([v["streams"], v["entries"]])
        },
        expect: |streams, _| {
            let entries: usize = streams.iter().map(|stream| stream.entries.len()).sum();
            json!([streams.len(), entries])
        },
    },
    ReadEndpoint {
        name: "index/volume",
        read: |s, tenant, b| {
            let (start, end) = window(b);
            let v = s
                .get(
                    "/loki/api/v1/index/volume",
                    &[
                        ("query", r#"{job=~".+"}"#),
                        ("start", &start),
                        ("end", &end),
                    ],
                    Some(tenant),
                )
                .ok_json();
            sorted(
                v["data"]["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|sample| {
                        // Bytes are the uncompressed chunk size (lines plus
                        // their timestamps and lengths): at least the lines.
                        let bytes: usize = sample["value"][1]
                            .as_str()
                            .and_then(|text| text.parse().ok())
                            .unwrap_or(0);
                        json!([sample["metric"], bytes > 0])
                    })
                    .collect(),
            )
        },
        expect: |streams, _| per_job(streams, |_| json!(true)),
    },
];

/// Checks every read endpoint for every tenant against what that tenant
/// pushed (and nothing for a tenant that pushed nothing).
fn check_isolation(
    s: &SluiceProcess,
    data: &[(&str, Vec<Stream>)],
    b: i64,
    f: &mut Failures,
    path: &str,
) {
    for endpoint in READ_ENDPOINTS {
        for (tenant, streams) in data {
            f.eq(
                &format!("{path}: {} for {tenant}", endpoint.name),
                (endpoint.read)(s, tenant, b),
                (endpoint.expect)(streams, b),
            );
        }
    }
}

#[test]
fn every_read_endpoint_isolates_tenants_in_memory_and_in_the_store() {
    let mut s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let b = base();
    let data = [
        ("tenant-a", tenant_data("tenant-a", b)),
        ("tenant-b", tenant_data("tenant-b", b)),
        ("tenant-c", Vec::new()),
    ];
    s.push_proto_ok(&data[0].1, Some("tenant-a"));
    let r = s.push_proto(&data[1].1, Some("tenant-b"));
    assert_eq!(r.status, 204, "{:?}", r.body);
    let mut f = Failures::new();
    check_isolation(&s, &data, b, &mut f, "ingester");

    let text = s.metrics_text();
    for tenant in ["tenant-a", "tenant-b"] {
        f.eq(
            &format!("lines_received {tenant}"),
            prom::find(
                &text,
                "loki_distributor_lines_received_total",
                &[("tenant", tenant)],
            ),
            Some(4.0),
        );
        f.eq(
            &format!("memory_streams {tenant}"),
            prom::find(&text, "loki_ingester_memory_streams", &[("tenant", tenant)]),
            Some(3.0),
        );
    }

    // Flush everything, stop, and read the store alone.
    let r = sluice_integration_tests::durable::post(&s, "/flush");
    assert_eq!(r.status, 204);
    sluice_integration_tests::durable::wait_metric(
        &s,
        "loki_ingester_chunks_stored",
        std::time::Duration::from_secs(20),
        |stored| stored >= 6.0,
        "every stream flushed",
    );
    let store_dir = s.data_dir().join("chunks");
    let status = s.terminate();
    assert!(status.success());
    let q = SluiceProcess::start(SluiceOptions::new().auth(true).target("querier").extra_yaml(
        &format!(
            "storage_config:\n  filesystem:\n    directory: {}\n  index_shipper:\n    cache_location: querier-index-cache\n",
            store_dir.display()
        ),
    ));
    check_isolation(&q, &data, b, &mut f, "store");
    f.finish();
}

#[test]
fn multi_tenant_reads_label_results_with_the_tenant() {
    let s = SluiceProcess::start(
        SluiceOptions::new()
            .auth(true)
            .arg("-querier.multi-tenant-queries-enabled=true"),
    );
    let b = base();
    s.push_proto_ok(&tenant_data("ta", b), Some("ta"));
    s.push_proto_ok(&tenant_data("tb", b), Some("tb"));
    let (start, end) = window(b);
    let with_tenant = |tenant: &str, streams: Vec<Stream>| -> StreamSet {
        expected_streams(&streams)
            .into_iter()
            .map(|(mut labels, entries)| {
                labels.insert("__tenant_id__".to_string(), tenant.to_string());
                (labels, entries)
            })
            .collect()
    };
    let mut f = Failures::new();
    let mut both = with_tenant("ta", tenant_data("ta", b));
    both.extend(with_tenant("tb", tenant_data("tb", b)));
    f.eq(
        "log query over ta|tb",
        s.read_all(r#"{job=~".+"}"#, b, b + 60 * SEC, Some("tb|ta")),
        both,
    );
    f.eq(
        "a __tenant_id__ matcher picks the tenant",
        s.read_all(
            r#"{job=~".+", __tenant_id__="tb"}"#,
            b,
            b + 60 * SEC,
            Some("ta|tb"),
        ),
        with_tenant("tb", tenant_data("tb", b)),
    );
    f.eq(
        "one tenant named: no __tenant_id__ label",
        s.read_all(r#"{job="shared"}"#, b, b + 60 * SEC, Some("ta")),
        StreamSet::from([(
            labels(&[("job", "shared")]),
            vec![(b + 3 * SEC, "shared stream of ta".to_string())],
        )]),
    );
    let r = s.query(
        &[
            (
                "query",
                r#"sum by (__tenant_id__) (count_over_time({job=~".+"}[5m]))"#,
            ),
            ("time", &end),
        ],
        Some("ta|tb"),
    );
    let v = r.ok_json();
    f.eq(
        "metric query by __tenant_id__",
        sorted(
            v["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|sample| json!([sample["metric"], sample["value"][1]]))
                .collect(),
        ),
        sorted(vec![
            json!([{"__tenant_id__": "ta"}, "4"]),
            json!([{"__tenant_id__": "tb"}, "4"]),
        ]),
    );
    let w = [("start", start.as_str()), ("end", end.as_str())];
    let r = s.labels(&w, Some("ta|tb"));
    f.eq(
        "labels",
        r.ok_json(),
        json!({"status": "success", "data": ["__tenant_id__", "job", "owner", "ta_only", "tb_only"]}),
    );
    let r = s.label_values("__tenant_id__", &w, Some("ta|tb"));
    f.eq(
        "values of __tenant_id__",
        r.ok_json(),
        json!({"status": "success", "data": ["ta", "tb"]}),
    );
    let r = s.series(
        &[
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("match[]", r#"{job="shared"}"#),
        ],
        Some("ta|tb"),
    );
    f.eq(
        "series",
        sorted(r.ok_json()["data"].as_array().cloned().unwrap_or_default()),
        sorted(vec![
            json!({"__tenant_id__": "ta", "job": "shared"}),
            json!({"__tenant_id__": "tb", "job": "shared"}),
        ]),
    );
    let r = s.push_proto(&tenant_data("x", b), Some("ta|tb"));
    f.resp(
        "a push names one tenant",
        &r,
        400,
        |text| text == "multiple org IDs present",
        "multiple org IDs present",
    );
    f.finish();
}

#[test]
fn multi_tenant_reads_are_refused_unless_enabled() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let b = base();
    let (start, end) = window(b);
    let w = [("start", start.as_str()), ("end", end.as_str())];
    let mut f = Failures::new();
    let want = |text: &str| text == "multiple org IDs present";
    let r = s.query_range(
        &[
            ("query", r#"{job=~".+"}"#),
            ("start", &start),
            ("end", &end),
        ],
        Some("ta|tb"),
    );
    f.resp("query_range", &r, 400, want, "multiple org IDs present");
    f.resp(
        "labels",
        &s.labels(&w, Some("ta|tb")),
        400,
        want,
        "multiple org IDs present",
    );
    f.resp(
        "series",
        &s.series(&w, Some("ta|tb")),
        400,
        want,
        "multiple org IDs present",
    );
    f.finish();
}

#[test]
fn invalid_tenant_ids_are_refused_before_touching_storage() {
    let mut s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let b = base();
    let long = "a".repeat(151);
    let mut f = Failures::new();
    for tenant in [
        "a/b",
        "..",
        ".",
        long.as_str(),
        "a b",
        "x|../y",
        "semi;colon",
    ] {
        let r = s.push_proto(
            &[Stream::new(r#"{job="x"}"#, [(b, "never stored")])],
            Some(tenant),
        );
        f.resp(
            &format!("push as {tenant:?}"),
            &r,
            400,
            |text| text.contains("tenant ID") || text == "multiple org IDs present",
            "400 naming the tenant ID",
        );
        let (start, end) = window(b);
        let r = s.query_range(
            &[("query", r#"{job="x"}"#), ("start", &start), ("end", &end)],
            Some(tenant),
        );
        f.resp(
            &format!("query_range as {tenant:?}"),
            &r,
            400,
            |text| text.contains("tenant ID"),
            "400 naming the tenant ID",
        );
    }
    f.check(
        "151 characters",
        s.push_proto(&[Stream::new(r#"{job="x"}"#, [(b, "x")])], Some(&long))
            .text()
            .contains("too long"),
        "message says too long",
    );
    // 150 characters is fine.
    s.push_proto_ok(
        &[Stream::new(r#"{job="x"}"#, [(b, "ok")])],
        Some(&long[..150]),
    );
    // Nothing but the valid tenant reached the store.
    assert_eq!(
        sluice_integration_tests::durable::post(&s, "/flush").status,
        204
    );
    sluice_integration_tests::durable::wait_metric(
        &s,
        "loki_ingester_chunks_stored",
        std::time::Duration::from_secs(20),
        |stored| stored >= 1.0,
        "the valid tenant's chunk stored",
    );
    let status = s.terminate();
    assert!(status.success());
    let chunks = s.data_dir().join("chunks");
    let tenants: Vec<String> = std::fs::read_dir(&chunks)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name != "index")
                .collect()
        })
        .unwrap_or_default();
    f.eq(
        "tenant directories in the store",
        tenants,
        vec![long[..150].to_string()],
    );
    f.finish();
}

/// Every tenant-scoped endpoint, GET and POST: 401 `no org id` without
/// the header when auth is enabled.
#[test]
fn every_tenant_endpoint_requires_an_org_id() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let mut f = Failures::new();
    let body = proto_push_body(&[Stream::new(r#"{job="anon"}"#, [(base(), "anonymous")])]);
    for path in ["/loki/api/v1/push", "/api/prom/push"] {
        let r = s.send(
            s.client()
                .post(format!("{}{path}", s.http_url()))
                .header("Content-Type", "application/x-protobuf")
                .body(body.clone()),
        );
        f.resp(
            &format!("POST {path}"),
            &r,
            401,
            |t| t == "no org id",
            "no org id",
        );
    }
    for path in [
        "/loki/api/v1/query_range?query=%7Bjob%3D%22x%22%7D",
        "/loki/api/v1/query?query=%7Bjob%3D%22x%22%7D",
        "/loki/api/v1/labels",
        "/loki/api/v1/label",
        "/loki/api/v1/label/job/values",
        "/loki/api/v1/series",
        "/loki/api/v1/index/stats?query=%7Bjob%3D%22x%22%7D",
        "/loki/api/v1/index/volume?query=%7Bjob%3D%22x%22%7D",
        "/loki/api/v1/index/volume_range?query=%7Bjob%3D%22x%22%7D",
        "/loki/api/v1/tail?query=%7Bjob%3D%22x%22%7D",
    ] {
        for method in ["GET", "POST"] {
            if method == "POST" && path.starts_with("/loki/api/v1/tail") {
                continue; // a WebSocket upgrade is a GET
            }
            let url = format!("{}{path}", s.http_url());
            let request = if method == "GET" {
                s.client().get(url)
            } else {
                s.client().post(url)
            };
            let r = s.send(request);
            f.resp(
                &format!("{method} {path}"),
                &r,
                401,
                |t| t == "no org id",
                "no org id",
            );
        }
    }
    f.finish();
}

#[test]
fn auth_enabled_requires_org_id() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let b = base();
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let w = [("start", st.as_str()), ("end", en.as_str())];
    let mut f = Failures::new();
    let no_org = |t: &str| t == "no org id";

    let r = s.push_proto(&[Stream::new(r#"{job="anon"}"#, [(b, "anonymous")])], None);
    f.resp("protobuf push without org id", &r, 401, no_org, "no org id");
    let r = s.push_json(
        &json_push(vec![json_stream(&[("job", "anon")], &[(b, "anonymous")])]),
        false,
        None,
    );
    f.resp("JSON push without org id", &r, 401, no_org, "no org id");
    let r = s.query_range(
        &[("query", r#"{job="anon"}"#), ("start", &st), ("end", &en)],
        None,
    );
    f.resp("query_range without org id", &r, 401, no_org, "no org id");
    let r = s.query(&[("query", r#"{job="anon"}"#)], None);
    f.resp("query without org id", &r, 401, no_org, "no org id");
    f.resp(
        "labels without org id",
        &s.labels(&w, None),
        401,
        no_org,
        "no org id",
    );
    f.resp(
        "values without org id",
        &s.label_values("job", &w, None),
        401,
        no_org,
        "no org id",
    );
    f.resp(
        "series without org id",
        &s.series(&w, None),
        401,
        no_org,
        "no org id",
    );

    // Ops endpoints need no tenant.
    let r = s.ready();
    f.resp("/ready without org id", &r, 200, |t| t == "ready", "ready");
    f.check(
        "/metrics without org id",
        s.get("/metrics", &[], None).status == 200,
        "status",
    );

    // Nothing was stored by the rejected pushes.
    let r = s.labels(&w, Some("anyone"));
    f.eq("nothing stored", r.json(), json!({"status": "success"}));
    // With the header it works.
    let r = s.push_proto(
        &[Stream::new(r#"{job="anon"}"#, [(b, "with org id")])],
        Some("someone"),
    );
    f.resp("push with org id", &r, 204, |t| t.is_empty(), "(empty)");
    f.finish();
}

/// A live tail sees only its tenant's lines, and a delete request hides
/// only its tenant's lines and is listed only to it.
#[test]
fn tails_and_delete_requests_stay_within_their_tenant() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true).extra_yaml(
        "compactor:\n  retention_enabled: true\n  compaction_interval: 1h\n  \
         delete_request_cancel_period: 24h\n",
    ));
    let mut tail = sluice_integration_tests::live_tail::TailClient::connect_as(
        &s,
        Some("tenant-a"),
        &[("query", r#"{job="shared"}"#)],
    );
    let now = now_ns();
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="shared"}"#,
            [(now, "line of tenant-b")],
        )],
        Some("tenant-b"),
    );
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="shared"}"#,
            [(now + 1, "line of tenant-a")],
        )],
        Some("tenant-a"),
    );
    let timeout = std::time::Duration::from_secs(20);
    tail.read_until(timeout, |entries| !entries.is_empty());
    // tenant-b's line, pushed first, would have arrived by now.
    let lines: Vec<String> = tail
        .read_until(std::time::Duration::from_secs(2), |_| false)
        .into_iter()
        .map(|(_, _, line)| line)
        .collect();
    assert_eq!(lines, ["line of tenant-a"], "tenant-a's tail");
    tail.close();

    // The end may not be in the future: seconds have passed since `now`.
    let (start, end) = ((now / SEC - 60).to_string(), (now / SEC + 1).to_string());
    let r = s.send(
        s.client()
            .post(format!("{}/loki/api/v1/delete", s.http_url()))
            .header("X-Scope-OrgID", "tenant-a")
            .query(&[
                ("query", r#"{job="shared"}"#),
                ("start", &start),
                ("end", &end),
            ]),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let listed = |tenant: &str| {
        s.get("/loki/api/v1/delete", &[], Some(tenant))
            .ok_json()
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(listed("tenant-a"), Some(1));
    assert_eq!(
        listed("tenant-b"),
        Some(0),
        "tenant-b sees no delete request"
    );
    let lines = |tenant: &str| {
        s.read_all(
            r#"{job="shared"}"#,
            now - 60 * SEC,
            now + 60 * SEC,
            Some(tenant),
        )
        .into_values()
        .flatten()
        .map(|(_, line)| line)
        .collect::<Vec<_>>()
    };
    assert!(lines("tenant-a").is_empty(), "tenant-a's lines are hidden");
    assert_eq!(lines("tenant-b"), ["line of tenant-b"], "tenant-b's stay");
}
