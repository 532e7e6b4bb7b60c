//! Chunk benchmarks on generated service logs.
//!
//! First a table (printed, not a criterion measurement) of what is stored: for
//! each data set, codec / zstd level and block size, lines are appended into
//! `MemChunk`s with Loki's default target size (a new chunk starts when
//! `has_space_for` says no) and every chunk is encoded. It reports
//! `ratio = line bytes / encoded chunk bytes` (headers, block CRCs, meta and
//! the timestamp/length varints count as stored bytes), append + encode MB/s
//! and decode + full iteration MB/s (line bytes per second of thread CPU
//! time, one run, so expect ±10–15% on a shared machine), in the default chunk format (v2),
//! in version 3 (templates and variables) at zstd -1 / -3 / -6 and snappy, and, for zstd -3
//! and snappy, in version 1 for reference. Set `SLUICE_CHUNK_RATIOS=0` to
//! skip it. Set `SLUICE_CHUNK_EXPERIMENTS=1` to print first the block layout
//! and zstd setting experiments of `support/layouts.rs` (one frame vs
//! separate frames, minimum match length, levels, long-distance matching,
//! per-chunk dictionaries). `SLUICE_CHUNK_RATIOS=quick` prints only zstd -3
//! in versions 2 and 3 at 256 KiB. Then criterion measures per-codec compress /
//! decompress of one 256 KiB block, append throughput (`append`: blocks cut
//! and compressed as they fill; `append_encode`: then encoded, in every chunk
//! format) and query iteration (versions 2 and 3). Append and iteration are measured in the
//! benchmark thread's CPU time (`support/cputime.rs`), which varies far less
//! than wall clock time on a shared machine.
//!
//! Data sets (deterministic; 16 MiB of lines each), from the generator in
//! `sluice_loadgen::generator` that the load tool also uses:
//!
//! - `json`: one stream of a Go-style HTTP service logging JSON
//!   (`ServiceLog`, `Format::Json`, seed 7): requests with 2–6 templated
//!   lines sharing a random trace id, skewed routes/statuses, long-tailed
//!   durations; ~80% info.
//! - `text`: the same request model as a Spring-Boot-style plain-text log
//!   (`Format::Text`, seed 11).
//! - `json-rand`, `logfmt-rand`: the worst case (`RandomLog`) — every line
//!   has its own random 128-bit trace id, 64-bit span id and a user id out of
//!   100,000, and independently random level, service, path and message.
//!
//! Run: `cargo bench -p sluice-chunk --bench chunk -- --warm-up-time 1 --measurement-time 2`

#[path = "support/cputime.rs"]
mod cputime;
#[path = "support/datasets.rs"]
mod datasets;
#[path = "support/layouts.rs"]
mod layouts;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_chunk::{
    ChunkFormat, Codec, Direction, MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE,
    DEFAULT_ZSTD_LEVEL,
};

use cputime::CpuTime;
use datasets::{data_sets, generate_random, generate_service, DATA_SET_BYTES};

// ---------------------------------------------------------------------------
// Stored-size table.

struct Stored {
    ratio: f64,
    chunks: usize,
    write_mb_s: f64,
    read_mb_s: f64,
}

/// Appends every entry into chunks as the ingester does (new chunk when the
/// target size is reached), encodes them, then decodes and reads them back.
fn store(
    entries: &[(i64, String)],
    format: ChunkFormat,
    codec: Codec,
    level: i32,
    block_size: usize,
) -> Stored {
    let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
    let new_chunk = || {
        MemChunk::new(codec, block_size, DEFAULT_TARGET_SIZE)
            .with_format(format)
            .with_zstd_level(level)
    };
    let started = cputime::now_ns();
    let mut encoded = Vec::new();
    let mut chunk = new_chunk();
    for (ts, line) in entries {
        if !chunk.has_space_for(line.len()) {
            encoded.push(chunk.encode());
            chunk = new_chunk();
        }
        chunk.append(*ts, line);
    }
    encoded.push(chunk.encode());
    let write = (cputime::now_ns() - started) as f64 / 1e9;
    let stored: usize = encoded.iter().map(Vec::len).sum();

    let started = cputime::now_ns();
    let mut read = 0;
    for bytes in &encoded {
        let chunk = MemChunk::decode_with_sizes(
            bytes::Bytes::copy_from_slice(bytes),
            block_size,
            DEFAULT_TARGET_SIZE,
        )
        .expect("round trip");
        let mut iter = chunk
            .iter(i64::MIN, i64::MAX, Direction::Forward)
            .expect("iterator");
        while let Some((_, line)) = iter.next_entry() {
            read += line.len();
        }
    }
    let read_secs = (cputime::now_ns() - started) as f64 / 1e9;
    assert_eq!(read, line_bytes);
    Stored {
        ratio: line_bytes as f64 / stored as f64,
        chunks: encoded.len(),
        write_mb_s: line_bytes as f64 / write / 1e6,
        read_mb_s: line_bytes as f64 / read_secs / 1e6,
    }
}

