//! Bad input: rejected pushes (status, message, nothing stored), mixed
//! batches (partial success), garbage bodies, query parameter errors.

use sluice_integration_tests::*;

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// Asserts the server holds no data at all: no labels, no series, no
/// entries for a catch-all selector.
fn assert_nothing_stored(s: &SluiceProcess, what: &str) {
    let (st, en) = (
        (now_ns() - 3600 * SEC).to_string(),
        (now_ns() + 60 * SEC).to_string(),
    );
    let w = [("start", st.as_str()), ("end", en.as_str())];
    let r = s.labels(&w, None);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status": "success"})),
        "{what}: labels must show no trace of the rejected push"
    );
    let r = s.series(&w, None);
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"status": "success", "data": []})),
        "{what}: series must show no trace of the rejected push"
    );
    let got = s.read_all(
        r#"{job=~".+"}"#,
        now_ns() - 3600 * SEC,
        now_ns() + 60 * SEC,
        None,
    );
    assert!(
        got.is_empty(),
        "{what}: query must show nothing, got {got:?}"
    );
}

fn bad_stream(b: i64) -> Stream {
    Stream::new(r#"{job="bad"}"#, [(b, "must not be stored")])
}

#[test]
fn protobuf_without_snappy_is_rejected() {
    let s = SluiceProcess::start_default();
    let body = proto_push_bytes(&[bad_stream(base())]);
    assert!(
        snap::raw::Decoder::new().decompress_vec(&body).is_err(),
        "test precondition: the raw protobuf must not be valid snappy"
    );
    let r = s.push_raw(body, Some("application/x-protobuf"), None, None);
    assert_eq!((r.status, r.text()), (400, "snappy: corrupt input"));
    assert_nothing_stored(&s, "unsnappied protobuf");
}

#[test]
fn snappy_of_non_protobuf_is_rejected() {
    let s = SluiceProcess::start_default();
    let garbage = b"this is not a protobuf message {job=\"bad\"}".to_vec();
    {
        use loki_api::prost::Message;
        assert!(
            loki_api::logproto::PushRequest::decode(garbage.as_slice()).is_err(),
            "test precondition: garbage must not decode as PushRequest"
        );
    }
    let r = s.push_raw(snappy(&garbage), Some("application/x-protobuf"), None, None);
    assert_eq!(r.status, 400, "body {:?}", r.body);
    assert!(
        r.text().starts_with("proto:"),
        "expected a 'proto:' decode error, got {:?}",
        r.body
    );
    assert_nothing_stored(&s, "snappy garbage");
}

#[test]
fn brotli_content_encoding_is_rejected() {
    let s = SluiceProcess::start_default();
    let r = s.push_raw(
        proto_push_body(&[bad_stream(base())]),
        Some("application/x-protobuf"),
        Some("br"),
        None,
    );
    assert_eq!(
        (r.status, r.text()),
        (400, r#"Content-Encoding "br" not supported"#)
    );
    let body = serde_json::to_vec(&json_push(vec![json_stream(
        &[("job", "bad")],
        &[(base(), "x")],
    )]))
    .unwrap();
    let r = s.push_raw(body, Some("application/json"), Some("br"), None);
    assert_eq!(
        (r.status, r.text()),
        (400, r#"Content-Encoding "br" not supported"#),
        "JSON body"
    );
    assert_nothing_stored(&s, "br encoding");
}

#[test]
fn unparsable_stream_labels_are_rejected() {
    let s = SluiceProcess::start_default();
    let r = s.push_proto(
        &[Stream::new(
            r#"{a-b="1"}"#,
            [(base(), "must not be stored")],
        )],
        None,
    );
    assert_eq!(r.status, 400, "body {:?}", r.body);
    assert!(
        r.text()
            .contains("parse error: unexpected character inside braces: '-'"),
        "got {:?}",
        r.body
    );
    assert_nothing_stored(&s, "{a-b=\"1\"}");
}

#[test]
fn other_unparsable_label_strings_are_rejected() {
    let s = SluiceProcess::start_default();
    let mut f = Failures::new();
    for labels in [
        r#"job="x""#,
        r#"{job="x""#,
        r#"{job=x}"#,
        r#"{1job="x"}"#,
        r#"{job=~"x"}"#,
        "",
    ] {
        let r = s.push_proto(
            &[Stream::new(labels, [(base(), "must not be stored")])],
            None,
        );
        f.check(
            &format!("labels {labels:?}"),
            r.status == 400 && !r.text().is_empty(),
            format!("expected 400 with a message, got {} {:?}", r.status, r.body),
        );
    }
    f.finish();
    assert_nothing_stored(&s, "bad label strings");
}

#[test]
fn empty_label_set_is_rejected() {
    let s = SluiceProcess::start_default();
    let r = s.push_proto(&[Stream::new("{}", [(base(), "must not be stored")])], None);
    assert_eq!(
        (r.status, r.text()),
        (400, "error at least one label pair is required per stream")
    );
    let r = s.push_json(
        &json_push(vec![json_stream(&[], &[(base(), "must not be stored")])]),
        false,
        None,
    );
    assert_eq!(
        (r.status, r.text()),
        (400, "error at least one label pair is required per stream"),
        "JSON stream with empty labels"
    );
    assert_nothing_stored(&s, "{}");
}

#[test]
fn invalid_json_is_rejected() {
    let s = SluiceProcess::start_default();
    let b = base();
    let mut f = Failures::new();
    let bodies = [
        format!(r#"{{"streams":[{{"stream":{{"job":"bad"}},"values":[["{b}","x"]]"#), // truncated
        "not json at all".to_string(),
        format!(r#"{{"streams":[{{"stream":{{"job":"bad"}},"values":[["{b}"]]}}]}}"#), // value missing line
        r#"{"streams":[{"stream":{"job":"bad"},"values":[["not-a-number","x"]]}]}"#.to_string(),
        format!(r#"{{"streams":[{{"stream":{{"job":1}},"values":[["{b}","x"]]}}]}}"#), // label value not a string
        format!(r#"{{"streams":{{"stream":{{"job":"bad"}},"values":[["{b}","x"]]}}}}"#), // streams not an array
    ];
    for body in bodies {
        let r = s.push_raw(
            body.clone().into_bytes(),
            Some("application/json"),
            None,
            None,
        );
        f.check(
            &format!("body {body}"),
            r.status == 400 && !r.text().is_empty(),
            format!("expected 400 with a message, got {} {:?}", r.status, r.body),
        );
    }
    f.finish();
    assert_nothing_stored(&s, "invalid JSON");
}

#[test]
fn json_numeric_timestamp_is_rejected() {
    let s = SluiceProcess::start_default();
    let b = base();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"job":"bad"}},"values":[[{b},"must not be stored"]]}}]}}"#
    );
    let r = s.push_raw(body.into_bytes(), Some("application/json"), None, None);
    assert_eq!(r.status, 400, "body {:?}", r.body);
    assert!(
        r.text().contains("timestamp"),
        "message should mention timestamp: {:?}",
        r.body
    );
    assert_nothing_stored(&s, "numeric timestamp");
}

