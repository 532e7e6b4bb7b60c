//! Log pipeline throughput on realistic ~300-byte JSON and logfmt service
//! logs (timestamp, level, a unique trace id per line, templated message),
//! next to a raw `memchr::memmem` scan of the same bytes in the same run.
//!
//! Run with `cargo bench -p sluice-logql --bench pipeline`; every case
//! processes 1M entries (~300 MB) per iteration and criterion reports MB/s
//! of uncompressed line text (`Throughput::Bytes` = total bytes of the
//! lines). `SLUICE_BENCH_ENTRIES=100000` runs a smaller set for quick checks.

use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use memchr::memmem::Finder;
use sluice_logql::labelset::LabelSet;
use sluice_logql::{parse_expr, Pipeline};

const LEVELS: [&str; 4] = ["info", "debug", "warn", "error"];
const PATHS: [&str; 4] = [
    "/api/v1/push",
    "/healthz",
    "/loki/api/v1/query_range",
    "/metrics",
];

/// Entries per case (1M unless `SLUICE_BENCH_ENTRIES` says otherwise).
fn entries() -> u64 {
    std::env::var("SLUICE_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

fn json_lines() -> Vec<String> {
    (0..entries())
        .map(|i| {
            format!(
                r#"{{"ts":"2024-01-01T00:00:{:02}.{:06}Z","level":"{}","caller":"handler.go:{}","msg":"request served for tenant {} on {}","trace_id":"{:016x}{:016x}","span_id":"{:016x}","method":"GET","path":"{}","status":{},"duration":"{}.{}ms","bytes":{}}}"#,
                i % 60,
                i * 37 % 1_000_000,
                LEVELS[(i % 4) as usize],
                i % 400,
                i % 17,
                PATHS[(i / 4 % 4) as usize],
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i.wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
                i.wrapping_mul(0x1656_67b1_9e37_79f9),
                PATHS[(i / 2 % 4) as usize],
                if i % 50 == 0 { 503 } else { 200 },
                i % 997,
                i % 10,
                i * 131 % 65_536,
            )
        })
        .collect()
}

fn logfmt_lines() -> Vec<String> {
    (0..entries())
        .map(|i| {
            format!(
                r#"ts=2024-01-01T00:00:{:02}.{:06}Z level={} caller=handler.go:{} msg="request served for tenant {} on {}" trace_id={:016x}{:016x} span_id={:016x} method=GET path={} status={} duration={}.{}ms bytes={}"#,
                i % 60,
                i * 37 % 1_000_000,
                LEVELS[(i % 4) as usize],
                i % 400,
                i % 17,
                PATHS[(i / 4 % 4) as usize],
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i.wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
                i.wrapping_mul(0x1656_67b1_9e37_79f9),
                PATHS[(i / 2 % 4) as usize],
                if i % 50 == 0 { 503 } else { 200 },
                i * 7 % 9000,
                i % 10,
                i * 131 % 65_536,
            )
        })
        .collect()
}

fn bench_pipeline(
    c: &mut Criterion,
    name: &str,
    query: &str,
    required: Option<&[&str]>,
    lines: &[String],
) {
    let bytes: usize = lines.iter().map(String::len).sum();
    let expr = parse_expr(query).expect("valid query");
    let stages = &expr.as_log().expect("log query").pipeline;
    let pipeline = Pipeline::new_with_required(stages, required).expect("compiles");
    let stream = LabelSet::from_iter([("app", "api"), ("namespace", "prod")]);
    let mut group = c.benchmark_group("pipeline");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(name, |b| {
        let mut sp = pipeline.for_stream(&stream);
        b.iter(|| {
            let mut kept = 0usize;
            for (ts, line) in lines.iter().enumerate() {
                if let Some(out) = sp.process(ts as i64, line) {
                    kept += out.line.len() + out.labels.len();
                }
            }
            black_box(kept)
        })
    });
    group.finish();
}

fn pipelines(c: &mut Criterion) {
    let json = json_lines();
    let logfmt = logfmt_lines();
    for (name, lines) in [("memmem_json", &json), ("memmem_logfmt", &logfmt)] {
        let bytes: usize = lines.iter().map(String::len).sum();
        let finder = Finder::new("error");
        let mut group = c.benchmark_group("pipeline");
        group.sampling_mode(SamplingMode::Flat);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| finder.find(l.as_bytes()).is_some())
                    .count()
            })
        });
        group.finish();
    }
    bench_pipeline(
        c,
        "json_level_error_log_query",
        r#"{a="b"} | json | level="error""#,
        None,
        &json,
    );
    bench_pipeline(
        c,
        "json_level_error_metric",
        r#"{a="b"} | json | level="error""#,
        Some(&[]),
        &json,
    );
    bench_pipeline(
        c,
        "logfmt_duration_gt_5s_log_query",
        r#"{a="b"} | logfmt | duration > 5s"#,
        None,
        &logfmt,
    );
    bench_pipeline(
        c,
        "logfmt_duration_gt_5s_metric",
        r#"{a="b"} | logfmt | duration > 5s"#,
        Some(&[]),
        &logfmt,
    );
    bench_pipeline(
        c,
        "json_line_format_log_query",
        r#"{a="b"} | json | line_format "{{.level}} {{.msg}}""#,
        None,
        &json,
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(5));
    targets = pipelines
}
criterion_main!(benches);
