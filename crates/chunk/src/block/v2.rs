//! Version-2 blocks: three sections, each compressed on its own with the
//! chunk's codec, so that timestamps and lengths no longer interrupt the text
//! the compressor sees.
//!
//! ```text
//! uvarint  compressed length of the timestamp column
//! uvarint  compressed length of the length column
//! bytes    timestamp column: per entry varint (ts − previous ts), the first
//!          relative to 0, wrapping i64 arithmetic
//! bytes    length column: per entry uvarint line length
//! bytes    the lines back to back, to the end of the block
//! ```
//!
//! Entries are in timestamp order, equal timestamps in arrival order.

use super::v1::MAX_PREALLOCATION;
use super::{sections, BlockMeta, EntryRef, Scratch};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::varint::{self, Reader};

/// Returns the compressed sections of `entries`, whose lines live in `text`.
pub(super) fn build(
    codec: Codec,
    zstd_level: i32,
    text: &str,
    entries: &[EntryRef],
    scratch: &mut Scratch,
) -> Vec<u8> {
    scratch.timestamps.clear();
    scratch.lengths.clear();
    let mut previous = 0i64;
    for entry in entries {
        varint::put_varint(&mut scratch.timestamps, entry.ts.wrapping_sub(previous));
        varint::put_uvarint(&mut scratch.lengths, entry.len as u64);
        previous = entry.ts;
    }
    let text = text.as_bytes();
    // Appended in order and already sorted (the usual case), the lines are a
    // slice of the head's text: compress it in place instead of copying.
    let contiguous = entries
        .windows(2)
        .all(|pair| pair[0].end() == pair[1].start);
    let lines = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) if contiguous => {
            text.get(first.start..last.end()).unwrap_or_default()
        }
        _ => {
            scratch.raw.clear();
            for entry in entries {
                let line = text.get(entry.start..entry.end()).unwrap_or_default();
                scratch.raw.extend_from_slice(line);
            }
            &scratch.raw
        }
    };
    sections::write(
        codec,
        zstd_level,
        [&scratch.timestamps, &scratch.lengths],
        lines,
    )
}