/// (label, format, codec, zstd level) rows of the stored-size table: the
/// default format at every setting, and version 1 for reference.
fn table_codecs() -> Vec<(String, ChunkFormat, Codec, i32)> {
    let mut rows: Vec<(String, ChunkFormat, Codec, i32)> = [1, 3, 6, 9, 15]
        .into_iter()
        .map(|level| {
            let default = if level == DEFAULT_ZSTD_LEVEL {
                " (default)"
            } else {
                ""
            };
            (
                format!("zstd -{level}{default}"),
                ChunkFormat::V2,
                Codec::Zstd,
                level,
            )
        })
        .collect();
    for codec in [Codec::Snappy, Codec::Lz4_256k, Codec::Gzip] {
        rows.push((
            codec.as_str().to_owned(),
            ChunkFormat::V2,
            codec,
            DEFAULT_ZSTD_LEVEL,
        ));
    }
    for codec in [Codec::Zstd, Codec::Snappy] {
        rows.push((
            codec.as_str().to_owned(),
            ChunkFormat::V1,
            codec,
            DEFAULT_ZSTD_LEVEL,
        ));
    }
    for level in [1, DEFAULT_ZSTD_LEVEL, 6] {
        rows.push((
            format!("zstd -{level}"),
            ChunkFormat::V3,
            Codec::Zstd,
            level,
        ));
    }
    rows.push((
        Codec::Snappy.as_str().to_owned(),
        ChunkFormat::V3,
        Codec::Snappy,
        DEFAULT_ZSTD_LEVEL,
    ));
    if quick_table() {
        // The default and its version-3 counterpart only.
        rows.retain(|(_, format, codec, level)| {
            *format != ChunkFormat::V1 && *codec == Codec::Zstd && *level == DEFAULT_ZSTD_LEVEL
        });
    }
    rows
}

/// `SLUICE_CHUNK_RATIOS=quick`: zstd -3 in versions 2 and 3, 256 KiB blocks.
fn quick_table() -> bool {
    std::env::var("SLUICE_CHUNK_RATIOS").is_ok_and(|value| value == "quick")
}

