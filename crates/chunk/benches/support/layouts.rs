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

use std::hint::black_box;
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

// ---------------------------------------------------------------------------
// Template / variable split (CLP-like), printed with
// `SLUICE_CHUNK_EXPERIMENTS=tokens`.

/// Where a line's variables go.
#[derive(Clone, Copy)]
enum Columns {
    /// The k-th variable of a line into column k (the last takes the rest).
    Positional(usize),
    /// By a hash of the template bytes just before the variable (e.g.
    /// `id":"`), so each column holds one kind of value.
    Context { columns: usize, context: usize },
}

/// Column of a variable whose line's template so far ends with `before`.
fn context_column(before: &[u8], columns: usize, context: usize) -> usize {
    let before = &before[before.len().saturating_sub(context)..];
    let hash = before.iter().fold(2_166_136_261u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(16_777_619)
    });
    hash as usize % columns
}

/// A line's variables: maximal alphanumeric runs holding a digit (ids,
/// numbers, clock fields). The template keeps everything else with 0x01 in
/// each variable's place; each variable ends with 0x00 in its column. (An
/// experiment: a real format would escape 0x00 / 0x01 in lines.)
fn split_template(lines: &[&str], columns: Columns) -> (Vec<u8>, Vec<Vec<u8>>) {
    let count = match columns {
        Columns::Positional(count) => count,
        Columns::Context { columns, .. } => columns,
    };
    let mut template = Vec::new();
    let mut vars = vec![Vec::new(); count];
    for line in lines {
        let bytes = line.as_bytes();
        let line_start = template.len();
        let (mut at, mut index) = (0, 0);
        while at < bytes.len() {
            if !bytes[at].is_ascii_alphanumeric() {
                template.push(bytes[at]);
                at += 1;
                continue;
            }
            let start = at;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            let word = &bytes[start..at];
            if !word.iter().any(u8::is_ascii_digit) {
                template.extend_from_slice(word);
                continue;
            }
            let column = match columns {
                Columns::Positional(count) => index.min(count - 1),
                Columns::Context { columns, context } => {
                    context_column(&template[line_start..], columns, context)
                }
            };
            vars[column].extend_from_slice(word);
            vars[column].push(0);
            template.push(1);
            index += 1;
        }
        template.push(b'\n');
    }
    (template, vars)
}

/// How the templates and variables of a block are stored.
#[derive(Clone, Copy)]
enum Split {
    /// The template stream and every variable column as their own frames.
    Streams(Columns),
    /// Each distinct template once (a per-block dictionary) plus a varint
    /// template number per line; the variable columns one after another in
    /// one frame. With `recent`, a hex id of 16+ digits that is among the
    /// last 32 distinct ones of its column is stored as 0x02 and its place
    /// in that list.
    Dictionary { columns: Columns, recent: bool },
}

/// A column's values with repeated ids written as references (see `Split`).
fn with_references(column: &[u8]) -> Vec<u8> {
    let mut recent: Vec<&[u8]> = Vec::new();
    let mut out = Vec::with_capacity(column.len());
    for value in column
        .split(|byte| *byte == 0)
        .filter(|value| !value.is_empty())
    {
        let id = value.len() >= 16
            && value
                .iter()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte));
        if id {
            if let Some(place) = recent.iter().position(|seen| *seen == value) {
                out.extend_from_slice(&[2, place as u8]);
                recent.remove(place);
                recent.insert(0, value);
                continue;
            }
            recent.insert(0, value);
            recent.truncate(32);
        }
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Stored bytes of a block's templates and of its variables.
fn split_size(zstd: Zstd, lines: &[&str], split: Split) -> (usize, usize) {
    match split {
        Split::Streams(columns) => {
            let (template, vars) = split_template(lines, columns);
            let variables = vars
                .iter()
                .filter(|values| !values.is_empty())
                .map(|values| zstd.size(values))
                .sum();
            (zstd.size(&template), variables)
        }
        Split::Dictionary { columns, recent } => {
            let (template, vars) = split_template(lines, columns);
            let mut numbers = std::collections::HashMap::new();
            let (mut dictionary, mut per_line) = (Vec::new(), Vec::new());
            for line in template.split(|byte| *byte == b'\n') {
                let next = numbers.len() as u64;
                let number = *numbers.entry(line).or_insert_with(|| {
                    dictionary.extend_from_slice(line);
                    dictionary.push(b'\n');
                    next
                });
                put_uvarint(&mut per_line, number);
            }
            (
                zstd.size(&dictionary) + zstd.size(&per_line),
                if recent {
                    let columns: Vec<Vec<u8>> =
                        vars.iter().map(|column| with_references(column)).collect();
                    zstd.size(&columns.concat())
                } else {
                    zstd.size(&vars.concat())
                },
            )
        }
    }
}