/// Decompresses a block's sections into its lines, back to back, and their
/// entries, in stored order.
pub(super) fn parse(
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
) -> Result<(Vec<u8>, Vec<EntryRef>), ChunkError> {
    let ([timestamps, lengths], lines) =
        sections::read(compressed, ["timestamp column", "length column"])?;

    // A column never holds more than a varint per entry.
    let column_limit = meta.entries.saturating_mul(varint::MAX_VARINT_LEN);
    let mut column = Vec::new();
    codec.decompress(timestamps, &mut column, column_limit)?;
    // Every entry takes at least one byte of the column: bounded allocation.
    let mut entries = Vec::with_capacity(meta.entries.min(column.len()));
    let mut reader = Reader::new(&column);
    let mut ts = 0i64;
    while !reader.is_at_end() {
        let delta = reader
            .varint()
            .ok_or_else(|| ChunkError::corrupt("bad varint in block timestamp column"))?;
        ts = ts.wrapping_add(delta);
        entries.push(EntryRef {
            ts,
            start: 0,
            len: 0,
        });
    }

    column.clear();
    codec.decompress(lengths, &mut column, column_limit)?;
    let mut reader = Reader::new(&column);
    let mut total = 0usize;
    for entry in &mut entries {
        let len = reader
            .uvarint()
            .and_then(|len| usize::try_from(len).ok())
            .ok_or_else(|| {
                ChunkError::corrupt("block length column holds fewer entries than its timestamps")
            })?;
        entry.start = total;
        entry.len = len;
        total = total
            .checked_add(len)
            .filter(|total| *total <= meta.uncompressed_size)
            .ok_or_else(|| ChunkError::corrupt("block lines exceed the block's size"))?;
    }
    if !reader.is_at_end() {
        return Err(ChunkError::corrupt(
            "block length column holds more entries than its timestamps",
        ));
    }

    let mut text = Vec::with_capacity(total.min(MAX_PREALLOCATION));
    codec.decompress(lines, &mut text, total)?;
    if text.len() != total {
        return Err(ChunkError::corrupt(format!(
            "block lines decompressed to {} bytes, its lengths add up to {total}",
            text.len()
        )));
    }
    Ok((text, entries))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::{build, refs};
    use super::super::{decode_block, BlockMeta};
    use crate::codec::Codec;
    use crate::format::ChunkFormat;

    fn decode(
        codec: Codec,
        data: &[u8],
        meta: &BlockMeta,
    ) -> Result<super::super::DecodedBlock, crate::ChunkError> {
        decode_block(ChunkFormat::V2, codec, data, meta)
    }

    #[test]
    fn layout_is_columns_then_lines() {
        let block = build(ChunkFormat::V2, Codec::None, &[(-1i64, "a"), (300, "bc")]);
        assert_eq!(
            &*block.data,
            [
                0x03, 0x02, // column lengths
                0x01, 0xda, 0x04, // -1 − 0, 300 − (−1) = 301
                0x01, 0x02, // line lengths
                b'a', b'b', b'c'
            ]
        );
        // The logical size is the version-1 layout's.
        assert_eq!(block.meta.uncompressed_size, 8);
    }

    #[test]
    fn extreme_and_duplicate_timestamps_round_trip() {
        let lines = [
            (i64::MIN, "min"),
            (i64::MIN, "min again"),
            (-1, ""),
            (0, "zero"),
            (0, ""),
            (i64::MAX, "max"),
            (i64::MAX, "max again"),
        ];
        for codec in Codec::ALL {
            let block = build(ChunkFormat::V2, codec, &lines);
            let decoded = decode(codec, &block.data, &block.meta).expect("valid");
            let (text, entries) = refs(&lines);
            assert_eq!(decoded.text, text, "{codec}");
            assert_eq!(decoded.entries, entries, "{codec}");
        }
    }

    #[test]
    fn lines_not_contiguous_in_the_head_are_copied_in_order() {
        // Entries sorted by timestamp whose lines arrived in another order.
        let text = "ccbbbaa";
        let entries = [
            super::EntryRef {
                ts: 1,
                start: 5,
                len: 2,
            },
            super::EntryRef {
                ts: 2,
                start: 2,
                len: 3,
            },
            super::EntryRef {
                ts: 3,
                start: 0,
                len: 2,
            },
        ];
        let block = super::super::Block::build(
            ChunkFormat::V2,
            Codec::Zstd,
            3,
            text,
            &entries,
            &mut super::Scratch::default(),
        );
        let decoded = decode(Codec::Zstd, &block.data, &block.meta).expect("valid");
        assert_eq!(decoded.text, "aabbbcc");
        let starts: Vec<(i64, usize, usize)> = decoded
            .entries
            .iter()
            .map(|entry| (entry.ts, entry.start, entry.len))
            .collect();
        assert_eq!(starts, [(1, 0, 2), (2, 2, 3), (3, 5, 2)]);
    }

    #[test]
    fn unsorted_columns_from_another_writer_are_sorted_stably() {
        // ts 5, 1, 5 (deltas 5, −4, +4), lines "x", "y", "z".
        let data = [
            0x03, 0x03, 0x0a, 0x07, 0x08, 0x01, 0x01, 0x01, b'x', b'y', b'z',
        ];
        let meta = BlockMeta {
            entries: 3,
            min_ts: 1,
            max_ts: 5,
            uncompressed_size: 9,
            checksum: 0,
        };
        let decoded = decode(Codec::None, &data, &meta).expect("valid");
        let order: Vec<(i64, &str)> = decoded
            .entries
            .iter()
            .map(|entry| (entry.ts, &decoded.text[entry.start..entry.end()]))
            .collect();
        assert_eq!(order, [(1, "y"), (5, "x"), (5, "z")]);
    }

    #[test]
    fn rejects_malformed_sections() {
        let meta = BlockMeta {
            entries: 2,
            min_ts: 1,
            max_ts: 2,
            uncompressed_size: 7,
            checksum: 0,
        };
        // ts 1, 2; lengths 1, 2; "abc".
        let valid = [0x02, 0x02, 0x02, 0x02, 0x01, 0x02, b'a', b'b', b'c'];
        assert!(decode(Codec::None, &valid, &meta).is_ok());
        let cases: [(&[u8], &str); 9] = [
            (&[], "column length"),
            (&[0x02], "column length"),
            (&[0x09, 0x02, 0x02, 0x02], "timestamp column runs past"),
            (&[0x02, 0x09, 0x02, 0x02, 0x01], "length column runs past"),
            (
                &[0x02, 0x02, 0x02, 0x82, 0x01, 0x02, b'a', b'b', b'c'],
                "timestamp column",
            ),
            (&[0x02, 0x01, 0x02, 0x02, 0x01, b'a'], "fewer entries"),
            (
                &[0x02, 0x03, 0x02, 0x02, 0x01, 0x02, 0x01, b'a', b'b', b'c'],
                "more entries",
            ),
            (
                &[0x02, 0x02, 0x02, 0x02, 0x01, 0x02, b'a', b'b'],
                "decompressed to 2 bytes",
            ),
            (
                &[0x02, 0x02, 0x02, 0x02, 0x01, 0x02, b'a', b'b', 0xff],
                "UTF-8",
            ),
        ];
        for (data, expected) in cases {
            let error = decode(Codec::None, data, &meta).expect_err("malformed");
            assert!(
                error.to_string().contains(expected),
                "{data:x?}: {error} does not mention {expected:?}"
            );
        }
        // Lines longer than the block's logical size.
        let long = [0x02, 0x02, 0x02, 0x02, 0x01, 0x10];
        let error = decode(Codec::None, &long, &meta).expect_err("too long");
        assert!(error.to_string().contains("exceed"), "{error}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_are_an_error_not_a_panic(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            codec_index in 0usize..Codec::ALL.len(),
            entries in 0usize..64,
            min_ts in any::<i64>(),
            span in any::<u64>(),
            uncompressed_size in 0usize..4096,
        ) {
            let meta = BlockMeta {
                entries,
                min_ts,
                max_ts: min_ts.saturating_add_unsigned(span),
                uncompressed_size,
                checksum: 0,
            };
            let _ = decode(Codec::ALL[codec_index], &data, &meta);
        }

        #[test]
        fn mutated_blocks_are_an_error_not_a_panic(
            lines in proptest::collection::vec((any::<i64>(), "\\PC{0,20}"), 1..40),
            codec_index in 0usize..Codec::ALL.len(),
            position in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let codec = Codec::ALL[codec_index];
            let mut lines: Vec<(i64, &str)> =
                lines.iter().map(|(ts, line)| (*ts, line.as_str())).collect();
            lines.sort_by_key(|(ts, _)| *ts);
            let block = build(ChunkFormat::V2, codec, &lines);
            let (text, entries) = refs(&lines);
            let decoded = decode(codec, &block.data, &block.meta).expect("valid");
            prop_assert_eq!(&decoded.text, &text);
            prop_assert_eq!(&decoded.entries, &entries);
            let mut mutated = block.data.to_vec();
            let at = position.index(mutated.len());
            mutated[at] ^= xor;
            // Flipped bits may still decode (e.g. inside a line with codec
            // none); then the result must still agree with the meta.
            if let Ok(decoded) = decode(codec, &mutated, &block.meta) {
                prop_assert_eq!(decoded.entries.len(), block.meta.entries);
            }
            // A truncated block is an error, unless the cut only removed an
            // end marker some decoder does not insist on (lz4 after an empty
            // section): then it must decode to the very same entries.
            let truncated = &block.data[..cut.index(block.data.len())];
            if let Ok(decoded) = decode(codec, truncated, &block.meta) {
                prop_assert_eq!(&decoded.text, &text);
                prop_assert_eq!(&decoded.entries, &entries);
            }
        }
    }
}