#[test]
fn gzip_encoding_with_non_gzip_body_is_rejected() {
    let s = SluiceProcess::start_default();
    let r = s.push_raw(
        proto_push_body(&[bad_stream(base())]),
        Some("application/x-protobuf"),
        Some("gzip"),
        None,
    );
    assert_eq!(r.status, 400, "body {:?}", r.body);
    assert!(!r.text().is_empty());
    assert_nothing_stored(&s, "bad gzip");
}

#[test]
fn push_endpoint_rejects_get() {
    let s = SluiceProcess::start_default();
    let r = s.get("/loki/api/v1/push", &[], None);
    assert_eq!(r.status, 405, "GET on push: {:?}", r.body);
}

#[test]
fn mixed_batch_stores_the_valid_stream_and_names_the_bad_one() {
    let s = SluiceProcess::start_default();
    let b = base();
    let r = s.push_proto(
        &[
            Stream::new(r#"{job="good"}"#, [(b, "good 1"), (b + SEC, "good 2")]),
            Stream::new(r#"{a-b="1"}"#, [(b, "bad")]),
        ],
        None,
    );
    assert_eq!(r.status, 400, "mixed batch: {:?}", r.body);
    assert!(
        r.text()
            .contains("parse error: unexpected character inside braces: '-'"),
        "reply must name the bad stream's error: {:?}",
        r.body
    );
    let got = s.read_all(r#"{job=~".+"}"#, b - SEC, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(
            labels(&[("job", "good")]),
            vec![(b, "good 1".to_string()), (b + SEC, "good 2".to_string())]
        )])
    );
    let r = s.labels(&[], None);
    assert_eq!(r.json(), json!({"status": "success", "data": ["job"]}));
}