fn print_stored_table(sets: &[(&str, Vec<(i64, String)>)]) {
    if std::env::var("SLUICE_CHUNK_RATIOS").is_ok_and(|value| value == "0") {
        return;
    }
    println!(
        "stored size: line bytes / encoded chunk bytes, {} MiB of lines per data set, target size {} B",
        DATA_SET_BYTES >> 20,
        DEFAULT_TARGET_SIZE
    );
    for (name, entries) in sets {
        let lines = entries.len();
        let bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        println!(
            "  {name}: {lines} lines, {:.0} B/line, e.g. {}",
            bytes as f64 / lines as f64,
            entries[lines / 2].1
        );
    }
    // Upper bound for cross-block context (dictionaries, long-distance
    // matching): the whole data set as one zstd frame with a 128 MiB window.
    // Not a chunk format; it only shows what is left to gain.
    for (name, entries) in sets.iter().filter(|_| !quick_table()) {
        let mut all = Vec::new();
        for (_, line) in entries {
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        let mut compressor = zstd::bulk::Compressor::new(19).expect("zstd context");
        compressor
            .set_parameter(zstd::stream::raw::CParameter::EnableLongDistanceMatching(
                true,
            ))
            .expect("ldm");
        compressor
            .set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
            .expect("window");
        let compressed = compressor.compress(&all).expect("compress");
        // The same lines in independent 256 KiB pieces, no timestamps: what
        // per-block compression alone costs against the whole-stream bound.
        let pieces: usize = all
            .chunks(DEFAULT_BLOCK_SIZE)
            .map(|piece| {
                let mut out = Vec::new();
                Codec::Zstd.compress_with_level(piece, 19, &mut out);
                out.len()
            })
            .sum();
        let line_bytes = (all.len() - entries.len()) as f64;
        println!(
            "  {name}: lines only (no entry timestamps), zstd -19: one --long=27 frame {:.2}x, independent 256 KiB pieces {:.2}x",
            line_bytes / compressed.len() as f64,
            line_bytes / pieces as f64
        );
    }
    println!(
        "| data set | format | codec | block | ratio | chunks | append+encode MB/s | decode+read MB/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, entries) in sets {
        let block_sizes: &[usize] = if quick_table() {
            &[DEFAULT_BLOCK_SIZE]
        } else {
            &[DEFAULT_BLOCK_SIZE, 1 << 20]
        };
        for &block_size in block_sizes {
            for (label, format, codec, level) in table_codecs() {
                let stored = store(entries, format, codec, level, block_size);
                println!(
                    "| {name} | v{} | {label} | {} KiB | {:.2} | {} | {:.0} | {:.0} |",
                    format.version(),
                    block_size >> 10,
                    stored.ratio,
                    stored.chunks,
                    stored.write_mb_s,
                    stored.read_mb_s
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Criterion measurements.

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

fn bench_codecs(c: &mut Criterion) {
    let sets = data_sets();
    layouts::print_layout_experiments(&sets, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
    print_stored_table(&sets);
    let blocks: Vec<(&str, Vec<u8>)> = sets
        .iter()
        .filter(|(name, _)| *name != "json-rand")
        .map(|(name, entries)| (*name, block_layout(entries, DEFAULT_BLOCK_SIZE)))
        .collect();

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

/// Append (and encode) throughput, measured in thread CPU time
/// ([`cputime::CpuTime`]): this is the push path's cost per core.
fn bench_append(c: &mut Criterion<CpuTime>) {
    let sets = [
        ("text", generate_service(5 << 20, false, 3)),
        ("logfmt-rand", generate_random(5 << 20, false, 3)),
    ];
    let mut append = c.benchmark_group("append");
    for (name, entries) in &sets {
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        append.throughput(Throughput::Bytes(line_bytes as u64));
        for (codec, level) in [
            (Codec::None, 0),
            (Codec::Snappy, 0),
            (Codec::Zstd, 1),
            (Codec::Zstd, DEFAULT_ZSTD_LEVEL),
        ] {
            let id = if codec == Codec::Zstd {
                format!("zstd-{level}")
            } else {
                codec.as_str().to_owned()
            };
            append.bench_function(BenchmarkId::new(*name, id), |b| {
                b.iter(|| {
                    let mut chunk = MemChunk::new(codec, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE)
                        .with_zstd_level(level);
                    for (ts, line) in entries {
                        chunk.append(*ts, line);
                    }
                    chunk.size_bytes()
                })
            });
        }
    }
    append.finish();

    // What the ingester does with a chunk from first line to flush, in both
    // formats: append (cutting and compressing blocks) then encode.
    let mut append_encode = c.benchmark_group("append_encode");
    for (name, entries) in &sets {
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        append_encode.throughput(Throughput::Bytes(line_bytes as u64));
        for format in [ChunkFormat::V1, ChunkFormat::V2, ChunkFormat::V3] {
            for codec in [Codec::Snappy, Codec::Zstd] {
                let id = format!("{}-v{}", codec.as_str(), format.version());
                append_encode.bench_function(BenchmarkId::new(*name, id), |b| {
                    b.iter(|| {
                        let mut chunk =
                            MemChunk::new(codec, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE)
                                .with_format(format);
                        for (ts, line) in entries {
                            chunk.append(*ts, line);
                        }
                        chunk.encode().len()
                    })
                });
            }
        }
    }
    append_encode.finish();
}

/// Query iteration throughput, in thread CPU time: the default format
/// (`iter/zstd`) and version 3 (`iter/zstd-v3`).
fn bench_iter(c: &mut Criterion<CpuTime>) {
    let entries = generate_service(5 << 20, false, 3);
    let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
    let mut iterate = c.benchmark_group("iter");
    iterate.throughput(Throughput::Bytes(line_bytes as u64));
    for (name, format) in [("zstd", ChunkFormat::V2), ("zstd-v3", ChunkFormat::V3)] {
        let mut chunk =
            MemChunk::new(Codec::Zstd, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE).with_format(format);
        for (ts, line) in &entries {
            chunk.append(*ts, line);
        }
        chunk.cut_block();
        for direction in [Direction::Forward, Direction::Backward] {
            iterate.bench_function(BenchmarkId::new(name, format!("{direction:?}")), |b| {
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
    }
    iterate.finish();
}

criterion_group!(benches, bench_codecs);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = bench_append, bench_iter
}
criterion_main!(benches, cpu_benches);
