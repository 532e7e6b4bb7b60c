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

#[test]
fn auth_enabled_isolates_tenants() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let b = base();
    s.push_proto_ok(
        &[
            Stream::new(r#"{job="a-only", owner="a"}"#, [(b, "a private")]),
            Stream::new(r#"{job="same"}"#, [(b + 1, "same stream from a")]),
        ],
        Some("tenant-a"),
    );
    let r = s.push_json(
        &json_push(vec![
            json_stream(
                &[("job", "b-only"), ("extra", "b")],
                &[(b + 2, "b private")],
            ),
            json_stream(&[("job", "same")], &[(b + 3, "same stream from b")]),
        ]),
        false,
        Some("tenant-b"),
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let w = [("start", st.as_str()), ("end", en.as_str())];
    let mut f = Failures::new();

    // query_range
    f.eq(
        "tenant-a query_range",
        s.read_all(r#"{job=~".+"}"#, b, b + 60 * SEC, Some("tenant-a")),
        StreamSet::from([
            (
                labels(&[("job", "a-only"), ("owner", "a")]),
                vec![(b, "a private".to_string())],
            ),
            (
                labels(&[("job", "same")]),
                vec![(b + 1, "same stream from a".to_string())],
            ),
        ]),
    );
    f.eq(
        "tenant-b query_range",
        s.read_all(r#"{job=~".+"}"#, b, b + 60 * SEC, Some("tenant-b")),
        StreamSet::from([
            (
                labels(&[("job", "b-only"), ("extra", "b")]),
                vec![(b + 2, "b private".to_string())],
            ),
            (
                labels(&[("job", "same")]),
                vec![(b + 3, "same stream from b".to_string())],
            ),
        ]),
    );
    f.eq(
        "tenant-c query_range",
        s.read_all(r#"{job=~".+"}"#, b, b + 60 * SEC, Some("tenant-c")),
        StreamSet::new(),
    );

    // instant query
    let t = (b + 30 * SEC).to_string();
    let r = s.query(
        &[("query", r#"{job="same"}"#), ("time", &t)],
        Some("tenant-b"),
    );
    if r.status == 200 {
        f.eq(
            "tenant-b instant query",
            parse_streams(&r.json()),
            StreamSet::from([(
                labels(&[("job", "same")]),
                vec![(b + 3, "same stream from b".to_string())],
            )]),
        );
    } else {
        f.check(
            "tenant-b instant query",
            false,
            format!("{} {:?}", r.status, r.body),
        );
    }

    // labels
    f.eq(
        "tenant-a labels",
        s.labels(&w, Some("tenant-a")).json(),
        json!({"status":"success","data":["job","owner"]}),
    );
    f.eq(
        "tenant-b labels",
        s.labels(&w, Some("tenant-b")).json(),
        json!({"status":"success","data":["extra","job"]}),
    );
    f.eq(
        "tenant-c labels",
        s.labels(&w, Some("tenant-c")).json(),
        json!({"status":"success"}),
    );

    // values
    f.eq(
        "tenant-a job values",
        s.label_values("job", &w, Some("tenant-a")).json(),
        json!({"status":"success","data":["a-only","same"]}),
    );
    f.eq(
        "tenant-b job values",
        s.label_values("job", &w, Some("tenant-b")).json(),
        json!({"status":"success","data":["b-only","same"]}),
    );
    f.eq(
        "tenant-b owner values",
        s.label_values("owner", &w, Some("tenant-b")).json(),
        json!({"status":"success"}),
    );
    f.eq(
        "tenant-c job values",
        s.label_values("job", &w, Some("tenant-c")).json(),
        json!({"status":"success"}),
    );

    // series
    let sw = [
        ("start", st.as_str()),
        ("end", en.as_str()),
        ("match[]", r#"{job=~".+"}"#),
    ];
    let sorted_series = |v: Value| -> Value {
        let mut arr = v["data"].as_array().cloned().unwrap_or_default();
        arr.sort_by_key(|x| x.to_string());
        json!({"status": v["status"], "data": arr})
    };
    f.eq(
        "tenant-a series",
        sorted_series(s.series(&sw, Some("tenant-a")).json()),
        sorted_series(
            json!({"status":"success","data":[{"job":"a-only","owner":"a"},{"job":"same"}]}),
        ),
    );
    f.eq(
        "tenant-b series",
        sorted_series(s.series(&sw, Some("tenant-b")).json()),
        sorted_series(
            json!({"status":"success","data":[{"job":"b-only","extra":"b"},{"job":"same"}]}),
        ),
    );
    f.eq(
        "tenant-c series",
        s.series(&sw, Some("tenant-c")).json(),
        json!({"status":"success","data":[]}),
    );

    // metrics per tenant
    let text = s.metrics_text();
    f.eq(
        "lines_received tenant-a",
        prom::find(
            &text,
            "loki_distributor_lines_received_total",
            &[("tenant", "tenant-a")],
        ),
        Some(2.0),
    );
    f.eq(
        "lines_received tenant-b",
        prom::find(
            &text,
            "loki_distributor_lines_received_total",
            &[("tenant", "tenant-b")],
        ),
        Some(2.0),
    );
    f.eq(
        "memory_streams tenant-a",
        prom::find(
            &text,
            "loki_ingester_memory_streams",
            &[("tenant", "tenant-a")],
        ),
        Some(2.0),
    );
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
