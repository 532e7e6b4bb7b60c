//! Limits: one test per rejection reason, each checking the status code,
//! Loki's message, `loki_discarded_samples_total` /
//! `loki_discarded_bytes_total` for the reason and tenant, and that a
//! valid neighbour in the same push is stored (except where Loki refuses
//! the whole push: the tenant rate limits). Then tenant isolation under
//! overload, per-tenant overrides from the runtime config file with hot
//! reload, and `/runtime_config`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_integration_tests::*;

const TENANT: &str = "team-a";

fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// A server with auth enabled and `yaml` appended to its config.
fn server(yaml: &str) -> SluiceProcess {
    SluiceProcess::start(SluiceOptions::new().auth(true).extra_yaml(yaml))
}

/// `(samples, bytes)` discarded for `reason` and `tenant`.
fn discarded(s: &SluiceProcess, reason: &str, tenant: &str) -> (f64, f64) {
    let text = s.metrics_text();
    let value = |name: &str| {
        prom::find(&text, name, &[("reason", reason), ("tenant", tenant)]).unwrap_or(0.0)
    };
    (
        value("loki_discarded_samples_total"),
        value("loki_discarded_bytes_total"),
    )
}

/// Go's `time.Time.String()` in UTC, as Loki's ingester messages print
/// timestamps: `2026-11-24 04:25:10.374934517 +0000 UTC`.
fn go_time(ns: i64) -> String {
    let rfc = rfc3339_nano(ns);
    let (date_time, fraction) = rfc.trim_end_matches('Z').split_once('.').expect("fraction");
    let fraction = fraction.trim_end_matches('0');
    let date_time = date_time.replace('T', " ");
    if fraction.is_empty() {
        format!("{date_time} +0000 UTC")
    } else {
        format!("{date_time}.{fraction} +0000 UTC")
    }
}

/// RFC 3339 in whole seconds, as Loki's distributor messages print them.
fn rfc3339_seconds(ns: i64) -> String {
    format!("{}Z", &rfc3339_nano(ns)[..19])
}

/// One rejection: the config that provokes it, the offending stream
/// (pushed after a valid neighbour), and what must come back.
struct Rejection<'a> {
    yaml: &'a str,
    bad: Stream,
    status: u16,
    message: String,
    reason: &'a str,
    samples: f64,
    bytes: f64,
}

/// Pushes `[neighbour, bad]`, then checks the reply, that the neighbour is
/// stored and nothing of `bad`'s refused entries is, and the discard
/// counters (for this tenant only).
fn assert_rejection(case: Rejection<'_>) {
    let s = server(case.yaml);
    let b = base();
    let neighbour = Stream::new(r#"{job="neighbour"}"#, [(b, "kept 1"), (b + SEC, "kept 2")]);
    let mut f = Failures::new();
    let r = s.push_proto(&[neighbour, case.bad.clone()], Some(TENANT));
    f.resp(
        "reply",
        &r,
        case.status,
        |text| text == case.message,
        &case.message,
    );
    f.eq(
        "the valid neighbour is stored",
        s.read_all(
            r#"{job="neighbour"}"#,
            b - 3 * 3600 * SEC,
            b + 60 * SEC,
            Some(TENANT),
        ),
        StreamSet::from([(
            labels(&[("job", "neighbour")]),
            vec![(b, "kept 1".to_string()), (b + SEC, "kept 2".to_string())],
        )]),
    );
    f.eq(
        &format!("discarded {{reason={:?}, tenant={TENANT:?}}}", case.reason),
        discarded(&s, case.reason, TENANT),
        (case.samples, case.bytes),
    );
    f.eq(
        "nothing discarded for another tenant",
        discarded(&s, case.reason, "someone-else"),
        (0.0, 0.0),
    );
    f.finish();
}

#[test]
fn invalid_labels_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "",
        bad: Stream::new(r#"{a-b="1"}"#, [(b, "bad labels")]),
        status: 400,
        message: "1:3: parse error: unexpected character inside braces: '-'".to_string(),
        reason: "invalid_labels",
        samples: 1.0,
        bytes: 10.0,
    });
}

#[test]
fn missing_labels_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "",
        bad: Stream::new("{}", [(b, "no labels"), (b + 1, "none")]),
        status: 400,
        message: "error at least one label pair is required per stream".to_string(),
        reason: "missing_labels",
        samples: 2.0,
        bytes: 13.0,
    });
}

