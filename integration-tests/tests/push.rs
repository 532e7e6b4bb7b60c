//! Push API (loki-compat.md §1): protobuf+snappy, JSON, gzip, ordering,
//! duplicates, label canonicalisation.

use sluice_integration_tests::*;

/// A whole-second base timestamp ten minutes ago (well inside the accepted
/// ingestion window and the default query look-back).
fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

fn owned(entries: &[(i64, &str)]) -> Vec<(i64, String)> {
    entries.iter().map(|(t, l)| (*t, l.to_string())).collect()
}

#[test]
fn protobuf_push_of_several_streams_every_line_readable() {
    let s = SluiceProcess::start_default();
    let b = base();
    let dev: Vec<(i64, String)> = (0..5)
        .map(|i| (b + i * SEC + 1, format!("dev line {i}")))
        .collect();
    let prod: Vec<(i64, String)> = (0..7)
        .map(|i| {
            (
                b + i * SEC + 2,
                format!("prod line {i} with unicode héllo ✓"),
            )
        })
        .collect();
    let other = vec![(b + 3, "other only".to_string())];
    s.push_proto_ok(
        &[
            Stream::new(r#"{job="push", env="dev"}"#, dev.clone()),
            Stream::new(r#"{job="push", env="prod", team="core"}"#, prod.clone()),
            Stream::new(r#"{job="other"}"#, other.clone()),
        ],
        None,
    );

    let mut expected = StreamSet::new();
    expected.insert(labels(&[("job", "push"), ("env", "dev")]), dev.clone());
    expected.insert(
        labels(&[("job", "push"), ("env", "prod"), ("team", "core")]),
        prod.clone(),
    );
    expected.insert(labels(&[("job", "other")]), other.clone());
    let got = s.read_all(r#"{job=~"push|other"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got, expected,
        "all three streams, every line, forward order"
    );

    // Each stream on its own.
    let got = s.read_all(r#"{job="push", env="dev"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "push"), ("env", "dev")]), dev)])
    );
    let got = s.read_all(r#"{job="other"}"#, b, b + 60 * SEC, None);
    assert_eq!(got, StreamSet::from([(labels(&[("job", "other")]), other)]));
}

#[test]
fn protobuf_push_in_several_requests_accumulates() {
    let s = SluiceProcess::start_default();
    let b = base();
    for batch in 0..4i64 {
        let entries: Vec<(i64, String)> = (0..3)
            .map(|i| {
                (
                    b + (batch * 3 + i) * SEC,
                    format!("batch {batch} entry {i}"),
                )
            })
            .collect();
        s.push_proto_ok(&[Stream::new(r#"{job="batches"}"#, entries)], None);
    }
    let got = s.read_all(r#"{job="batches"}"#, b, b + 60 * SEC, None);
    let expected: Vec<(i64, String)> = (0..12)
        .map(|k| (b + k * SEC, format!("batch {} entry {}", k / 3, k % 3)))
        .collect();
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "batches")]), expected)])
    );
}

#[test]
fn protobuf_push_content_type_and_encoding_variants() {
    let s = SluiceProcess::start_default();
    let b = base();
    let mut f = Failures::new();
    let bodies = [
        ("no content-type", None, None, "no-ct"),
        (
            "application/x-protobuf",
            Some("application/x-protobuf"),
            None,
            "xproto",
        ),
        (
            "content-encoding snappy (no-op)",
            Some("application/x-protobuf"),
            Some("snappy"),
            "ce-snappy",
        ),
        (
            "content-encoding gzip",
            Some("application/x-protobuf"),
            Some("gzip"),
            "ce-gzip",
        ),
        (
            "content-encoding deflate (raw)",
            Some("application/x-protobuf"),
            Some("deflate"),
            "ce-deflate",
        ),
    ];
    for (i, (what, ct, ce, job)) in bodies.iter().enumerate() {
        let stream = Stream::new(
            &format!("{{job=\"{job}\"}}"),
            [(b + i as i64 * SEC, format!("line via {what}"))],
        );
        let body = proto_push_body(&[stream]);
        let body = match ce {
            Some("gzip") => gzip(&body),
            Some("deflate") => {
                use std::io::Write;
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&body).unwrap();
                e.finish().unwrap()
            }
            _ => body,
        };
        let r = s.push_raw(body, *ct, *ce, None);
        f.resp(what, &r, 204, |b| b.is_empty(), "(empty body)");
        let got = s.read_all(&format!("{{job=\"{job}\"}}"), b, b + 60 * SEC, None);
        f.eq(
            &format!("{what}: read back"),
            got,
            StreamSet::from([(
                labels(&[("job", job)]),
                vec![(b + i as i64 * SEC, format!("line via {what}"))],
            )]),
        );
    }
    f.finish();
}

