//! Line filter throughput: `LineFilterChain::matches` over realistic log lines
//! (logfmt and nginx-style, ~150 bytes) compared with a raw
//! `memchr::memmem::Finder` scan, the lower bound for a substring filter.
//!
//! Run with `cargo bench -p sluice-logql --bench line_filter`; criterion
//! reports MB/s (`Throughput::Bytes` = total bytes of the lines).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use memchr::memmem::Finder;
use sluice_logql::parse_expr;

fn lines() -> Vec<Vec<u8>> {
    let levels = ["info", "debug", "warn", "error"];
    let paths = [
        "/api/v1/push",
        "/healthz",
        "/loki/api/v1/query_range",
        "/metrics",
    ];
    (0..10_000u32)
        .map(|i| {
            let line = if i % 2 == 0 {
                format!(
                    "ts=2024-01-01T00:00:{:02}.{:06}Z level={} caller=handler.go:{} msg=\"request served\" path={} status={} duration={}ms traceID={:016x}",
                    i % 60,
                    i * 37 % 1_000_000,
                    levels[(i % 4) as usize],
                    i % 400,
                    paths[(i / 2 % 4) as usize],
                    if i % 50 == 0 { 503 } else { 200 },
                    i % 997,
                    u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                )
            } else {
                format!(
                    "10.{}.{}.{} - - [01/Jan/2024:00:00:{:02} +0000] \"GET {} HTTP/1.1\" {} {} \"-\" \"Go-http-client/1.1\"",
                    i % 256,
                    i / 256 % 256,
                    i % 7,
                    i % 60,
                    paths[(i % 4) as usize],
                    if i % 40 == 1 { 500 } else { 200 },
                    i * 13 % 4096
                )
            };
            line.into_bytes()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let total: u64 = lines.iter().map(|line| line.len() as u64).sum();
    let mut group = c.benchmark_group("line_filter");
    group.throughput(Throughput::Bytes(total));

    let finder = Finder::new("error").into_owned();
    group.bench_function("raw_memmem_error", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|line| finder.find(black_box(line)).is_some())
                .count()
        })
    });

    let queries = [
        ("chain_contains_error", r#"{app="x"} |= "error""#),
        (
            "chain_get_not_healthz",
            r#"{app="x"} |= "GET" != "healthz""#,
        ),
        ("chain_regex_status_5xx", r#"{app="x"} |~ "status=5\\d\\d""#),
        ("chain_or_error_warn", r#"{app="x"} |= "error" or "warn""#),
        ("chain_ip_cidr", r#"{app="x"} |= ip("10.1.0.0/16")"#),
    ];
    for (name, query) in queries {
        let expr = parse_expr(query).expect("benchmark queries are valid");
        let chain = expr.as_log().expect("log query").line_filters();
        group.bench_function(name, |b| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|line| chain.matches(black_box(line)))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
