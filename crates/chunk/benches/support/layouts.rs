//! The block layout and zstd setting experiments behind the compression
//! analysis in `docs/performance.md`. Printed by the chunk bench when
//! `SLUICE_CHUNK_EXPERIMENTS=1`.
//!
//! The lines of each data set are cut into blocks the way `MemChunk` cuts
//! them (logical size ≥ the block size), each block is laid out and
//! compressed with the zstd / snappy libraries directly, and the ratio is
//! line bytes / sum of compressed bytes (chunk headers, CRCs and meta, about
//! 0.1%, left out). Speeds are wall clock on one core, single run: only a
//! rough guide on a shared machine.

use std::io::Write;
use std::time::Instant;

use zstd::stream::raw::CParameter;

/// One block's entries.
type Entries<'a> = &'a [(i64, String)];

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn logical_size(ts: i64, len: usize) -> usize {
    let varint_len = |value: u64| (64 - value.leading_zeros() as usize).max(1).div_ceil(7);
    varint_len(zigzag(ts)) + varint_len(len as u64) + len
}

fn blocks(entries: &[(i64, String)], block_size: usize) -> Vec<Entries<'_>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (index, (ts, line)) in entries.iter().enumerate() {
        size += logical_size(*ts, line.len());
        if size >= block_size {
            out.push(&entries[start..=index]);
            start = index + 1;
            size = 0;
        }
    }
    if start < entries.len() {
        out.push(&entries[start..]);
    }
    out
}

/// The sections of a block: v1 layout, v2 timestamp column, v2 length
/// column, lines.
struct Sections {
    v1: Vec<u8>,
    timestamps: Vec<u8>,
    lengths: Vec<u8>,
    lines: Vec<u8>,
}

fn sections(block: Entries<'_>) -> Sections {
    let mut sections = Sections {
        v1: Vec::new(),
        timestamps: Vec::new(),
        lengths: Vec::new(),
        lines: Vec::new(),
    };
    let mut previous = 0i64;
    for (ts, line) in block {
        put_uvarint(&mut sections.v1, zigzag(*ts));
        put_uvarint(&mut sections.v1, line.len() as u64);
        sections.v1.extend_from_slice(line.as_bytes());
        put_uvarint(&mut sections.timestamps, zigzag(ts.wrapping_sub(previous)));
        put_uvarint(&mut sections.lengths, line.len() as u64);
        sections.lines.extend_from_slice(line.as_bytes());
        previous = *ts;
    }
    sections
}

/// zstd settings of one experiment.
#[derive(Clone, Copy)]
struct Zstd {
    level: i32,
    /// `None`: zstd's own choice for the level and input size.
    min_match: Option<u32>,
    long_distance: bool,
}

impl Zstd {
    const fn level(level: i32) -> Zstd {
        Zstd {
            level,
            min_match: Some(6),
            long_distance: false,
        }
    }

    fn compressor<'a>(&self, dictionary: Option<&[u8]>) -> zstd::bulk::Compressor<'a> {
        let mut compressor = match dictionary {
            Some(dictionary) => zstd::bulk::Compressor::with_dictionary(self.level, dictionary),
            None => zstd::bulk::Compressor::new(self.level),
        }
        .expect("zstd context");
        if let Some(min_match) = self.min_match {
            compressor
                .set_parameter(CParameter::MinMatch(min_match))
                .expect("min match");
        }
        if self.long_distance {
            compressor
                .set_parameter(CParameter::EnableLongDistanceMatching(true))
                .expect("ldm");
        }
        compressor
    }

    fn size(&self, data: &[u8]) -> usize {
        self.compressor(None)
            .compress(data)
            .expect("compress")
            .len()
    }
}

fn snappy_size(data: &[u8]) -> usize {
    let mut out = Vec::new();
    let mut encoder = snap::write::FrameEncoder::new(&mut out);
    encoder.write_all(data).expect("in memory");
    encoder.flush().expect("in memory");
    drop(encoder);
    out.len()
}

/// Prints one row: ratio and speed of compressing every block with `size`.
fn row(
    name: &str,
    label: &str,
    line_bytes: usize,
    all: &[Sections],
    size: impl Fn(&Sections) -> usize,
) {
    let started = Instant::now();
    let stored: usize = all.iter().map(size).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "| {name} | {label} | {:.2} | {:.1} | {:.0} |",
        line_bytes as f64 / stored as f64,
        stored as f64 / all.len() as f64 / 1024.0,
        line_bytes as f64 / seconds / 1e6
    );
}

