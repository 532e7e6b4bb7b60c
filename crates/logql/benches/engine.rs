//! Metric evaluation throughput: `sum by (level) (count_over_time({service="x"}[1m]))`
//! (plain, with a line filter, with `| logfmt`) over 1M generated entries (10 streams, 1 h, step 15 s). Criterion reports
//! MB/s of line bytes (`Throughput::Bytes`); the engine is single-threaded,
//! so this is per core.
//!
//! Run with `cargo bench -p sluice-logql --bench engine`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice_logql::{
    evaluate, parse_expr, plan, Direction, EvalLimits, Input, InputStream, LabelSet, QueryKind,
    QueryParams, QueryValue,
};

const NS: i64 = 1_000_000_000;
const ENTRIES: usize = 1_000_000;
const STREAMS: usize = 10;

fn input(from: i64, through: i64) -> Vec<InputStream> {
    let levels = ["info", "debug", "warn", "error", "info"];
    let per_stream = ENTRIES / STREAMS;
    let span = through - from;
    (0..STREAMS)
        .map(|s| InputStream {
            labels: LabelSet::new(vec![
                ("service".to_string(), "x".to_string()),
                ("level".to_string(), levels[s % levels.len()].to_string()),
                ("pod".to_string(), format!("pod-{s}")),
            ]),
            entries: (0..per_stream)
                .map(|i| {
                    let ts = from + (i as i64 * span) / per_stream as i64;
                    (ts, format!("ts={ts} level={} msg=\"request served\" path=/api/v1/push status=200 duration={}ms", levels[s % levels.len()], i % 1000))
                })
                .collect(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    run(
        c,
        "sum_by_level_count_over_time_1M",
        r#"sum by (level) (count_over_time({service="x"}[1m]))"#,
    );
    run(
        c,
        "sum_by_level_count_over_time_line_filter_1M",
        r#"sum by (level) (count_over_time({service="x"} |= "push" [1m]))"#,
    );
    run(
        c,
        "sum_by_level_count_over_time_logfmt_1M",
        r#"sum by (level) (count_over_time({service="x"} | logfmt [1m]))"#,
    );
}

fn run(c: &mut Criterion, name: &str, query: &str) {
    let expr = parse_expr(query).expect("parse");
    let params = QueryParams {
        start_ns: 1_700_000_000 * NS,
        end_ns: 1_700_003_600 * NS,
        step_ns: 15 * NS,
        interval_ns: 0,
        limit: 100,
        direction: Direction::Backward,
        kind: QueryKind::Range,
    };
    let requests = plan(&expr, &params).expect("plan");
    let data = input(requests[0].from_ns, requests[0].through_ns);
    let bytes: usize = data
        .iter()
        .flat_map(|s| s.entries.iter().map(|(_, l)| l.len()))
        .sum();
    let limits = EvalLimits::default();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter_batched(
            || vec![Input::Entries(data.clone())],
            |data| {
                let value = evaluate(&expr, &params, data, &limits).expect("evaluate");
                match value {
                    QueryValue::Matrix(series) => black_box(series.len()),
                    _ => 0,
                }
            },
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