pub fn print_template_experiments(sets: &[(&str, Vec<(i64, String)>)], block_size: usize) {
    if !std::env::var("SLUICE_CHUNK_EXPERIMENTS").is_ok_and(|value| value == "tokens") {
        return;
    }
    println!("template / variable split, zstd -3 min match 6");
    println!("| data set | layout | ratio | bytes per line: timestamps + lengths / templates / variables |");
    println!("|---|---|---|---|");
    let zstd = Zstd::level(3);
    let rows = [
        (
            "template stream; variables in 4 positional columns",
            Split::Streams(Columns::Positional(4)),
        ),
        (
            "template stream; variables in 64 columns by the 4 template bytes before",
            Split::Streams(Columns::Context {
                columns: 64,
                context: 4,
            }),
        ),
        (
            "template dictionary; variables grouped by the 8 template bytes before, one frame",
            Split::Dictionary {
                columns: Columns::Context {
                    columns: 4096,
                    context: 8,
                },
                recent: false,
            },
        ),
        (
            "… and repeated ids as references to the last 32 of their column",
            Split::Dictionary {
                columns: Columns::Context {
                    columns: 4096,
                    context: 8,
                },
                recent: true,
            },
        ),
    ];
    for (name, entries) in sets {
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        let lines = entries.len() as f64;
        let all = blocks(entries, block_size);
        for (label, split) in rows {
            let (mut fixed, mut templates, mut variables) = (0, 0, 0);
            for block in &all {
                let s = sections(block);
                fixed += zstd.size(&s.timestamps) + zstd.size(&s.lengths);
                let text: Vec<&str> = block.iter().map(|(_, line)| line.as_str()).collect();
                let (template_bytes, variable_bytes) = split_size(zstd, &text, split);
                templates += template_bytes;
                variables += variable_bytes;
            }
            println!(
                "| {name} | {label} | {:.2} | {:.2} / {:.2} / {:.2} |",
                line_bytes as f64 / (fixed + templates + variables) as f64,
                fixed as f64 / lines,
                templates as f64 / lines,
                variables as f64 / lines,
            );
        }
    }
}

/// A block in the best split layout, uncompressed.
struct Templated {
    templates: Vec<Vec<u8>>,
    numbers: Vec<u32>,
    /// Each column's values, repeated ids as references.
    columns: Vec<Vec<u8>>,
}

const COLUMNS: usize = 4096;
const CONTEXT: usize = 8;

fn templated(lines: &[&str]) -> Templated {
    let (template, vars) = split_template(
        lines,
        Columns::Context {
            columns: COLUMNS,
            context: CONTEXT,
        },
    );
    let mut numbers_of = std::collections::HashMap::new();
    let mut block = Templated {
        templates: Vec::new(),
        numbers: Vec::new(),
        columns: vars.iter().map(|column| with_references(column)).collect(),
    };
    for line in template.split(|byte| *byte == b'\n').take(lines.len()) {
        let next = numbers_of.len() as u32;
        let number = *numbers_of.entry(line).or_insert_with(|| {
            block.templates.push(line.to_vec());
            next
        });
        block.numbers.push(number);
    }
    block
}

