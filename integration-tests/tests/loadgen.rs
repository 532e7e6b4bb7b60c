//! The load tool and the canary against the real binary: what
//! `sluice-loadgen push` reports as accepted is what queries count, query
//! mode answers, and `sluice canary` reads every line back.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_integration_tests::*;

/// Runs a command to completion within `timeout` (panics past it).
fn run_bounded(mut command: Command, timeout: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done_tx.send(());
        output
    });
    if done_rx.recv_timeout(timeout).is_err() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("{command:?} did not finish within {timeout:?}");
    }
    waiter.join().expect("waiter").expect("output")
}

fn loadgen(args: &[&str]) -> Value {
    let mut command = Command::new(loadgen_bin());
    command.args(args).arg("--json");
    let output = run_bounded(command, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "sluice-loadgen {args:?} failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("report is not JSON ({err}): {stdout}"))
}

/// The single value of an instant metric query (0 when the vector is empty).
fn instant_value(s: &SluiceProcess, query: &str, tenant: &str) -> f64 {
    let time = (now_ns() + 5 * SEC).to_string();
    let v = s
        .query(&[("query", query), ("time", &time)], Some(tenant))
        .ok_json();
    let result = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    match result.as_slice() {
        [] => 0.0,
        [sample] => sample["value"][1]
            .as_str()
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("bad sample {sample}")),
        more => panic!("expected one sample, got {}: {v}", more.len()),
    }
}

