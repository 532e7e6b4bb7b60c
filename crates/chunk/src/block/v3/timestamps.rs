//! The version-3 timestamp column: the first timestamp as a varint, the width
//! in bytes of the largest difference between neighbours, then the
//! differences (entries are sorted, so they are not negative) as that many
//! byte planes: every difference's lowest byte, then every second byte, and
//! so on. Each plane gets its own statistics in the compressor, so random low
//! bits cost what they must and the high bytes of small differences almost
//! nothing (about 0.2 B per entry less than version 2's varints on receive
//! times in nanoseconds).

use super::corrupt;
use crate::block::EntryRef;
use crate::error::ChunkError;
use crate::varint::{self, Reader, MAX_VARINT_LEN};

/// The most a column of `count` entries can decompress to.
pub(super) fn max_len(count: usize) -> usize {
    // The first timestamp, the width byte, 8 bytes per difference at most.
    count.saturating_mul(8).saturating_add(MAX_VARINT_LEN + 1)
}

/// Writes the column of `entries` into `out` (cleared first).
pub(super) fn write(entries: &[EntryRef], out: &mut Vec<u8>) {
    out.clear();
    let Some(first) = entries.first() else {
        return;
    };
    varint::put_varint(out, first.ts);
    let differences = entries
        .windows(2)
        .map(|pair| pair[1].ts.wrapping_sub(pair[0].ts) as u64);
    let widest = differences
        .clone()
        .fold(0, |widest, difference| widest | difference);
    let width = 8 - widest.leading_zeros() as usize / 8;
    out.push(width as u8);
    for plane in 0..width {
        out.extend(
            differences
                .clone()
                .map(|difference| (difference >> (8 * plane)) as u8),
        );
    }
}

/// Reads the column of a block of `count` entries: their timestamps, with
/// empty line ranges.
pub(super) fn read(column: &[u8], count: usize) -> Result<Vec<EntryRef>, ChunkError> {
    let entry = |ts| EntryRef {
        ts,
        start: 0,
        len: 0,
    };
    if count == 0 {
        return if column.is_empty() {
            Ok(Vec::new())
        } else {
            Err(corrupt("timestamp column of an empty block is not empty"))
        };
    }
    let mut reader = Reader::new(column);
    let first = reader
        .varint()
        .ok_or_else(|| corrupt("bad first timestamp"))?;
    let width = reader
        .bytes(1)
        .map(|width| usize::from(width[0]))
        .filter(|width| *width <= 8)
        .ok_or_else(|| corrupt("bad timestamp width"))?;
    let gaps = count - 1;
    let planes = reader
        .bytes(width * gaps)
        .filter(|_| reader.is_at_end())
        .ok_or_else(|| corrupt("timestamp column does not hold the block's entry count"))?;
    // `count` comes from the block meta; with a width of 0 the column does
    // not bound it, so the entries grow as they are read instead.
    let mut entries = Vec::with_capacity(count.min(column.len()));
    let mut ts = first;
    entries.push(entry(ts));
    for index in 0..gaps {
        let difference = (0..width).fold(0u64, |difference, plane| {
            difference | u64::from(planes[plane * gaps + index]) << (8 * plane)
        });
        ts = ts.wrapping_add(difference as i64);
        entries.push(entry(ts));
    }
    Ok(entries)
}
