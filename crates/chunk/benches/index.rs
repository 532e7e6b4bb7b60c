//! Index benchmarks on one period of a realistic tenant: 100k series (200
//! services × 100 pods × 5 levels; namespace derived from the service) with 3
//! chunks each. Times building the file, `open` (full validation and load),
//! `select` with equality, regex and negative matchers, and `label_values`.
//! The file size is printed before the measurements.
//!
//! Run: `cargo bench -p sluice-chunk --bench index -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use regex::Regex;
use sluice_chunk::{ChunkRef, IndexReader, IndexWriter, LabelMatcher, Labels};

const SERVICES: u64 = 200;
const PODS_PER_SERVICE: u64 = 100;
const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
const NAMESPACES: u64 = 20;
const CHUNKS_PER_SERIES: u64 = 3;
/// 2024-01-01T00:00:00Z, the start of period 19723.
const PERIOD_START_NS: i64 = 1_704_067_200_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;

/// Deterministic xorshift64* generator so every run sees the same index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn build_writer() -> IndexWriter {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut writer = IndexWriter::new("tenant-1", 19723);
    for service in 0..SERVICES {
        let replica_set = rng.next() % 0xff_ffff_ffff;
        for _ in 0..PODS_PER_SERVICE {
            let pod_name = format!(
                "svc-{service}-{replica_set:010x}-{:05x}",
                rng.next() % 0xf_ffff
            );
            for level in LEVELS {
                let labels = Labels::from_pairs([
                    ("service", format!("svc-{service}")),
                    ("namespace", format!("ns-{}", service % NAMESPACES)),
                    ("pod", pod_name.clone()),
                    ("level", level.to_owned()),
                ]);
                let fingerprint = labels.fingerprint();
                let mut from_ns = PERIOD_START_NS + (rng.next() % 4) as i64 * HOUR_NS;
                for _ in 0..CHUNKS_PER_SERIES {
                    let length = HOUR_NS + (rng.next() % HOUR_NS as u64) as i64;
                    writer.add(
                        &labels,
                        ChunkRef {
                            fingerprint,
                            from_ns,
                            through_ns: from_ns + length,
                            checksum: rng.next() as u32,
                            size_bytes: 100_000 + (rng.next() % 1_400_000) as u32,
                            entries: 1000 + (rng.next() % 20_000) as u32,
                        },
                    );
                    from_ns += length + (rng.next() % HOUR_NS as u64) as i64;
                }
            }
        }
    }
    writer
}

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("valid regex")
}

fn bench_index(c: &mut Criterion) {
    let writer = build_writer();
    let bytes = writer.clone().finish();
    let reader = IndexReader::open_slice(&bytes).expect("valid index");
    println!(
        "index: {} series, {} chunks, {} bytes ({:.1} bytes/series, {:.1} bytes/chunk)",
        reader.series_count(),
        reader.chunk_count(),
        bytes.len(),
        bytes.len() as f64 / reader.series_count() as f64,
        bytes.len() as f64 / reader.chunk_count() as f64,
    );

    let svc_42 = |value: &str| value == "svc-42";
    let error = |value: &str| value == "error";
    let eq_matchers = [
        LabelMatcher::new("service", &svc_42),
        LabelMatcher::new("level", &error),
    ];
    let svc_4x = anchored("svc-4[0-9]");
    let svc_4x = |value: &str| svc_4x.is_match(value);
    let not_debug = |value: &str| value != "debug";
    let regex_matchers = [
        LabelMatcher::new("service", &svc_4x),
        LabelMatcher::new("level", &not_debug),
    ];
    let pod_re = anchored("svc-42-.*");
    let pod_re = |value: &str| pod_re.is_match(value);
    let ns_2 = |value: &str| value == "ns-2";
    let pod_matchers = [
        LabelMatcher::new("namespace", &ns_2),
        LabelMatcher::new("pod", &pod_re),
    ];
    println!(
        "selected: eq {}, regex {}, pod regex {}",
        reader.select(&eq_matchers).len(),
        reader.select(&regex_matchers).len(),
        reader.select(&pod_matchers).len(),
    );

    let mut group = c.benchmark_group("index");
    group.sample_size(10);
    group.bench_function("build_and_finish_100k_series", |b| {
        b.iter_batched(
            build_writer,
            |writer| black_box(writer.finish()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("finish_100k_series", |b| {
        b.iter_batched(
            || writer.clone(),
            |writer| black_box(writer.finish()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("open_100k_series", |b| {
        b.iter_batched(
            || bytes.clone(),
            |bytes| black_box(IndexReader::open(bytes).expect("valid")),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("index_query");
    group.bench_function("select_service_eq_level_eq", |b| {
        b.iter(|| black_box(reader.select(black_box(&eq_matchers))))
    });
    group.bench_function("select_service_regex_level_ne", |b| {
        b.iter(|| black_box(reader.select(black_box(&regex_matchers))))
    });
    group.bench_function("select_namespace_eq_pod_regex", |b| {
        b.iter(|| black_box(reader.select(black_box(&pod_matchers))))
    });
    group.bench_function("select_then_chunks_in_range", |b| {
        b.iter(|| {
            let mut count = 0;
            for id in reader.select(&eq_matchers) {
                count += reader
                    .chunks_in_range(id, PERIOD_START_NS, PERIOD_START_NS + 3 * HOUR_NS)
                    .count();
            }
            black_box(count)
        })
    });
    group.bench_function("label_names", |b| {
        b.iter(|| black_box(reader.label_names()))
    });
    group.bench_function("label_values_service_200", |b| {
        b.iter(|| black_box(reader.label_values(black_box("service"))))
    });
    group.bench_function("label_values_pod_20k", |b| {
        b.iter(|| black_box(reader.label_values(black_box("pod"))))
    });
    group.finish();
}

criterion_group!(benches, bench_index);
criterion_main!(benches);