#[test]
fn json_push_is_readable() {
    let s = SluiceProcess::start_default();
    let b = base();
    let body = json_push(vec![
        json_stream(
            &[("job", "json"), ("env", "dev")],
            &[(b + 1, "json one"), (b + 2 * SEC, "json two")],
        ),
        json_stream(
            &[("job", "json"), ("env", "prod")],
            &[(b + SEC, "json three")],
        ),
    ]);
    let r = s.push_json(&body, false, None);
    assert_eq!((r.status, r.text()), (204, ""), "JSON push");
    let got = s.read_all(r#"{job="json"}"#, b, b + 60 * SEC, None);
    let expected = StreamSet::from([
        (
            labels(&[("job", "json"), ("env", "dev")]),
            owned(&[(b + 1, "json one"), (b + 2 * SEC, "json two")]),
        ),
        (
            labels(&[("job", "json"), ("env", "prod")]),
            owned(&[(b + SEC, "json three")]),
        ),
    ]);
    assert_eq!(got, expected);
}

#[test]
fn gzip_json_push_is_readable() {
    let s = SluiceProcess::start_default();
    let b = base();
    let lines: Vec<String> = (0..50)
        .map(|i| format!("gzipped json line {i} {}", "x".repeat(i)))
        .collect();
    let entries: Vec<(i64, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (b + i as i64 * 1000, l.as_str()))
        .collect();
    let body = json_push(vec![json_stream(&[("job", "gz")], &entries)]);
    let r = s.push_json(&body, true, None);
    assert_eq!((r.status, r.text()), (204, ""), "gzip JSON push");
    let got = s.read_all(r#"{job="gz"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "gz")]), owned(&entries))])
    );
}

#[test]
fn json_content_type_with_parameters_is_json() {
    let s = SluiceProcess::start_default();
    let b = base();
    let body = json_push(vec![json_stream(
        &[("job", "charset")],
        &[(b, "with charset")],
    )]);
    let r = s.push_raw(
        serde_json::to_vec(&body).unwrap(),
        Some("application/json; charset=utf-8"),
        None,
        None,
    );
    assert_eq!(
        (r.status, r.text()),
        (204, ""),
        "application/json; charset=utf-8 is JSON"
    );
    let got = s.read_all(r#"{job="charset"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "charset")]), owned(&[(b, "with charset")]))])
    );
}

#[test]
fn json_unknown_keys_are_ignored() {
    let s = SluiceProcess::start_default();
    let b = base();
    let body = json!({
        "extra_top": 1,
        "streams": [{"stream": {"job": "unk"}, "values": [[b.to_string(), "kept"]], "extra": "x"}]
    });
    let r = s.push_json(&body, false, None);
    assert_eq!((r.status, r.text()), (204, ""));
    let got = s.read_all(r#"{job="unk"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "unk")]), owned(&[(b, "kept")]))])
    );
}

#[test]
fn out_of_order_entries_are_accepted_and_read_back_sorted() {
    let s = SluiceProcess::start_default();
    let b = base();
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="ooo"}"#,
            [
                (b + 5 * SEC, "five"),
                (b + SEC, "one"),
                (b + 3 * SEC, "three"),
            ],
        )],
        None,
    );
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="ooo"}"#,
            [(b + 2 * SEC, "two"), (b + 4 * SEC, "four")],
        )],
        None,
    );
    let asc = owned(&[
        (b + SEC, "one"),
        (b + 2 * SEC, "two"),
        (b + 3 * SEC, "three"),
        (b + 4 * SEC, "four"),
        (b + 5 * SEC, "five"),
    ]);
    let got = s.read_all(r#"{job="ooo"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "ooo")]), asc.clone())]),
        "forward"
    );

    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let r = s.query_range(
        &[
            ("query", r#"{job="ooo"}"#),
            ("start", &st),
            ("end", &en),
            ("direction", "backward"),
        ],
        None,
    );
    let mut desc = asc;
    desc.reverse();
    assert_eq!(
        parse_streams(&r.ok_json()),
        StreamSet::from([(labels(&[("job", "ooo")]), desc)]),
        "backward"
    );
}