/// Rebuilds the lines of a block into `out` (one after another).
fn reassemble(block: &Templated, out: &mut Vec<u8>) {
    // Per template: (literal before, column of the variable after it).
    let plans: Vec<Vec<(&[u8], Option<usize>)>> = block
        .templates
        .iter()
        .map(|template| {
            let mut plan = Vec::new();
            let mut start = 0;
            for (at, byte) in template.iter().enumerate() {
                if *byte == 1 {
                    let column = context_column(&template[..at], COLUMNS, CONTEXT);
                    plan.push((&template[start..at], Some(column)));
                    start = at + 1;
                }
            }
            plan.push((&template[start..], None));
            plan
        })
        .collect();
    let mut cursors = vec![0usize; block.columns.len()];
    let mut recent: Vec<Vec<&[u8]>> = vec![Vec::new(); block.columns.len()];
    for number in &block.numbers {
        for (literal, column) in &plans[*number as usize] {
            out.extend_from_slice(literal);
            let Some(column) = *column else { continue };
            let bytes = &block.columns[column];
            let at = cursors[column];
            let value: &[u8] = if bytes[at] == 2 {
                let place = bytes[at + 1] as usize;
                cursors[column] = at + 2;
                let value = recent[column].remove(place);
                recent[column].insert(0, value);
                value
            } else {
                let end = at + memchr0(&bytes[at..]);
                cursors[column] = end + 1;
                let value = &bytes[at..end];
                if value.len() >= 16
                    && value
                        .iter()
                        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
                {
                    recent[column].insert(0, value);
                    recent[column].truncate(32);
                }
                value
            };
            out.extend_from_slice(value);
        }
    }
}

fn memchr0(bytes: &[u8]) -> usize {
    bytes.iter().position(|byte| *byte == 0).expect("value end")
}

/// Times the best split against v2's lines section, per MB of line text:
/// split + compress vs compress, and decompress + reassemble vs decompress.
pub fn print_template_speed(sets: &[(&str, Vec<(i64, String)>)], block_size: usize) {
    if !std::env::var("SLUICE_CHUNK_EXPERIMENTS").is_ok_and(|value| value == "tokens") {
        return;
    }
    let zstd = Zstd::level(3);
    println!("| data set | v2 lines: compress / decompress MB/s | split: split + compress / decompress / reassemble MB/s |");
    println!("|---|---|---|");
    for (name, entries) in sets.iter().take(2) {
        let all = blocks(entries, block_size);
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        let mb = line_bytes as f64 / 1e6;
        let mut compressor = zstd.compressor(None);
        let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd");
        let best = |run: &mut dyn FnMut()| {
            (0..3)
                .map(|_| {
                    let started = Instant::now();
                    run();
                    started.elapsed().as_secs_f64()
                })
                .fold(f64::MAX, f64::min)
        };
        let plain: Vec<Vec<u8>> = all.iter().map(|block| sections(block).lines).collect();
        let mut packed = Vec::new();
        let v2_compress = best(&mut || {
            packed = plain
                .iter()
                .map(|lines| compressor.compress(lines).expect("compress"))
                .collect();
        });
        let v2_decompress = best(&mut || {
            for (frame, lines) in packed.iter().zip(&plain) {
                black_box(
                    decompressor
                        .decompress(frame, lines.len())
                        .expect("decompress"),
                );
            }
        });
        let mut split: Vec<(Templated, Vec<u8>, Vec<u8>, usize)> = Vec::new();
        let split_compress = best(&mut || {
            split = all
                .iter()
                .map(|block| {
                    let text: Vec<&str> = block.iter().map(|(_, line)| line.as_str()).collect();
                    let templated = templated(&text);
                    let mut numbers = Vec::new();
                    for number in &templated.numbers {
                        put_uvarint(&mut numbers, u64::from(*number));
                    }
                    let variables = templated.columns.concat();
                    let frame = compressor.compress(&variables).expect("compress");
                    let numbers = compressor.compress(&numbers).expect("compress");
                    (templated, frame, numbers, variables.len())
                })
                .collect();
        });
        let split_decompress = best(&mut || {
            for (templated, frame, numbers, size) in &split {
                black_box(decompressor.decompress(frame, *size).expect("decompress"));
                black_box(
                    decompressor
                        .decompress(numbers, templated.numbers.len() * 2)
                        .expect("decompress"),
                );
            }
        });
        let mut out = Vec::with_capacity(block_size * 2);
        let split_reassemble = best(&mut || {
            for (templated, ..) in &split {
                out.clear();
                reassemble(templated, &mut out);
                black_box(&out);
            }
        });
        for ((templated, ..), lines) in split.iter().zip(&plain) {
            out.clear();
            reassemble(templated, &mut out);
            assert!(out == *lines, "{name}: reassembled lines differ");
        }
        println!(
            "| {name} | {:.0} / {:.0} | {:.0} / {:.0} / {:.0} |",
            mb / v2_compress,
            mb / v2_decompress,
            mb / split_compress,
            mb / split_decompress,
            mb / split_reassemble
        );
    }
}