pub fn print_layout_experiments(
    sets: &[(&str, Vec<(i64, String)>)],
    block_size: usize,
    target_size: usize,
) {
    if !std::env::var("SLUICE_CHUNK_EXPERIMENTS").is_ok_and(|value| value == "1") {
        return;
    }
    println!(
        "layout experiments, {} KiB blocks (ratio = line bytes / compressed block bytes)",
        block_size >> 10
    );
    println!("| data set | layout and settings | ratio | KiB per block | MB/s |");
    println!("|---|---|---|---|---|");
    for (name, entries) in sets {
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        let all: Vec<Sections> = blocks(entries, block_size)
            .into_iter()
            .map(sections)
            .collect();
        let own = |level| Zstd {
            level,
            min_match: None,
            long_distance: false,
        };
        let v2 = |zstd: Zstd| {
            move |s: &Sections| {
                zstd.size(&s.timestamps) + zstd.size(&s.lengths) + zstd.size(&s.lines)
            }
        };
        row(
            name,
            "v1 layout, zstd -3 (zstd's min match)",
            line_bytes,
            &all,
            |s| own(3).size(&s.v1),
        );
        row(
            name,
            "v1 layout, zstd -3, min match 6",
            line_bytes,
            &all,
            |s| Zstd::level(3).size(&s.v1),
        );
        row(
            name,
            "v2 sections in one frame, zstd -3, min match 6",
            line_bytes,
            &all,
            |s| {
                let mut one = s.timestamps.clone();
                one.extend_from_slice(&s.lengths);
                one.extend_from_slice(&s.lines);
                Zstd::level(3).size(&one)
            },
        );
        row(
            name,
            "v2 separate frames, zstd -3 (zstd's min match)",
            line_bytes,
            &all,
            v2(own(3)),
        );
        row(
            name,
            "**v2 separate frames, zstd -3, min match 6 (default)**",
            line_bytes,
            &all,
            v2(Zstd::level(3)),
        );
        for level in [1, 4, 5, 6] {
            row(
                name,
                &format!("v2 separate frames, zstd -{level}, min match 6"),
                line_bytes,
                &all,
                v2(Zstd::level(level)),
            );
        }
        row(
            name,
            "v2, zstd -3 min match 6, lines with long-distance matching",
            line_bytes,
            &all,
            |s| {
                let ldm = Zstd {
                    long_distance: true,
                    ..Zstd::level(3)
                };
                Zstd::level(3).size(&s.timestamps)
                    + Zstd::level(3).size(&s.lengths)
                    + ldm.size(&s.lines)
            },
        );
        row(
            name,
            "lines only (no timestamps, no lengths), zstd -3, min match 6",
            line_bytes,
            &all,
            |s| Zstd::level(3).size(&s.lines),
        );
        row(name, "v1 layout, snappy", line_bytes, &all, |s| {
            snappy_size(&s.v1)
        });
        row(name, "v2 separate frames, snappy", line_bytes, &all, |s| {
            snappy_size(&s.timestamps) + snappy_size(&s.lengths) + snappy_size(&s.lines)
        });

        // What each v2 section costs per line at the default.
        let zstd = Zstd::level(3);
        let lines = entries.len() as f64;
        let per_line = |pick: fn(&Sections) -> &[u8]| {
            all.iter().map(|s| zstd.size(pick(s))).sum::<usize>() as f64 / lines
        };
        println!(
            "| {name} | default, bytes per line: timestamps {:.2}, lengths {:.2}, lines {:.2} (line {:.0} B) | | | |",
            per_line(|s| &s.timestamps),
            per_line(|s| &s.lengths),
            per_line(|s| &s.lines),
            line_bytes as f64 / lines
        );

        // Per-chunk dictionaries for the lines: chunks hold as many blocks as
        // fit the target size at the default's block size.
        let default_sizes: Vec<usize> = all.iter().map(v2(zstd)).collect();
        let average = default_sizes.iter().sum::<usize>() / default_sizes.len();
        let per_chunk = (target_size / average.max(1)).max(2);
        let columns: usize = all
            .iter()
            .map(|s| zstd.size(&s.timestamps) + zstd.size(&s.lengths))
            .sum();
        let (mut prefix, mut trained, mut dictionaries) = (columns, columns, 0);
        let mut training = 0.0;
        for chunk in all.chunks(per_chunk) {
            let first = &chunk[0].lines;
            prefix += zstd.size(first);
            trained += zstd.size(first);
            // Raw-content dictionary: the first block's last 128 KiB of lines.
            let raw = &first[first.len().saturating_sub(128 << 10)..];
            let mut with_raw = zstd.compressor(Some(raw));
            let train_started = Instant::now();
            let samples: Vec<&[u8]> = first.chunks(256).collect();
            let dictionary = zstd::dict::from_samples(&samples, 32 << 10).expect("train");
            training += train_started.elapsed().as_secs_f64();
            dictionaries += zstd::bulk::compress(&dictionary, 19)
                .expect("compress")
                .len();
            let mut with_trained = zstd.compressor(Some(&dictionary));
            for block in &chunk[1..] {
                prefix += with_raw.compress(&block.lines).expect("compress").len();
                trained += with_trained.compress(&block.lines).expect("compress").len();
            }
        }
        println!(
            "| {name} | default + per-chunk dictionary ({per_chunk} blocks per chunk): block 0's lines as raw dictionary {:.2}; 32 KiB dictionary trained on block 0 {:.2}, {:.2} counting the stored dictionaries ({} B), training {:.0} ms per chunk | | | |",
            line_bytes as f64 / prefix as f64,
            line_bytes as f64 / trained as f64,
            line_bytes as f64 / (trained + dictionaries) as f64,
            dictionaries,
            training * 1e3 / all.chunks(per_chunk).count() as f64,
        );
    }
}
