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
//! Each section is compressed on its own with the chunk's codec, framed as
//! in version 2 (`sections.rs`). Line lengths are not stored: a line ends
//! where its template does.
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

mod hashing;
mod rebuild;
mod split;
mod timestamps;

pub(crate) use split::TemplateScratch;

use hashing::SeededMap;

use super::{sections, BlockMeta, EntryRef, Scratch};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::hint::LineHint;

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

/// Numbers variable columns by context, in the order contexts first occur:
/// the one rule writer and reader both follow to agree on every variable's
/// column.
#[derive(Debug, Clone, Default)]
struct ColumnNumbers(SeededMap<u32>);

impl ColumnNumbers {
    /// The column of the variable whose marker follows `key_before` (the
    /// template's key up to it).
    fn of(&mut self, key_before: &[u8]) -> u32 {
        let tail = &key_before[key_before.len().saturating_sub(CONTEXT)..];
        let mut packed = [0u8; CONTEXT];
        packed[..tail.len()].copy_from_slice(tail);
        // The length tells a short key's context from one padded with zeros.
        let context = u64::from_le_bytes(packed) ^ (tail.len() as u64).rotate_right(8);
        let next = self.0.len() as u32;
        *self.0.entry(context).or_insert(next)
    }

    /// How many columns have been numbered.
    fn len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
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
    sections::write(
        codec,
        zstd_level,
        [&scratch.timestamps, structure],
        variables,
    )
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
    let ([timestamps, structure], variables) =
        sections::read(compressed, ["timestamp column", "structure section"])?;

    let mut column = Vec::new();
    codec.decompress(timestamps, &mut column, timestamps::max_len(meta.entries))?;
    let mut entries = timestamps::read(&column, meta.entries)?;
    let text = rebuild::lines(codec, structure, variables, meta, &mut entries, hint)?;
    let skipped = meta.entries - entries.len();
    Ok((text, entries, skipped))
}

#[cfg(test)]
mod tests;