#[test]
fn duplicate_of_previous_entry_is_dropped() {
    let s = SluiceProcess::start_default();
    let b = base();
    let t = b + SEC;
    // Second entry is identical (ts and line) to the previous accepted one: dropped.
    // Third has the same ts but another line: kept.
    s.push_proto_ok(
        &[Stream::new(
            r#"{job="dup"}"#,
            [(t, "a"), (t, "a"), (t, "b")],
        )],
        None,
    );
    // Identical to the stream's previous accepted entry ("b"), in a later request: dropped.
    s.push_proto_ok(&[Stream::new(r#"{job="dup"}"#, [(t, "b")])], None);
    // Same line, different ts: kept.
    s.push_proto_ok(&[Stream::new(r#"{job="dup"}"#, [(t + 1, "b")])], None);
    let got = s.read_all(r#"{job="dup"}"#, b, b + 60 * SEC, None);
    let mut entries = got
        .get(&labels(&[("job", "dup")]))
        .cloned()
        .unwrap_or_default();
    entries.sort();
    assert_eq!(got.len(), 1, "one stream: {got:?}");
    assert_eq!(entries, owned(&[(t, "a"), (t, "b"), (t + 1, "b")]));
}

#[test]
fn labels_are_canonicalised() {
    let s = SluiceProcess::start_default();
    let b = base();
    // Same label set written four ways: unsorted, no spaces, with an empty
    // label (dropped), single-quoted / backquoted values.
    s.push_proto_ok(
        &[
            Stream::new(r#"{b="2", a="1"}"#, [(b + 1, "one")]),
            Stream::new(r#"{a="1",b="2"}"#, [(b + 2, "two")]),
            Stream::new(r#"{a="1", b="2", c=""}"#, [(b + 3, "three")]),
            Stream::new("{a='1', b=`2`}", [(b + 4, "four")]),
        ],
        None,
    );
    let got = s.read_all(r#"{a="1"}"#, b, b + 60 * SEC, None);
    assert_eq!(
        got,
        StreamSet::from([(
            labels(&[("a", "1"), ("b", "2")]),
            owned(&[
                (b + 1, "one"),
                (b + 2, "two"),
                (b + 3, "three"),
                (b + 4, "four")
            ])
        )])
    );
}

#[test]
fn lines_are_html_escaped_in_json_output() {
    let s = SluiceProcess::start_default();
    let b = base();
    let line = r#"<b>bold</b> "quoted" \ back"#;
    s.push_proto_ok(&[Stream::new(r#"{job="esc"}"#, [(b, line)])], None);
    let (st, en) = (b.to_string(), (b + 60 * SEC).to_string());
    let r = s.query_range(
        &[("query", r#"{job="esc"}"#), ("start", &st), ("end", &en)],
        None,
    );
    let v = r.ok_json();
    assert_eq!(
        parse_streams(&v),
        StreamSet::from([(labels(&[("job", "esc")]), owned(&[(b, line)]))])
    );
    assert!(
        r.body.contains(r"\u003cb\u003e") || r.body.contains(r"\u003cb>"),
        "'<' must be written as \\u003c (Go HTML-safe JSON); body: {}",
        r.body
    );
    assert!(!r.body.contains("<b>"), "raw '<' in body: {}", r.body);
}

#[test]
fn large_push_is_accepted() {
    let s = SluiceProcess::start_default();
    let b = base();
    // ~1 MiB body: 2000 lines of ~500 bytes over 10 streams (promtail's batch size).
    let streams: Vec<Stream> = (0..10)
        .map(|k| {
            Stream::new(
                &format!("{{job=\"big\", shard=\"{k}\"}}"),
                (0..200).map(move |i| {
                    (
                        b + i * 1_000_000 + k,
                        format!("{k}-{i}-{}", "y".repeat(500)),
                    )
                }),
            )
        })
        .collect();
    s.push_proto_ok(&streams, None);
    let got = s.read_all(r#"{job="big"}"#, b, b + 60 * SEC, None);
    assert_eq!(got.len(), 10);
    assert!(
        got.values().all(|v| v.len() == 200),
        "every stream has its 200 entries"
    );
}
