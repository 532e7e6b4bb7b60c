//! Query API (loki-compat.md §2): query_range directions and limits, time
//! formats, matchers, line filters, instant queries, labels / values / series.

use sluice_integration_tests::*;

/// Whole-second base ten minutes ago.
fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// Timestamp of entry `i` in the two-stream fixture: base + i s + 0.5 s.
fn ts(b: i64, i: i64) -> i64 {
    b + i * SEC + SEC / 2
}

fn stream_a() -> Labels {
    labels(&[("app", "q"), ("env", "dev"), ("tier", "web")])
}
fn stream_b() -> Labels {
    labels(&[("app", "q"), ("env", "prod")])
}

/// Ten entries i = 0..9 alternating between stream A (even i) and B (odd i).
fn two_stream_fixture() -> (SluiceProcess, i64) {
    let s = SluiceProcess::start_default();
    let b = base();
    let a: Vec<(i64, String)> = (0..10)
        .step_by(2)
        .map(|i| (ts(b, i), format!("entry {i}")))
        .collect();
    let bb: Vec<(i64, String)> = (1..10)
        .step_by(2)
        .map(|i| (ts(b, i), format!("entry {i}")))
        .collect();
    s.push_proto_ok(
        &[
            Stream::new(r#"{app="q", env="dev", tier="web"}"#, a),
            Stream::new(r#"{app="q", env="prod"}"#, bb),
        ],
        None,
    );
    (s, b)
}

/// Expected result holding entries `idx` (in that order) split by stream.
fn expect_entries(b: i64, idx: &[i64]) -> StreamSet {
    let mut out = StreamSet::new();
    for &i in idx {
        let l = if i % 2 == 0 { stream_a() } else { stream_b() };
        out.entry(l)
            .or_default()
            .push((ts(b, i), format!("entry {i}")));
    }
    out
}

fn qr(s: &SluiceProcess, params: &[(&str, &str)]) -> Resp {
    s.query_range(params, None)
}

#[test]
fn query_range_reads_every_line_in_both_directions_with_and_without_limit() {
    let (s, b) = two_stream_fixture();
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let q = r#"{app="q"}"#;
    let all_fwd: Vec<i64> = (0..10).collect();
    let all_bwd: Vec<i64> = (0..10).rev().collect();
    let mut f = Failures::new();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<i64>);
    let cases: Vec<Case> = vec![
        (
            "forward, no limit",
            vec![("direction", "forward")],
            all_fwd.clone(),
        ),
        (
            "backward, no limit",
            vec![("direction", "backward")],
            all_bwd.clone(),
        ),
        ("default direction is backward", vec![], all_bwd.clone()),
        (
            "direction is case-insensitive",
            vec![("direction", "FORWARD")],
            all_fwd.clone(),
        ),
        (
            "forward, limit 1000",
            vec![("direction", "forward"), ("limit", "1000")],
            all_fwd,
        ),
        (
            "backward, limit 1000",
            vec![("direction", "backward"), ("limit", "1000")],
            all_bwd,
        ),
        (
            "backward, limit 3 = newest 3",
            vec![("direction", "backward"), ("limit", "3")],
            vec![9, 8, 7],
        ),
        (
            "forward, limit 3 = oldest 3",
            vec![("direction", "forward"), ("limit", "3")],
            vec![0, 1, 2],
        ),
        (
            "backward, limit 1 = newest only",
            vec![("limit", "1")],
            vec![9],
        ),
        (
            "forward, limit 1 = oldest only",
            vec![("direction", "forward"), ("limit", "1")],
            vec![0],
        ),
        (
            "backward, limit 4",
            vec![("direction", "backward"), ("limit", "4")],
            vec![9, 8, 7, 6],
        ),
        (
            "forward, limit 10 exactly",
            vec![("direction", "forward"), ("limit", "10")],
            (0..10).collect(),
        ),
    ];
    for (what, extra, idx) in cases {
        let mut params = vec![("query", q), ("start", st.as_str()), ("end", en.as_str())];
        params.extend(extra);
        let r = qr(&s, &params);
        if r.status != 200 {
            f.check(what, false, format!("status {} {:?}", r.status, r.body));
            continue;
        }
        f.eq(what, parse_streams(&r.json()), expect_entries(b, &idx));
    }
    f.finish();
}

#[test]
fn default_limit_is_100() {
    let s = SluiceProcess::start_default();
    let b = base();
    let entries: Vec<(i64, String)> = (0..150)
        .map(|i| (b + i * 1_000_000, format!("n{i}")))
        .collect();
    s.push_proto_ok(&[Stream::new(r#"{job="many"}"#, entries.clone())], None);
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let r = qr(
        &s,
        &[("query", r#"{job="many"}"#), ("start", &st), ("end", &en)],
    );
    let mut newest: Vec<(i64, String)> = entries[50..].to_vec();
    newest.reverse();
    assert_eq!(
        parse_streams(&r.ok_json()),
        StreamSet::from([(labels(&[("job", "many")]), newest)])
    );
    let r = qr(
        &s,
        &[
            ("query", r#"{job="many"}"#),
            ("start", &st),
            ("end", &en),
            ("direction", "forward"),
        ],
    );
    assert_eq!(
        parse_streams(&r.ok_json()),
        StreamSet::from([(labels(&[("job", "many")]), entries[..100].to_vec())])
    );
}

#[test]
fn response_shape_is_exact() {
    let (s, b) = two_stream_fixture();
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let r = qr(
        &s,
        &[
            ("query", r#"{app="q", env="prod"}"#),
            ("start", &st),
            ("end", &en),
            ("limit", "1"),
        ],
    );
    let v = r.ok_json();
    // {"status":"success","data":{"resultType":"streams","result":[{"stream":{…},"values":[["<ns>","line"]]}],"stats":{…}}}
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "streams");
    assert_eq!(
        v["data"]["result"],
        json!([{"stream": {"app": "q", "env": "prod"}, "values": [[ts(b, 9).to_string(), "entry 9"]]}])
    );
    assert!(v["data"]["stats"].is_object(), "stats object present: {v}");
    parse_streams(&v);

    // Empty result is an empty array, same envelope.
    let r = qr(
        &s,
        &[
            ("query", r#"{app="nothing-here"}"#),
            ("start", &st),
            ("end", &en),
        ],
    );
    let v = r.ok_json();
    assert_eq!(v["data"]["result"], json!([]), "{v}");
    parse_streams(&v);
}

#[test]
fn time_parameters_accept_ns_seconds_float_and_rfc3339() {
    let (s, b) = two_stream_fixture();
    let bs = b / SEC;
    let q = r#"{app="q"}"#;
    let mut f = Failures::new();
    // Entries sit at bs + i + 0.5 s.
    let cases: Vec<(&str, String, String, Vec<i64>)> = vec![
        (
            "ns [ts2, ts4)",
            ts(b, 2).to_string(),
            ts(b, 4).to_string(),
            vec![2, 3],
        ),
        (
            "ns end exclusive, end=ts4+1",
            ts(b, 2).to_string(),
            (ts(b, 4) + 1).to_string(),
            vec![2, 3, 4],
        ),
        (
            "ns start inclusive",
            ts(b, 2).to_string(),
            (ts(b, 2) + 1).to_string(),
            vec![2],
        ),
        (
            "10-digit seconds",
            (bs + 2).to_string(),
            (bs + 5).to_string(),
            vec![2, 3, 4],
        ),
        (
            "float seconds",
            format!("{}.75", bs + 1),
            format!("{}.25", bs + 4),
            vec![2, 3],
        ),
        (
            "float seconds, 3 decimals",
            format!("{}.500", bs + 2),
            format!("{}.500", bs + 4),
            vec![2, 3],
        ),
        (
            "RFC3339Nano",
            rfc3339_nano(ts(b, 2)),
            rfc3339_nano(ts(b, 4)),
            vec![2, 3],
        ),
        (
            "RFC3339Nano end+1ns",
            rfc3339_nano(ts(b, 2)),
            rfc3339_nano(ts(b, 4) + 1),
            vec![2, 3, 4],
        ),
        (
            "RFC3339 whole seconds",
            rfc3339_seconds(b + 2 * SEC),
            rfc3339_seconds(b + 5 * SEC),
            vec![2, 3, 4],
        ),
        (
            "mixed: seconds start, RFC3339 end",
            (bs + 6).to_string(),
            rfc3339_nano(ts(b, 8)),
            vec![6, 7],
        ),
        (
            "mixed: float start, ns end",
            format!("{}.5", bs + 7),
            (ts(b, 9) + 1).to_string(),
            vec![7, 8, 9],
        ),
    ];
    for (what, start, end, idx) in cases {
        let r = qr(
            &s,
            &[
                ("query", q),
                ("start", &start),
                ("end", &end),
                ("direction", "forward"),
            ],
        );
        if r.status != 200 {
            f.check(
                what,
                false,
                format!("start={start} end={end}: status {} {:?}", r.status, r.body),
            );
            continue;
        }
        f.eq(
            &format!("{what} (start={start} end={end})"),
            parse_streams(&r.json()),
            expect_entries(b, &idx),
        );
    }
    f.finish();
}

/// RFC3339 without fraction.
fn rfc3339_seconds(ns: i64) -> String {
    let s = rfc3339_nano(ns);
    format!("{}Z", &s[..19])
}

#[test]
fn float_seconds_are_rounded_to_milliseconds() {
    let (s, b) = two_stream_fixture();
    let bs = b / SEC;
    // end = bs+4.5000004 s: rounded to ms it is exactly ts4, which is excluded (end
    // is exclusive); with sub-ms precision ts4 would be included.
    let end = format!("{}.5000004", bs + 4);
    let r = qr(
        &s,
        &[
            ("query", r#"{app="q"}"#),
            ("start", &ts(b, 2).to_string()),
            ("end", &end),
            ("direction", "forward"),
        ],
    );
    assert_eq!(parse_streams(&r.ok_json()), expect_entries(b, &[2, 3]));
}

#[test]
fn start_equal_to_end_is_allowed_and_empty() {
    let (s, b) = two_stream_fixture();
    let t = ts(b, 3).to_string();
    let r = qr(&s, &[("query", r#"{app="q"}"#), ("start", &t), ("end", &t)]);
    let v = r.ok_json();
    assert_eq!(v["data"]["result"], json!([]), "{v}");
}

struct MatcherFixture {
    s: SluiceProcess,
    b: i64,
}

fn la() -> Labels {
    labels(&[("app", "m"), ("env", "dev"), ("tier", "web")])
}
fn lb() -> Labels {
    labels(&[("app", "m"), ("env", "prod")])
}
fn lc() -> Labels {
    labels(&[("app", "m"), ("env", "staging")])
}
fn ld() -> Labels {
    labels(&[("app", "other"), ("env", "dev")])
}

fn matcher_fixture() -> MatcherFixture {
    let s = SluiceProcess::start_default();
    let b = base();
    s.push_proto_ok(
        &[
            Stream::new(
                r#"{app="m", env="dev", tier="web"}"#,
                [(b + 1, "a1"), (b + SEC, "a2")],
            ),
            Stream::new(
                r#"{app="m", env="prod"}"#,
                [(b + 2, "b1"), (b + 2 * SEC, "b2")],
            ),
            Stream::new(
                r#"{app="m", env="staging"}"#,
                [(b + 3, "c1"), (b + 3 * SEC, "c2")],
            ),
            Stream::new(
                r#"{app="other", env="dev"}"#,
                [(b + 4, "d1"), (b + 4 * SEC, "d2")],
            ),
        ],
        None,
    );
    MatcherFixture { s, b }
}

fn matcher_entries(l: &Labels) -> (Labels, Vec<(i64, String)>) {
    let (x, off) = match l.get("env").map(String::as_str) {
        Some("dev") if l.get("app").map(String::as_str) == Some("m") => ("a", 1),
        Some("prod") => ("b", 2),
        Some("staging") => ("c", 3),
        _ => ("d", 4),
    };
    (
        l.clone(),
        vec![(off, format!("{x}1")), (off * SEC, format!("{x}2"))],
    )
}

fn matcher_expect(b: i64, sets: &[Labels]) -> StreamSet {
    sets.iter()
        .map(|l| {
            let (l, e) = matcher_entries(l);
            (l, e.into_iter().map(|(t, s)| (b + t, s)).collect())
        })
        .collect()
}

#[test]
fn stream_selector_matchers() {
    let MatcherFixture { s, b } = matcher_fixture();
    let mut f = Failures::new();
    let cases: Vec<(&str, Vec<Labels>)> = vec![
        (r#"{app="m"}"#, vec![la(), lb(), lc()]),
        (r#"{env="dev"}"#, vec![la(), ld()]),
        (r#"{app="m", env!="dev"}"#, vec![lb(), lc()]),
        (r#"{app="m",env="prod"}"#, vec![lb()]),
        (r#"{app="m", env=~"prod|staging"}"#, vec![lb(), lc()]),
        (r#"{app="m", env=~"pro"}"#, vec![]), // regex is fully anchored
        (r#"{app="m", env=~"pro.*"}"#, vec![lb()]),
        (r#"{app="m", env!~"s.*"}"#, vec![la(), lb()]),
        (r#"{app="m", env!~"dev|prod"}"#, vec![lc()]),
        (r#"{env=~".+", app!="m"}"#, vec![ld()]),
        (r#"{env=~"dev|prod", app!~"oth.*"}"#, vec![la(), lb()]),
        (r#"{app="m", tier="web"}"#, vec![la()]),
        (r#"{app="m", tier=""}"#, vec![lb(), lc()]), // empty matches a missing label
        (r#"{app="m", tier!=""}"#, vec![la()]),
        (r#"{app="nope"}"#, vec![]),
        (r#"{ app = "m" , env = "dev" }"#, vec![la()]),
    ];
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    for (q, sets) in cases {
        let r = qr(
            &s,
            &[
                ("query", q),
                ("start", &st),
                ("end", &en),
                ("direction", "forward"),
            ],
        );
        if r.status != 200 {
            f.check(q, false, format!("status {} {:?}", r.status, r.body));
            continue;
        }
        f.eq(q, parse_streams(&r.json()), matcher_expect(b, &sets));
    }
    f.finish();
}

const FILTER_LINES: [&str; 6] = [
    "GET /api/users status=200 user=alice",
    "POST /api/users status=500 user=bob",
    "GET /health status=200 user=carol",
    "DELETE /api/users/7 status=404 user=alice",
    "get /api/lower status=200 user=dave",
    "PUT /api/users status=201 user=erin",
];

#[test]
fn line_filters_each_op_and_chained() {
    let s = SluiceProcess::start_default();
    let b = base();
    s.push_proto_ok(
        &[Stream::new(
            r#"{app="f"}"#,
            FILTER_LINES
                .iter()
                .enumerate()
                .map(|(i, l)| (b + i as i64 * SEC, *l)),
        )],
        None,
    );
    let mut f = Failures::new();
    let cases: Vec<(&str, Vec<usize>)> = vec![
        (r#"{app="f"} |= "GET""#, vec![0, 2]),
        (r#"{app="f"} != "GET""#, vec![1, 3, 4, 5]),
        (r#"{app="f"} |~ "status=(4|5)\\d\\d""#, vec![1, 3]),
        (r#"{app="f"} |~ `status=(4|5)\d\d`"#, vec![1, 3]),
        (r#"{app="f"} !~ `user=(alice|bob)`"#, vec![2, 4, 5]),
        (r#"{app="f"} |~ "(?i)get""#, vec![0, 2, 4]),
        (r#"{app="f"} |~ "api""#, vec![0, 1, 3, 4, 5]), // unanchored
        (r#"{app="f"} |= "/api/users/7""#, vec![3]),
        (r#"{app="f"} |= """#, vec![0, 1, 2, 3, 4, 5]),
        (r#"{app="f"} |= "/api" != "POST""#, vec![0, 3, 4, 5]),
        (
            r#"{app="f"} |= "/api" != "POST" |~ `status=2\d\d` !~ "dave""#,
            vec![0, 5],
        ),
        (r#"{app="f"} |= "alice" |= "GET""#, vec![0]),
        (r#"{app="f"} != "alice" != "bob" != "carol""#, vec![4, 5]),
        (r#"{app="f"} |= "nothing matches this""#, vec![]),
    ];
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    for (q, idx) in cases {
        let r = qr(
            &s,
            &[
                ("query", q),
                ("start", &st),
                ("end", &en),
                ("direction", "forward"),
            ],
        );
        if r.status != 200 {
            f.check(q, false, format!("status {} {:?}", r.status, r.body));
            continue;
        }
        let expected: StreamSet = if idx.is_empty() {
            StreamSet::new()
        } else {
            StreamSet::from([(
                labels(&[("app", "f")]),
                idx.iter()
                    .map(|&i| (b + i as i64 * SEC, FILTER_LINES[i].to_string()))
                    .collect(),
            )])
        };
        f.eq(q, parse_streams(&r.json()), expected);
    }
    f.finish();
}

#[test]
fn instant_log_query_returns_the_30s_before_time() {
    let s = SluiceProcess::start_default();
    let t = (now_ns() / SEC - 120) * SEC;
    let offsets: [(i64, &str); 8] = [
        (-40 * SEC, "t-40s"),
        (-31 * SEC, "t-31s"),
        (-30 * SEC, "t-30s"),
        (-29 * SEC, "t-29s"),
        (-SEC, "t-1s"),
        (-1, "t-1ns"),
        (0, "t"),
        (SEC, "t+1s"),
    ];
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="inst"}"#,
            offsets.iter().map(|(o, l)| (t + o, *l)),
        )],
        None,
    );
    let l = labels(&[("job", "inst")]);
    let backward: Vec<(i64, String)> = [
        (-1, "t-1ns"),
        (-SEC, "t-1s"),
        (-29 * SEC, "t-29s"),
        (-30 * SEC, "t-30s"),
    ]
    .iter()
    .map(|(o, s)| (t + o, s.to_string()))
    .collect();
    let mut f = Failures::new();

    let r = s.query(
        &[("query", r#"{job="inst"}"#), ("time", &t.to_string())],
        None,
    );
    if r.status == 200 {
        f.eq(
            "time as ns, default backward",
            parse_streams(&r.json()),
            StreamSet::from([(l.clone(), backward.clone())]),
        );
    } else {
        f.check("time as ns", false, format!("{} {:?}", r.status, r.body));
    }
    let r = s.query(
        &[
            ("query", r#"{job="inst"}"#),
            ("time", &rfc3339_nano(t)),
            ("direction", "forward"),
        ],
        None,
    );
    let mut fwd = backward.clone();
    fwd.reverse();
    if r.status == 200 {
        f.eq(
            "time as RFC3339Nano, forward",
            parse_streams(&r.json()),
            StreamSet::from([(l.clone(), fwd)]),
        );
    } else {
        f.check(
            "time as RFC3339Nano",
            false,
            format!("{} {:?}", r.status, r.body),
        );
    }
    let r = s.query(
        &[
            ("query", r#"{job="inst"}"#),
            ("time", &(t / SEC).to_string()),
            ("limit", "2"),
        ],
        None,
    );
    if r.status == 200 {
        f.eq(
            "time as seconds, limit 2",
            parse_streams(&r.json()),
            StreamSet::from([(l.clone(), backward[..2].to_vec())]),
        );
    } else {
        f.check(
            "time as seconds",
            false,
            format!("{} {:?}", r.status, r.body),
        );
    }
    let r = s.query(
        &[
            ("query", r#"{job="inst"} |= "t-3""#),
            ("time", &t.to_string()),
        ],
        None,
    );
    if r.status == 200 {
        f.eq(
            "with line filter",
            parse_streams(&r.json()),
            StreamSet::from([(l.clone(), vec![(t - 30 * SEC, "t-30s".to_string())])]),
        );
    } else {
        f.check(
            "with line filter",
            false,
            format!("{} {:?}", r.status, r.body),
        );
    }
    f.finish();
}

fn assert_data(f: &mut Failures, what: &str, r: &Resp, expected: Option<Value>) {
    if r.status != 200 {
        f.check(what, false, format!("status {} {:?}", r.status, r.body));
        return;
    }
    let v = r.json();
    let want = match expected {
        Some(d) => json!({"status": "success", "data": d}),
        None => json!({"status": "success"}),
    };
    f.eq(what, v, want);
}

/// Series data compared as a set of label maps.
fn assert_series(f: &mut Failures, what: &str, r: &Resp, expected: &[Labels]) {
    if r.status != 200 {
        f.check(what, false, format!("status {} {:?}", r.status, r.body));
        return;
    }
    let v = r.json();
    let keys: Vec<&String> = v
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    f.eq(
        &format!("{what}: status"),
        v["status"].clone(),
        json!("success"),
    );
    f.eq(&format!("{what}: top-level keys"), keys.len(), 2);
    let Some(arr) = v["data"].as_array() else {
        f.check(what, false, format!("data is not an array: {v}"));
        return;
    };
    let mut got: Vec<Labels> = arr
        .iter()
        .map(|o| {
            o.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("<non-string>").to_string()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    got.sort();
    let mut want = expected.to_vec();
    want.sort();
    f.eq(what, got, want);
}

#[test]
fn labels_values_and_series() {
    let MatcherFixture { s, b } = matcher_fixture();
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    // A range that excludes everything (days before the data, outside the ingester window).
    let (old_st, old_en) = (
        (b - 3 * 86_400 * SEC).to_string(),
        (b - 2 * 86_400 * SEC).to_string(),
    );
    let win = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("start".to_string(), st.clone()),
            ("end".to_string(), en.clone()),
        ];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    };
    let call = |path: &str, params: Vec<(String, String)>| -> Resp {
        let p: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        s.get(path, &p, None)
    };
    let old = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("start".to_string(), old_st.clone()),
            ("end".to_string(), old_en.clone()),
        ];
        v.extend(extra.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        v
    };
    let mut f = Failures::new();

    // labels
    assert_data(
        &mut f,
        "labels",
        &call("/loki/api/v1/labels", win(&[])),
        Some(json!(["app", "env", "tier"])),
    );
    assert_data(
        &mut f,
        "labels, default range (last hour)",
        &call("/loki/api/v1/labels", vec![]),
        Some(json!(["app", "env", "tier"])),
    );
    assert_data(
        &mut f,
        "labels alias /label",
        &call("/loki/api/v1/label", win(&[])),
        Some(json!(["app", "env", "tier"])),
    );
    assert_data(
        &mut f,
        "labels with query={env=\"prod\"}",
        &call("/loki/api/v1/labels", win(&[("query", r#"{env="prod"}"#)])),
        Some(json!(["app", "env"])),
    );
    assert_data(
        &mut f,
        "labels, range excluding everything",
        &call("/loki/api/v1/labels", old(&[])),
        None,
    );

    // label values
    assert_data(
        &mut f,
        "env values",
        &call("/loki/api/v1/label/env/values", win(&[])),
        Some(json!(["dev", "prod", "staging"])),
    );
    assert_data(
        &mut f,
        "app values",
        &call("/loki/api/v1/label/app/values", win(&[])),
        Some(json!(["m", "other"])),
    );
    assert_data(
        &mut f,
        "tier values",
        &call("/loki/api/v1/label/tier/values", win(&[])),
        Some(json!(["web"])),
    );
    assert_data(
        &mut f,
        "env values with query={app=\"m\", env!=\"dev\"}",
        &call(
            "/loki/api/v1/label/env/values",
            win(&[("query", r#"{app="m", env!="dev"}"#)]),
        ),
        Some(json!(["prod", "staging"])),
    );
    assert_data(
        &mut f,
        "env values with query={app=\"other\"}",
        &call(
            "/loki/api/v1/label/env/values",
            win(&[("query", r#"{app="other"}"#)]),
        ),
        Some(json!(["dev"])),
    );
    assert_data(
        &mut f,
        "env values with query matching nothing",
        &call(
            "/loki/api/v1/label/env/values",
            win(&[("query", r#"{app="nope"}"#)]),
        ),
        None,
    );
    assert_data(
        &mut f,
        "values of unknown label",
        &call("/loki/api/v1/label/nosuch/values", win(&[])),
        None,
    );
    assert_data(
        &mut f,
        "env values, range excluding everything",
        &call("/loki/api/v1/label/env/values", old(&[])),
        None,
    );

    // series
    assert_series(
        &mut f,
        "series match[] dev + prod (union)",
        &call(
            "/loki/api/v1/series",
            win(&[
                ("match[]", r#"{env="dev"}"#),
                ("match[]", r#"{env="prod"}"#),
            ]),
        ),
        &[la(), ld(), lb()],
    );
    assert_series(
        &mut f,
        "series overlapping match[] (no duplicates)",
        &call(
            "/loki/api/v1/series",
            win(&[("match[]", r#"{app="m"}"#), ("match[]", r#"{env="dev"}"#)]),
        ),
        &[la(), lb(), lc(), ld()],
    );
    assert_series(
        &mut f,
        "series single match[] with regex",
        &call(
            "/loki/api/v1/series",
            win(&[("match[]", r#"{app="m", env=~"s.*"}"#)]),
        ),
        &[lc()],
    );
    assert_series(
        &mut f,
        "series with `match` (no brackets)",
        &call("/loki/api/v1/series", win(&[("match", r#"{env="prod"}"#)])),
        &[lb()],
    );
    assert_series(
        &mut f,
        "series without match = all",
        &call("/loki/api/v1/series", win(&[])),
        &[la(), lb(), lc(), ld()],
    );
    let r = call("/loki/api/v1/series", old(&[("match[]", r#"{app="m"}"#)]));
    assert_data(
        &mut f,
        "series, range excluding everything",
        &r,
        Some(json!([])),
    );
    let r = call(
        "/loki/api/v1/series",
        win(&[("match[]", r#"{app="nope"}"#)]),
    );
    assert_data(&mut f, "series matching nothing", &r, Some(json!([])));

    // query_range over the excluded range is empty too
    let r = call(
        "/loki/api/v1/query_range",
        old(&[("query", r#"{app="m"}"#)]),
    );
    if r.status == 200 {
        f.eq(
            "query_range, range excluding everything",
            r.json()["data"]["result"].clone(),
            json!([]),
        );
    } else {
        f.check(
            "query_range excluded range",
            false,
            format!("{} {:?}", r.status, r.body),
        );
    }
    f.finish();
}

#[test]
fn empty_server_metadata() {
    let s = SluiceProcess::start_default();
    let mut f = Failures::new();
    assert_data(&mut f, "labels on empty server", &s.labels(&[], None), None);
    assert_data(
        &mut f,
        "values on empty server",
        &s.label_values("job", &[], None),
        None,
    );
    assert_data(
        &mut f,
        "series on empty server",
        &s.series(&[("match[]", r#"{job="x"}"#)], None),
        Some(json!([])),
    );
    f.finish();
}