#[test]
fn too_many_label_names_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "limits_config:\n  max_label_names_per_series: 2\n",
        bad: Stream::new(r#"{a="1", b="2", c="3"}"#, [(b, "three")]),
        status: 400,
        message: r#"entry for stream '{a="1", b="2", c="3"}' has 3 label names; limit 2"#
            .to_string(),
        reason: "max_label_names_per_series",
        samples: 1.0,
        bytes: 5.0,
    });
}

#[test]
fn long_label_names_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "limits_config:\n  max_label_name_length: 5\n",
        bad: Stream::new(r#"{abcdefgh="1"}"#, [(b, "long name")]),
        status: 400,
        message: r#"stream '{abcdefgh="1"}' has label name too long: 'abcdefgh'"#.to_string(),
        reason: "label_name_too_long",
        samples: 1.0,
        bytes: 9.0,
    });
}

#[test]
fn long_label_values_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        // "neighbour" is nine bytes: the neighbour just fits.
        yaml: "limits_config:\n  max_label_value_length: 9\n",
        bad: Stream::new(r#"{job="abcdefghij"}"#, [(b, "long value")]),
        status: 400,
        message: r#"stream '{job="abcdefghij"}' has label value too long: 'abcdefghij'"#
            .to_string(),
        reason: "label_value_too_long",
        samples: 1.0,
        bytes: 10.0,
    });
}

#[test]
fn duplicate_label_names_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "",
        bad: Stream::new(r#"{a="1", a="2"}"#, [(b, "dup")]),
        status: 400,
        message: r#"stream '{a="1", a="2"}' has duplicate label name: 'a'"#.to_string(),
        reason: "duplicate_label_names",
        samples: 1.0,
        bytes: 3.0,
    });
}