#[test]
fn mixed_json_batch_stores_the_valid_stream() {
    let s = SluiceProcess::start_default();
    let b = base();
    let body = json_push(vec![
        json_stream(&[], &[(b, "bad")]),
        json_stream(&[("job", "good")], &[(b, "good json")]),
    ]);
    let r = s.push_json(&body, false, None);
    assert_eq!(
        (r.status, r.text()),
        (400, "error at least one label pair is required per stream")
    );
    let got = s.read_all(r#"{job=~".+"}"#, b - SEC, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(
            labels(&[("job", "good")]),
            vec![(b, "good json".to_string())]
        )])
    );
}

#[test]
fn mixed_batch_reports_the_last_error() {
    let s = SluiceProcess::start_default();
    let b = base();
    let r = s.push_proto(
        &[
            Stream::new(r#"{a-b="1"}"#, [(b, "bad 1")]),
            Stream::new(r#"{job="good"}"#, [(b, "good")]),
            Stream::new("{}", [(b, "bad 2")]),
        ],
        None,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("error at least one label pair is required per stream")
            && !r.text().contains("inside braces"),
        "Loki replies with the last validation error only; got {:?}",
        r.body
    );
    let got = s.read_all(r#"{job=~".+"}"#, b - SEC, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "good")]), vec![(b, "good".to_string())])])
    );
}

#[test]
fn too_old_and_too_new_entries_are_rejected() {
    // loki-compat.md §1 distributor validation table (reject_old_samples_max_age 1w,
    // creation_grace_period 10m).
    let s = SluiceProcess::start_default();
    let now = now_ns();
    let mut f = Failures::new();
    let r = s.push_proto(
        &[Stream::new(
            r#"{job="t"}"#,
            [(now - 8 * 86_400 * SEC, "too old")],
        )],
        None,
    );
    f.resp(
        "entry 8 days old",
        &r,
        400,
        |t| {
            t.starts_with(r#"entry for stream '{job="t"}' has timestamp too old: "#)
                && t.contains(", oldest acceptable timestamp is: ")
        },
        r#"entry for stream '{job="t"}' has timestamp too old: <RFC3339>, oldest acceptable timestamp is: <RFC3339>"#,
    );
    let r = s.push_proto(
        &[Stream::new(r#"{job="t"}"#, [(now + 3600 * SEC, "too new")])],
        None,
    );
    f.resp(
        "entry 1 h in the future",
        &r,
        400,
        |t| t.starts_with(r#"entry for stream '{job="t"}' has timestamp too new: "#),
        r#"entry for stream '{job="t"}' has timestamp too new: <RFC3339>"#,
    );
    let r = s.labels(
        &[("start", "0"), ("end", &(now + 7200 * SEC).to_string())],
        None,
    );
    f.eq("nothing stored", r.json(), json!({"status": "success"}));
    f.finish();
}

/// xorshift64* PRNG: deterministic garbage without extra dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_bodies_never_crash_the_server() {
    let s = SluiceProcess::start_default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut f = Failures::new();
    let content_types = [
        None,
        Some("application/x-protobuf"),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
    ];
    let encodings = [None, Some("gzip"), Some("snappy"), Some("deflate")];
    let mut sent = 0;
    for ct in content_types {
        for ce in encodings {
            for k in 0..6 {
                let n = [0usize, 1, 7, 100, 1000, 5000][k];
                let raw = rng.bytes(n);
                // Alternate: plain garbage, snappy of garbage, gzip of garbage,
                // truncated valid body.
                let body = match k % 4 {
                    0 => raw,
                    1 => snappy(&raw),
                    2 => gzip(&raw),
                    _ => {
                        let good = proto_push_body(&[Stream::new(
                            r#"{job="g"}"#,
                            [(base(), "x".repeat(n))],
                        )]);
                        good[..good.len() / 2].to_vec()
                    }
                };
                let r = s.push_raw(body, ct, ce, None);
                sent += 1;
                f.check(
                    &format!("garbage #{sent} ct={ct:?} ce={ce:?} len={n}"),
                    r.status < 500,
                    format!("5xx: {} {:?}", r.status, r.body),
                );
            }
        }
    }
    // Garbage query strings too.
    for n in [1usize, 5, 50, 300] {
        for _ in 0..3 {
            let q: String = rng
                .bytes(n)
                .iter()
                .map(|b| char::from(32 + b % 95))
                .collect();
            let r = s.query_range(&[("query", q.as_str())], None);
            f.check(
                &format!("garbage query {q:?}"),
                r.status < 500,
                format!("{} {:?}", r.status, r.body),
            );
        }
    }
    let r = s.ready();
    assert_eq!(
        (r.status, r.text()),
        (200, "ready"),
        "server still ready after garbage"
    );
    f.finish();
    // Still fully functional.
    let b = base();
    s.push_proto_ok(
        &[Stream::new(r#"{job="after"}"#, [(b, "still works")])],
        None,
    );
    let got = s.read_all(r#"{job="after"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(
            labels(&[("job", "after")]),
            vec![(b, "still works".to_string())]
        )])
    );
}

#[test]
fn query_parameter_errors() {
    let s = SluiceProcess::start_default();
    let b = base();
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let mut f = Failures::new();
    let exact = |t: &'static str| move |got: &str| got == t;

    let r = s.query_range(
        &[("query", r#"{app="foo""#), ("start", &st), ("end", &en)],
        None,
    );
    let want = "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,";
    f.resp("query_range parse error", &r, 400, exact(want), want);
    let r = s.query(&[("query", r#"{app="foo""#)], None);
    f.resp("instant query parse error", &r, 400, exact(want), want);

    let r = s.query_range(
        &[("query", r#"{a=~".*"}"#), ("start", &st), ("end", &en)],
        None,
    );
    let want = "parse error : queries require at least one regexp or equality matcher";
    f.resp(
        "empty-compatible matcher",
        &r,
        400,
        |t| t.starts_with(want),
        want,
    );

    for lim in ["0", "-1"] {
        let r = s.query_range(
            &[
                ("query", r#"{app="foo"}"#),
                ("start", &st),
                ("end", &en),
                ("limit", lim),
            ],
            None,
        );
        let want = "limit must be a positive value";
        f.resp(&format!("limit={lim}"), &r, 400, exact(want), want);
    }

    let r = s.query_range(
        &[
            ("query", r#"{app="foo"}"#),
            ("start", &st),
            ("end", &en),
            ("direction", "sideways"),
        ],
        None,
    );
    let want = "invalid direction 'sideways'";
    f.resp("direction=sideways", &r, 400, exact(want), want);

    let r = s.query_range(
        &[("query", r#"{app="foo"}"#), ("start", &en), ("end", &st)],
        None,
    );
    let want = "end timestamp must not be before or equal to start time";
    f.resp("end before start", &r, 400, exact(want), want);

    let r = s.query_range(
        &[("query", r#"{app="foo"}"#), ("start", "abc"), ("end", &en)],
        None,
    );
    f.resp(
        "unparsable start",
        &r,
        400,
        |t| t.contains("start"),
        "(mentions 'start')",
    );

    let r = s.query_range(
        &[("query", r#"{app="foo"}"#), ("start", &st), ("end", "abc")],
        None,
    );
    f.resp(
        "unparsable end",
        &r,
        400,
        |t| !t.is_empty(),
        "(non-empty message)",
    );

    let r = s.query(&[("query", r#"{app="foo"}"#), ("time", "abc")], None);
    f.resp(
        "unparsable time",
        &r,
        400,
        |t| !t.is_empty(),
        "(non-empty message)",
    );

    let r = s.query_range(&[("start", &st), ("end", &en)], None);
    f.resp(
        "missing query",
        &r,
        400,
        |t| !t.is_empty(),
        "(non-empty message)",
    );

    let r = s.query_range(
        &[
            ("query", r#"{app="foo"} |~ "(""#),
            ("start", &st),
            ("end", &en),
        ],
        None,
    );
    f.resp(
        "invalid regex in line filter",
        &r,
        400,
        |t| !t.is_empty(),
        "(non-empty message)",
    );
    f.finish();
}

#[test]
fn query_limit_above_max_entries_is_rejected() {
    // loki-compat.md §2: limit > max_entries_limit_per_query (5000).
    let s = SluiceProcess::start_default();
    let r = s.query_range(&[("query", r#"{app="foo"}"#), ("limit", "6000")], None);
    let want = "max entries limit per query exceeded, limit > max_entries_limit (6000 > 5000)";
    assert_eq!((r.status, r.text()), (400, want));
}
