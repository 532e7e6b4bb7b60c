//! Version-3 blocks: each line split into a *template* and its *variables*
//! (the idea of CLP), so that the compressor sees the shape shared by many
//! lines once per block and the values that vary grouped by where they occur.
//!
//! A variable is a maximal run of ASCII letters and digits that holds at least
//! one digit: ids, numbers, clock fields. Everything else is template. A
//! template is stored as its *key*: its bytes with [`MARKER`] where each
//! variable was, and [`ESCAPE`] before a literal `MARKER` or `ESCAPE` byte.
//!
//! ```text
//! uvarint  compressed length of the timestamp column
//! uvarint  compressed length of the structure section
//! bytes    timestamp column (see timestamps.rs)
//! bytes    structure: uvarint #templates, then per template uvarint key
//!          length and key; per entry uvarint template number; per variable
//!          column uvarint (byte length << 1 | 1 if it holds ids)
//! bytes    variables: the columns back to back, to the end of the block
//! ```
//!
//! Each section is compressed on its own with the chunk's codec. Line
//! lengths are not stored: a line ends where its template does.
//!
//! The column of a variable is named by its *context*: the last [`CONTEXT`]
//! bytes of its template's key before its marker, so that values that follow
//! the same text (`"trace_id":"`, ` in `…` ms`) share a column whatever the
//! template. Columns are numbered in the order their contexts first occur
//! when the templates are read in order; a reader derives every variable's
//! column from the templates alone. A column holds its values one after
//! another, each in one of three forms told apart by its first byte
//! (variables never start with a byte below `0x30`):
//!
//! - `bytes END`: the value. In a column whose length field has its low bit
//!   set, a value that is an *id* (at least [`MIN_ID_LEN`] lowercase hex
//!   digits, and not a number) enters the column's list of the last
//!   [`RECENT`] distinct ids, most recent first;
//! - `REFERENCE place`: the id at `place` in that list, which moves to the
//!   front (requests repeat their trace id on every line). Only in columns
//!   with the low bit set;
//! - `DELTA varint`: a number of as many digits as the column's previous
//!   value, itself a number: the zig-zag difference from it (clocks,
//!   counters). Writers use it only in columns where most numbers are within
//!   [`CLOSE`] of the one before.

mod rebuild;
mod split;
mod timestamps;

pub(crate) use split::TemplateScratch;

use super::{BlockMeta, EntryRef, Scratch};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::hint::LineHint;
use crate::varint::{self, Reader};

/// Stands for a variable in a template key.
const MARKER: u8 = 0x01;
/// Precedes a literal `MARKER` or `ESCAPE` byte in a template key.
const ESCAPE: u8 = 0x02;
/// Ends a value in its column.
const END: u8 = 0x00;
/// Replaces a repeated id in its column; its place in the list follows.
const REFERENCE: u8 = 0x02;
/// Replaces a number close to the one before; the difference follows.
const DELTA: u8 = 0x03;
/// Longest number (in digits) stored as a difference: it fits an `i64`.
const MAX_DELTA_DIGITS: usize = 18;
/// Numbers this close to the one before count as close.
const CLOSE: u64 = 2;
/// Template key bytes before a variable that name its column.
const CONTEXT: usize = 8;
/// Distinct ids each column remembers for references.
const RECENT: usize = 32;
/// Shortest hex run that counts as an id.
const MIN_ID_LEN: usize = 16;

fn corrupt(what: &str) -> ChunkError {
    ChunkError::corrupt(format!("version-3 block: {what}"))
}

/// Names the context (up to [`CONTEXT`] key bytes) that ends `key`.
fn context(key: &[u8]) -> u64 {
    let tail = &key[key.len().saturating_sub(CONTEXT)..];
    let mut packed = [0u8; CONTEXT];
    packed[..tail.len()].copy_from_slice(tail);
    // The length tells a short key's context from one padded with zeros.
    u64::from_le_bytes(packed) ^ (tail.len() as u64).rotate_right(8)
}

/// The value of a number: a run of at most [`MAX_DELTA_DIGITS`] digits.
fn number(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > MAX_DELTA_DIGITS {
        return None;
    }
    value.iter().try_fold(0u64, |number, byte| {
        byte.is_ascii_digit()
            .then(|| number * 10 + u64::from(byte - b'0'))
    })
}

/// Whether a variable is an id: long, lowercase hex, and not a number.
fn is_id(value: &[u8]) -> bool {
    value.len() >= MIN_ID_LEN
        && value
            .iter()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte))
        && number(value).is_none()
}

/// Returns the compressed sections of `entries`, whose lines live in `text`.
pub(super) fn build(
    codec: Codec,
    zstd_level: i32,
    text: &str,
    entries: &[EntryRef],
    scratch: &mut Scratch,
) -> Vec<u8> {
    timestamps::write(entries, &mut scratch.timestamps);
    let (structure, variables) = scratch.templates.split_block(text.as_bytes(), entries);
    let mut timestamps = Vec::new();
    codec.compress_with_level(&scratch.timestamps, zstd_level, &mut timestamps);
    let mut compressed_structure = Vec::new();
    codec.compress_with_level(structure, zstd_level, &mut compressed_structure);
    let mut out = Vec::with_capacity(
        timestamps.len() + compressed_structure.len() + variables.len() / 4 + 64,
    );
    varint::put_uvarint(&mut out, timestamps.len() as u64);
    varint::put_uvarint(&mut out, compressed_structure.len() as u64);
    out.extend_from_slice(&timestamps);
    out.extend_from_slice(&compressed_structure);
    codec.compress_with_level(variables, zstd_level, &mut out);
    out
}

/// Decompresses a block's sections into its lines, back to back, and their
/// entries, in stored order, leaving out lines that cannot satisfy `hint`;
/// also returns how many it left out.
pub(super) fn parse(
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
    hint: &LineHint,
) -> Result<(Vec<u8>, Vec<EntryRef>, usize), ChunkError> {
    let mut reader = Reader::new(compressed);
    let mut section = |name: &str| {
        reader
            .uvarint()
            .and_then(|len| usize::try_from(len).ok())
            .ok_or_else(|| corrupt(&format!("bad {name} section length")))
    };
    let timestamps_len = section("timestamp")?;
    let structure_len = section("structure")?;
    let timestamps = reader
        .bytes(timestamps_len)
        .ok_or_else(|| corrupt("timestamp column runs past the end of its block"))?;
    let structure = reader
        .bytes(structure_len)
        .ok_or_else(|| corrupt("structure section runs past the end of its block"))?;
    let variables = compressed.get(reader.position()..).unwrap_or_default();

    let mut column = Vec::new();
    codec.decompress(timestamps, &mut column, timestamps::max_len(meta.entries))?;
    let mut entries = timestamps::read(&column, meta.entries)?;
    let text = rebuild::lines(codec, structure, variables, meta, &mut entries, hint)?;
    let skipped = meta.entries - entries.len();
    Ok((text, entries, skipped))
}

#[cfg(test)]
mod tests;