#[test]
fn pushed_lines_all_arrive_and_query_mode_answers() {
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let addr = s.http_url();
    let report = loadgen(&[
        "push",
        "--addr",
        &addr,
        "--lines",
        "12000",
        "--batch-size",
        "500",
        "--concurrency",
        "4",
        "--streams",
        "9",
        "--tenants",
        "2",
        "--tenant-prefix",
        "it",
    ]);
    assert_eq!(report["lines_sent"], 12000, "{report}");
    assert_eq!(report["lines_accepted"], 12000, "{report}");
    assert_eq!(report["lines_failed"], 0, "{report}");
    assert_eq!(report["requests"], 24, "{report}");
    assert_eq!(report["latency"]["count"], 24, "{report}");
    assert!(
        report["errors"].as_object().is_some_and(|e| e.is_empty()),
        "{report}"
    );
    let average = report["average_line_bytes"].as_f64().expect("average");
    assert!((150.0..400.0).contains(&average), "{report}");

    let mut failures = Failures::new();
    let mut total = 0.0;
    let mut series = 0;
    for tenant in ["it-0", "it-1"] {
        total += instant_value(&s, r#"sum(count_over_time({job="loadgen"}[1h]))"#, tenant);
        let r = s.series(&[("match[]", r#"{job="loadgen"}"#)], Some(tenant));
        series += r.ok_json()["data"].as_array().map_or(0, Vec::len);
        // Every JSON and logfmt line parses with Sluice's own parsers.
        for (format, parser) in [("json", "json"), ("logfmt", "logfmt")] {
            let all = instant_value(
                &s,
                &format!(r#"sum(count_over_time({{job="loadgen", format="{format}"}}[1h]))"#),
                tenant,
            );
            let parsed = instant_value(
                &s,
                &format!(
                    r#"sum(count_over_time({{job="loadgen", format="{format}"}} | {parser} | __error__="" [1h]))"#
                ),
                tenant,
            );
            failures.check(
                &format!("{tenant} {format} lines parse"),
                all > 0.0 && parsed == all,
                format!("{parsed} of {all} parsed"),
            );
        }
    }
    failures.eq("lines counted by queries", total, 12000.0);
    failures.eq("series over both tenants", series, 9);
    failures.finish();

    let report = loadgen(&[
        "query",
        "--addr",
        &addr,
        "--tenant",
        "it-0",
        "--duration",
        "2s",
        "--concurrency",
        "2",
        "--query",
        r#"{job="loadgen"} |= "request""#,
        "--query",
        r#"sum by (app) (count_over_time({job="loadgen"}[1m]))"#,
    ]);
    let queries = report["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 2, "{report}");
    for query in queries {
        assert_eq!(query["errors"], 0, "{report}");
        assert!(query["ok"].as_u64().is_some_and(|ok| ok > 0), "{report}");
        assert!(
            query["latency"]["p50_ms"].as_f64().is_some_and(|p| p > 0.0),
            "{report}"
        );
    }
}

#[test]
fn loadgen_reports_rejected_pushes_as_errors() {
    // Auth enabled but the tenant name is invalid: every push is refused.
    let s = SluiceProcess::start(SluiceOptions::new().auth(true));
    let report = loadgen(&[
        "push",
        "--addr",
        &s.http_url(),
        "--lines",
        "2000",
        "--batch-size",
        "1000",
        "--concurrency",
        "1",
        "--tenant-prefix",
        "bad/tenant",
    ]);
    assert_eq!(report["lines_accepted"], 0, "{report}");
    assert_eq!(report["lines_failed"], 2000, "{report}");
    assert_eq!(report["errors"]["400"], 2, "{report}");
}

/// Kills the canary when the test ends, however it ends.
struct Canary(Child);

impl Drop for Canary {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn canary_metrics(port: u16) -> Option<String> {
    http_client()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .ok()?
        .text()
        .ok()
}

fn spawn_canary(s: &SluiceProcess, metrics_port: u16) -> Canary {
    Canary(
        Command::new(sluice_bin())
            .args([
                "canary",
                &format!("-addr=127.0.0.1:{}", s.http_port()),
                &format!("-port={metrics_port}"),
                "-interval=50ms",
                "-wait=1s",
                "-max-wait=2s",
                "-pruneinterval=500ms",
                "-query-interval=200ms",
                "-spot-check-interval=500ms",
                "-spot-check-query-rate=1s",
                "-spot-check-initial-wait=1s",
                "-metric-test-interval=2s",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sluice canary"),
    )
}

#[test]
fn canary_reads_every_line_back() {
    let s = SluiceProcess::start_default();
    // A canary ran before with the same labels: its lines are not the new
    // canary's and must not count against it.
    let earlier_port = free_port();
    let earlier = spawn_canary(&s, earlier_port);
    let first_started = Instant::now();
    loop {
        assert!(
            first_started.elapsed() < Duration::from_secs(30),
            "first canary wrote nothing"
        );
        let written = canary_metrics(earlier_port)
            .and_then(|text| prom::find(&text, "loki_canary_entries_total", &[]));
        if written.is_some_and(|count| count >= 5.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(earlier);

    let metrics_port = free_port();
    let mut canary = spawn_canary(&s, metrics_port);
    // Run past -wait + -max-wait + -pruneinterval so every early entry has
    // been either received or declared missing.
    let running_since = Instant::now();
    let mut text = String::new();
    while running_since.elapsed() < Duration::from_secs(5) || text.is_empty() {
        assert!(
            running_since.elapsed() < Duration::from_secs(30),
            "canary metrics never answered"
        );
        if let Some(status) = canary.0.try_wait().expect("try_wait") {
            panic!("canary exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(250));
        text = canary_metrics(metrics_port).unwrap_or_default();
    }
    let value = |name: &str| {
        prom::find(&text, name, &[]).unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    let entries = value("loki_canary_entries_total");
    let received = value("loki_canary_response_latency_seconds_count");
    let mut failures = Failures::new();
    failures.check("entries written", entries >= 60.0, entries);
    // Entries of the last second may still be on their way.
    failures.check(
        "entries received",
        received >= entries - 30.0 && received <= entries,
        format!("{received} of {entries}"),
    );
    for name in [
        "loki_canary_missing_entries_total",
        "loki_canary_duplicate_entries_total",
        "loki_canary_out_of_order_entries_total",
        "loki_canary_unexpected_entries_total",
        "loki_canary_spot_check_missing_entries_total",
        "loki_canary_push_errors_total",
    ] {
        failures.eq(name, value(name), 0.0);
    }
    failures.check(
        "spot checks ran",
        value("loki_canary_spot_check_entries_total") >= 1.0,
        value("loki_canary_spot_check_entries_total"),
    );
    failures.check(
        "metric test counted lines",
        value("loki_canary_metric_test_actual") > 0.0,
        value("loki_canary_metric_test_actual"),
    );
    failures.finish();
}

#[test]
fn canary_rejects_bad_flags() {
    let mut command = Command::new(sluice_bin());
    command.args(["canary", "-interval=soon", "-addr=127.0.0.1:1"]);
    let output = run_bounded(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("soon"), "{stderr}");

    let mut command = Command::new(sluice_bin());
    command.arg("canary").env_remove("LOKI_ADDRESS");
    let output = run_bounded(command, Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-addr"), "{stderr}");
}