#[test]
fn too_old_entries_are_rejected_and_counted() {
    let b = base();
    let old = b - 8 * 86_400 * SEC;
    let s = Stream::new(r#"{job="bad"}"#, [(old, "eight days old")]);
    // The oldest acceptable time is computed at the server's "now"; check
    // everything but its exact second.
    let server = server("");
    let r = server.push_proto(
        &[Stream::new(r#"{job="neighbour"}"#, [(b, "kept")]), s],
        Some(TENANT),
    );
    let mut f = Failures::new();
    let prefix = format!(
        r#"entry for stream '{{job="bad"}}' has timestamp too old: {}, oldest acceptable timestamp is: "#,
        rfc3339_seconds(old)
    );
    f.resp(
        "reply",
        &r,
        400,
        |text| text.starts_with(&prefix) && text.len() == prefix.len() + 20,
        &format!("{prefix}<RFC3339>"),
    );
    f.eq(
        "neighbour stored",
        server
            .read_all(r#"{job="neighbour"}"#, b - SEC, b + SEC, Some(TENANT))
            .len(),
        1,
    );
    f.eq(
        "discarded",
        discarded(&server, "greater_than_max_sample_age", TENANT),
        (1.0, 14.0),
    );
    f.finish();
}

#[test]
fn future_entries_are_rejected_and_counted() {
    let b = base();
    let future = now_ns() / SEC * SEC + 3600 * SEC;
    assert_rejection(Rejection {
        yaml: "",
        bad: Stream::new(r#"{job="bad"}"#, [(future, "from the future")]),
        status: 400,
        message: format!(
            r#"entry for stream '{{job="bad"}}' has timestamp too new: {}"#,
            rfc3339_seconds(future)
        ),
        reason: "too_far_in_future",
        samples: 1.0,
        bytes: 15.0,
    });
    let _ = b;
}

#[test]
fn long_lines_are_rejected_and_counted() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "limits_config:\n  max_line_size: 10\n",
        bad: Stream::new(
            r#"{job="bad"}"#,
            [(b, "short"), (b + 1, "this line is too long")],
        ),
        status: 400,
        message: r#"Max entry size '10' bytes exceeded for stream '{job="bad"}' while adding an entry with length '21' bytes"#
            .to_string(),
        reason: "line_too_long",
        samples: 1.0,
        bytes: 21.0,
    });
}

#[test]
fn long_lines_are_truncated_when_configured() {
    let s = server("limits_config:\n  max_line_size: 1KB\n  max_line_size_truncate: true\n");
    let b = base();
    let long = "x".repeat(1500);
    s.push_proto_ok(
        &[Stream::new(r#"{job="t"}"#, [(b, long.as_str())])],
        Some(TENANT),
    );
    let got = s.read_all(r#"{job="t"}"#, b, b + SEC, Some(TENANT));
    assert_eq!(
        got,
        StreamSet::from([(labels(&[("job", "t")]), vec![(b, "x".repeat(1024))])])
    );
}

#[test]
fn new_streams_over_the_stream_limit_are_rejected_and_counted() {
    let b = base();
    // One ingester with replication factor 1: its share of the global
    // limit is the whole of it.
    assert_rejection(Rejection {
        yaml: "limits_config:\n  max_global_streams_per_user: 1\n",
        bad: Stream::new(r#"{job="second"}"#, [(b, "one stream too many")]),
        status: 429,
        message: "Maximum active stream limit exceeded, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased".to_string(),
        reason: "stream_limit",
        samples: 1.0,
        bytes: 19.0,
    });
}

#[test]
fn per_stream_rate_limit_rejects_entries_and_counts_them() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "limits_config:\n  per_stream_rate_limit: 20B\n  per_stream_rate_limit_burst: 20B\n",
        bad: Stream::new(
            r#"{job="bad"}"#,
            [(b, "0123456789"), (b + 1, "0123456789"), (b + 2, "0123456789")],
        ),
        status: 429,
        message: format!(
            "entry with timestamp {} ignored, reason: 'Per stream rate limit exceeded (limit: 20B/sec) while attempting to ingest for stream '{{job=\"bad\"}}' totaling 10B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased' for stream: {{job=\"bad\"}},\nuser '{TENANT}', total ignored: 1 out of 3",
            go_time(b + 2)
        ),
        reason: "per_stream_rate_limit",
        samples: 1.0,
        bytes: 10.0,
    });
}

#[test]
fn out_of_order_entries_are_rejected_with_ordered_writes() {
    let b = base();
    assert_rejection(Rejection {
        yaml: "limits_config:\n  unordered_writes: false\n",
        bad: Stream::new(
            r#"{job="bad"}"#,
            [(b + 2 * SEC, "second"), (b + SEC, "first, late"), (b + 2 * SEC, "same time")],
        ),
        status: 400,
        message: format!(
            "entry with timestamp {} ignored, reason: 'entry out of order' for stream: {{job=\"bad\"}},\nuser '{TENANT}', total ignored: 1 out of 3",
            go_time(b + SEC)
        ),
        reason: "out_of_order",
        samples: 1.0,
        bytes: 11.0,
    });
}

#[test]
fn entries_too_far_behind_are_rejected_with_unordered_writes() {
    let b = base();
    // max_chunk_age is 2h: entries more than 1h behind the newest are refused.
    assert_rejection(Rejection {
        yaml: "",
        bad: Stream::new(
            r#"{job="bad"}"#,
            [(b, "newest"), (b - 30 * 60 * SEC, "half an hour back"), (b - 2 * 3600 * SEC, "two hours back")],
        ),
        status: 400,
        message: format!(
            "entry with timestamp {} ignored, reason: 'entry too far behind, oldest acceptable timestamp is: {}' for stream: {{job=\"bad\"}},\nuser '{TENANT}', total ignored: 1 out of 3",
            go_time(b - 2 * 3600 * SEC),
            rfc3339_seconds(b - 3600 * SEC)
        ),
        reason: "too_far_behind",
        samples: 1.0,
        bytes: 14.0,
    });
}

#[test]
fn tenant_byte_rate_refuses_the_whole_push_with_429() {
    // 0.001 MiB = 1048 bytes/s (Loki's example), burst 0.002 MiB = 2097 bytes.
    let s =
        server("limits_config:\n  ingestion_rate_mb: 0.001\n  ingestion_burst_size_mb: 0.002\n");
    let b = base();
    let line = "y".repeat(1000);
    let batch = |n: i64| {
        vec![
            Stream::new(r#"{job="a"}"#, [(b + n, line.as_str())]),
            Stream::new(r#"{job="b"}"#, [(b + n, line.as_str())]),
        ]
    };
    s.push_proto_ok(&batch(0), Some(TENANT));
    let r = s.push_proto(&batch(1), Some(TENANT));
    let want = format!("Ingestion rate limit exceeded for user {TENANT} (limit: 1048 bytes/sec) while attempting to ingest '2' lines totaling '2000' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased");
    let mut f = Failures::new();
    f.resp("second push", &r, 429, |text| text == want, &want);
    f.eq(
        "discarded",
        discarded(&s, "rate_limited", TENANT),
        (2.0, 2000.0),
    );
    f.eq(
        "only the first push is stored",
        s.read_all(r#"{job=~"a|b"}"#, b, b + SEC, Some(TENANT))
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        2,
    );
    // Another tenant has its own bucket.
    let r = s.push_proto(&batch(2), Some("other-team"));
    f.resp("another tenant", &r, 204, str::is_empty, "");
    f.finish();
}

#[test]
fn tenant_line_rate_refuses_the_whole_push_with_429() {
    let s = server("distributor:\n  rate_limit: 5\n  rate_limit_burst: 5\n");
    let b = base();
    let lines: Vec<(i64, String)> = (0..6).map(|i| (b + i, format!("line {i}"))).collect();
    let r = s.push_proto(
        &[Stream::new(r#"{job="lines"}"#, lines.clone())],
        Some(TENANT),
    );
    let want = format!("Ingestion rate limit exceeded for user {TENANT} (limit: 5 lines/sec) while attempting to ingest '6' lines totaling '36' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased");
    let mut f = Failures::new();
    f.resp("six lines at once", &r, 429, |text| text == want, &want);
    f.eq(
        "discarded",
        discarded(&s, "rate_limited", TENANT),
        (6.0, 36.0),
    );
    let r = s.push_proto(
        &[Stream::new(r#"{job="lines"}"#, lines[..5].to_vec())],
        Some(TENANT),
    );
    f.resp("five lines", &r, 204, str::is_empty, "");
    f.finish();
}

/// One tenant pushes ten times its rate while another pushes well within
/// its own: the first gets 429s, the second is never refused and all its
/// data is stored. The second tenant's push latencies with and without the
/// noise are printed (measured, not asserted).
#[test]
fn an_overloading_tenant_never_hurts_another() {
    // 64 KiB/s and 64 KiB burst per tenant.
    let s =
        server("limits_config:\n  ingestion_rate_mb: 0.0625\n  ingestion_burst_size_mb: 0.0625\n");
    let b = base();
    let quiet_push = |round: i64| {
        let line = format!("quiet line {round} {}", "q".repeat(200));
        let started = Instant::now();
        let r = s.push_proto(
            &[Stream::new(r#"{job="quiet"}"#, [(b + round, line)])],
            Some("quiet"),
        );
        (r, started.elapsed())
    };
    // The same cadence alone and under noise, so that the comparison is
    // not skewed by idle wake-ups.
    let mut alone = Vec::new();
    for round in 0..20 {
        let (r, took) = quiet_push(round);
        assert_eq!((r.status, r.text()), (204, ""), "quiet push {round} alone");
        alone.push(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    let noisy_done = AtomicBool::new(false);
    let (noisy_ok, noisy_refused, loaded) = std::thread::scope(|scope| {
        let noisy = scope.spawn(|| {
            // 640 KiB/s: 64 KiB every 100 ms, for 3 s.
            let line = "n".repeat(1024);
            let (mut ok, mut refused) = (0, 0);
            for round in 0..30 {
                let entries: Vec<(i64, &str)> = (0..64)
                    .map(|i| (b + round * 64 + i, line.as_str()))
                    .collect();
                let started = Instant::now();
                let r = s.push_proto(&[Stream::new(r#"{job="noisy"}"#, entries)], Some("noisy"));
                match r.status {
                    204 => ok += 1,
                    429 => refused += 1,
                    other => panic!("noisy tenant got {other}: {}", r.body),
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(started.elapsed()));
            }
            noisy_done.store(true, Ordering::SeqCst);
            (ok, refused)
        });
        let mut loaded = Vec::new();
        let mut round = 20;
        while !noisy_done.load(Ordering::SeqCst) {
            let (r, took) = quiet_push(round);
            assert_eq!(
                (r.status, r.text()),
                (204, ""),
                "quiet push {round} during the noise must never be refused"
            );
            loaded.push(took);
            round += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
        let (ok, refused) = noisy.join().expect("noisy thread");
        (ok, refused, loaded)
    });
    assert!(
        noisy_refused > 0,
        "the noisy tenant must be refused some pushes"
    );
    assert!(
        noisy_ok > 0,
        "its burst and rate still let some pushes through"
    );
    let quiet_rounds = 20 + loaded.len() as i64;
    let stored = s.read_all(r#"{job="quiet"}"#, b, b + quiet_rounds, Some("quiet"));
    assert_eq!(
        stored.values().map(Vec::len).sum::<usize>(),
        quiet_rounds as usize,
        "every quiet push is stored"
    );
    assert_eq!(discarded(&s, "rate_limited", "quiet"), (0.0, 0.0));
    let (refused_lines, _) = discarded(&s, "rate_limited", "noisy");
    assert_eq!(refused_lines, f64::from(noisy_refused) * 64.0);
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (mut alone, mut loaded) = (alone, loaded);
    eprintln!(
        "quiet tenant push latency: median {:?} alone ({} pushes), {:?} while the noisy tenant pushed 10x its rate ({} pushes; noisy: {noisy_ok} accepted, {noisy_refused} refused)",
        median(&mut alone),
        alone.len(),
        median(&mut loaded),
        loaded.len()
    );
}

/// Writes `text` to `path` atomically (rename), so a reload never sees a
/// half-written file.
fn write_atomically(path: &std::path::Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).expect("write runtime config");
    std::fs::rename(&temporary, path).expect("rename runtime config");
}

#[test]
fn runtime_overrides_apply_per_tenant_and_reload_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().join("runtime.yaml");
    write_atomically(
        &runtime,
        "overrides:\n  small:\n    max_line_size: 10\n    max_label_names_per_series: 3\n",
    );
    let s = server(&format!(
        "runtime_config:\n  file: {}\n  period: 200ms\n",
        runtime.display()
    ));
    let b = base();
    let long = [(b, "longer than ten bytes")];
    let mut f = Failures::new();

    let r = s.push_proto(&[Stream::new(r#"{job="x"}"#, long)], Some("small"));
    f.resp(
        "tenant with an override",
        &r,
        400,
        |text| text.starts_with("Max entry size '10' bytes exceeded"),
        "Max entry size '10' bytes exceeded …",
    );
    let r = s.push_proto(&[Stream::new(r#"{job="x"}"#, long)], Some("large"));
    f.resp("tenant on the defaults", &r, 204, str::is_empty, "");

    let shown = s.get("/runtime_config", &[], None);
    f.check(
        "/runtime_config shows every limit of the tenant",
        shown.status == 200
            && shown.body.contains("small:")
            && shown.body.contains("max_line_size: 10B")
            && shown.body.contains("ingestion_rate_mb: 4.0"),
        &shown.body,
    );
    let diff = s.get("/runtime_config", &[("mode", "diff")], None);
    f.eq(
        "/runtime_config?mode=diff shows only the differences",
        (diff.status, diff.body.as_str()),
        (
            200,
            "overrides:\n  small:\n    max_label_names_per_series: 3\n    max_line_size: 10B\n",
        ),
    );
    let bad_mode = s.get("/runtime_config", &[("mode", "bogus")], None);
    f.eq("unknown mode", bad_mode.status, 400);

    // Raise the limit: the change applies without a restart.
    write_atomically(&runtime, "overrides:\n  small:\n    max_line_size: 1KB\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let diff = s.get("/runtime_config", &[("mode", "diff")], None);
        if diff.body == "overrides:\n  small:\n    max_line_size: 1KiB\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload not seen: {:?}",
            diff.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = s.push_proto(&[Stream::new(r#"{job="x"}"#, long)], Some("small"));
    f.resp("after the reload", &r, 204, str::is_empty, "");

    // A broken file keeps the last good limits and says so in a metric.
    write_atomically(&runtime, "overrides:\n  small:\n    max_line_sise: 5\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while prom::find(
        &s.metrics_text(),
        "loki_runtime_config_last_reload_successful",
        &[],
    ) != Some(0.0)
    {
        assert!(Instant::now() < deadline, "failed reload not reported");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = s.push_proto(
        &[Stream::new(r#"{job="x"}"#, [(b + 1, "still within 1KiB")])],
        Some("small"),
    );
    f.resp("a broken file changes nothing", &r, 204, str::is_empty, "");
    f.check(
        "the error is logged with the key",
        s.stderr_text().contains("max_line_sise"),
        "stderr names the unknown key",
    );
    f.finish();
}

#[test]
fn a_bad_runtime_config_file_fails_startup_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = dir.path().join("runtime.yaml");
    write_atomically(&runtime, "overrides:\n  t:\n    ingestion_rate_mbb: 1\n");
    let mut s = SluiceProcess::spawn(
        SluiceOptions::new()
            .extra_yaml(&format!("runtime_config:\n  file: {}\n", runtime.display())),
    );
    let status = s.wait_exit(Duration::from_secs(20)).expect("sluice exits");
    assert!(!status.success());
    let stderr = s.stderr_text();
    assert!(
        stderr.contains("overrides.t") && stderr.contains("ingestion_rate_mbb"),
        "{stderr}"
    );
}
