//! Chunk benchmarks: append throughput into a `MemChunk`, per-codec compress and
//! decompress throughput on one 256 KiB block, and query iteration, all on
//! generated service logs (JSON and logfmt lines with RFC 3339 timestamps,
//! levels, trace ids and templated messages). Compression ratios per codec are
//! printed before the measurements.
//!
//! Run: `cargo bench -p sluice-chunk --bench chunk -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_chunk::{Codec, Direction, MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE};

/// Deterministic xorshift64* generator so every run sees the same lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

const LEVELS: [&str; 5] = ["info", "info", "info", "debug", "warn"];
const SERVICES: [&str; 4] = ["checkout", "payments", "inventory", "gateway"];
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart",
    "/api/v1/users/{id}",
    "/healthz",
    "/api/v2/search",
    "/api/v1/payments/authorize",
];
const MESSAGES: [&str; 6] = [
    "request completed",
    "cache miss, fetching from upstream",
    "retrying upstream call",
    "user session refreshed",
    "slow query detected",
    "published event to queue",
];

fn timestamp(ns: i64) -> String {
    let seconds = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let (hours, minutes, secs) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    format!("2024-05-17T{hours:02}:{minutes:02}:{secs:02}.{nanos:09}Z")
}

/// Returns `count` (timestamp, line) pairs in JSON or logfmt form.
fn generate(count: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
    let mut rng = Rng(seed);
    let mut ts: i64 = 1_715_904_000_000_000_000;
    (0..count)
        .map(|_| {
            ts += 1_000_000 + rng.below(50_000_000) as i64;
            let level = rng.pick(&LEVELS);
            let service = rng.pick(&SERVICES);
            let path = rng.pick(&PATHS);
            let message = rng.pick(&MESSAGES);
            let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
            let span = format!("{:016x}", rng.next());
            let status = [200, 200, 200, 201, 404, 500][rng.below(6) as usize];
            let duration = rng.below(250_000) as f64 / 1000.0;
            let user = rng.below(100_000);
            let line = if json {
                format!(
                    r#"{{"ts":"{}","level":"{level}","service":"{service}","msg":"{message}","method":"GET","path":"{path}","status":{status},"duration_ms":{duration},"user_id":{user},"trace_id":"{trace}","span_id":"{span}"}}"#,
                    timestamp(ts)
                )
            } else {
                format!(
                    r#"ts={} level={level} service={service} msg="{message}" method=GET path={path} status={status} duration={duration}ms user_id={user} trace_id={trace} span_id={span}"#,
                    timestamp(ts)
                )
            };
            (ts, line)
        })
        .collect()
}

/// Serialises entries into the uncompressed block layout until `size` bytes.
fn block_layout(entries: &[(i64, String)], size: usize) -> Vec<u8> {
    fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    let mut out = Vec::with_capacity(size + 1024);
    for (ts, line) in entries.iter().cycle() {
        if out.len() >= size {
            break;
        }
        put_uvarint(&mut out, ((ts << 1) ^ (ts >> 63)) as u64);
        put_uvarint(&mut out, line.len() as u64);
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn print_ratios(blocks: &[(&str, Vec<u8>)]) {
    println!("compression ratio per codec (uncompressed / compressed, one 256 KiB block):");
    for codec in Codec::ALL {
        let ratios: Vec<String> = blocks
            .iter()
            .map(|(name, block)| {
                let mut compressed = Vec::new();
                codec.compress(block, &mut compressed);
                format!(
                    "{name} {:.2}x ({} B)",
                    block.len() as f64 / compressed.len() as f64,
                    compressed.len()
                )
            })
            .collect();
        println!("  {:<9} {}", codec.as_str(), ratios.join(", "));
    }
}

fn bench_codecs(c: &mut Criterion) {
    let json = block_layout(&generate(4_000, true, 7), DEFAULT_BLOCK_SIZE);
    let logfmt = block_layout(&generate(4_000, false, 11), DEFAULT_BLOCK_SIZE);
    let blocks = [("json", json), ("logfmt", logfmt)];
    print_ratios(&blocks);

    let mut compress = c.benchmark_group("compress");
    for (name, block) in &blocks {
        compress.throughput(Throughput::Bytes(block.len() as u64));
        for codec in Codec::ALL {
            let mut out = Vec::with_capacity(block.len() + 1024);
            compress.bench_with_input(BenchmarkId::new(codec.as_str(), name), block, |b, block| {
                b.iter(|| {
                    out.clear();
                    codec.compress(black_box(block), &mut out);
                    out.len()
                })
            });
        }
    }
    compress.finish();

    let mut decompress = c.benchmark_group("decompress");
    for (name, block) in &blocks {
        decompress.throughput(Throughput::Bytes(block.len() as u64));
        for codec in Codec::ALL {
            let mut compressed = Vec::new();
            codec.compress(block, &mut compressed);
            let mut out = Vec::with_capacity(block.len());
            decompress.bench_with_input(
                BenchmarkId::new(codec.as_str(), name),
                &compressed,
                |b, compressed| {
                    b.iter(|| {
                        out.clear();
                        codec
                            .decompress(black_box(compressed), &mut out, block.len())
                            .expect("valid stream");
                        out.len()
                    })
                },
            );
        }
    }
    decompress.finish();
}

fn bench_chunk(c: &mut Criterion) {
    let entries = generate(20_000, false, 3);
    let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();

    let mut append = c.benchmark_group("append");
    append.throughput(Throughput::Bytes(line_bytes as u64));
    for codec in [Codec::None, Codec::Snappy, Codec::Zstd] {
        append.bench_function(BenchmarkId::new("logfmt", codec.as_str()), |b| {
            b.iter(|| {
                let mut chunk = MemChunk::new(codec, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
                for (ts, line) in &entries {
                    chunk.append(*ts, line);
                }
                chunk.size_bytes()
            })
        });
    }
    append.finish();

    let mut chunk = MemChunk::new(Codec::Zstd, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
    for (ts, line) in &entries {
        chunk.append(*ts, line);
    }
    chunk.cut_block();
    let mut iterate = c.benchmark_group("iter");
    iterate.throughput(Throughput::Bytes(line_bytes as u64));
    for direction in [Direction::Forward, Direction::Backward] {
        iterate.bench_function(BenchmarkId::new("zstd", format!("{direction:?}")), |b| {
            b.iter(|| {
                let mut iter = chunk.iter(i64::MIN, i64::MAX, direction).expect("iterator");
                let mut total = 0usize;
                while let Some((_, line)) = iter.next_entry() {
                    total += line.len();
                }
                total
            })
        });
    }
    iterate.finish();
}

criterion_group!(benches, bench_codecs, bench_chunk);
criterion_main!(benches);
