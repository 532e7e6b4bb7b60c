//! Immutable compressed blocks: building them from sorted entries and parsing
//! them back, in the layout of the chunk's [`ChunkFormat`] ([`v1`], [`v2`]).
//!
//! Whatever the format, a block's size is measured in its *logical size*: the
//! bytes its entries take in the version-1 layout (`varint ts, uvarint len,
//! line` per entry). The head block is cut when it reaches the block size in
//! that measure, and the block meta's `uncompressed size` field holds it, so
//! block cutting, chunk sizes and Loki's `chunk_block_size` mean the same
//! thing in every format.

mod sections;
mod v1;
mod v2;
mod v3;

use bytes::Bytes;

use crate::codec::Codec;
use crate::error::ChunkError;
use crate::format::ChunkFormat;
use crate::hint::LineHint;
use crate::varint;

/// Where one entry's line lives inside a text buffer, and its timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef {
    pub(crate) ts: i64,
    pub(crate) start: usize,
    pub(crate) len: usize,
}

impl EntryRef {
    pub(crate) fn end(&self) -> usize {
        self.start + self.len
    }
}

/// Returns the logical size of one entry: its size in the version-1 layout.
pub(crate) fn logical_size(ts: i64, len: usize) -> usize {
    varint::varint_len(ts) + varint::uvarint_len(len as u64) + len
}

/// Summary of a cut block, as stored in the chunk's block-meta section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Number of entries in the block.
    pub entries: usize,
    /// Smallest entry timestamp, in nanoseconds.
    pub min_ts: i64,
    /// Largest entry timestamp, in nanoseconds.
    pub max_ts: i64,
    /// Logical size of the block in bytes: what its entries take in the
    /// version-1 layout (`varint ts, uvarint len, line` each), whatever the
    /// chunk's format.
    pub uncompressed_size: usize,
    /// CRC-32 (IEEE, as computed by `crc32fast`) of the compressed bytes.
    pub checksum: u32,
}

/// A cut, compressed block; the bytes are shared so iterators can own them cheaply.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) meta: BlockMeta,
    pub(crate) data: Bytes,
}

/// Buffers reused between block cuts so that cutting does not reallocate them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    /// The uncompressed version-1 layout, or the version-2 lines when they are
    /// not contiguous in the head's text.
    pub(crate) raw: Vec<u8>,
    /// The version-2 timestamp column.
    pub(crate) timestamps: Vec<u8>,
    /// The version-2 length column.
    pub(crate) lengths: Vec<u8>,
    /// The version-3 templates and variable columns.
    pub(crate) templates: v3::TemplateScratch,
}

impl Block {
    /// Lays out `entries` (already sorted by timestamp) whose lines live in
    /// `text` as `format` says, and compresses them with `codec` (zstd at
    /// `zstd_level`).
    pub(crate) fn build(
        format: ChunkFormat,
        codec: Codec,
        zstd_level: i32,
        text: &str,
        entries: &[EntryRef],
        scratch: &mut Scratch,
    ) -> Block {
        debug_assert!(entries.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
        let mut min_ts = i64::MAX;
        let mut max_ts = i64::MIN;
        let mut uncompressed_size = 0;
        for entry in entries {
            min_ts = min_ts.min(entry.ts);
            max_ts = max_ts.max(entry.ts);
            uncompressed_size += logical_size(entry.ts, entry.len);
        }
        let compressed = match format {
            ChunkFormat::V1 => v1::build(codec, zstd_level, text, entries, scratch),
            ChunkFormat::V2 => v2::build(codec, zstd_level, text, entries, scratch),
            ChunkFormat::V3 => v3::build(codec, zstd_level, text, entries, scratch),
        };
        let meta = BlockMeta {
            entries: entries.len(),
            min_ts,
            max_ts,
            uncompressed_size,
            checksum: crc32fast::hash(&compressed),
        };
        Block {
            meta,
            // Exactly sized: the ingester holds blocks until they are
            // flushed, and the compressor's buffer is sized for the worst case.
            data: Bytes::from(compressed.into_boxed_slice()),
        }
    }
}

fn with_none_skipped((text, entries): (Vec<u8>, Vec<EntryRef>)) -> (Vec<u8>, Vec<EntryRef>, usize) {
    (text, entries, 0)
}

/// A decompressed block: all lines concatenated in one UTF-8 buffer plus one
/// [`EntryRef`] per entry, sorted by timestamp (ties in stored order).
#[derive(Debug, Default)]
pub(crate) struct DecodedBlock {
    pub(crate) text: String,
    pub(crate) entries: Vec<EntryRef>,
}

/// Decompresses and parses a block of a `format` chunk, checking it against
/// its metadata. Never panics, whatever the bytes.
#[cfg(test)]
pub(crate) fn decode_block(
    format: ChunkFormat,
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
) -> Result<DecodedBlock, ChunkError> {
    decode_block_with_hint(format, codec, compressed, meta, &LineHint::default())
}

/// Like [`decode_block`], leaving out lines that cannot satisfy `hint` where
/// the format allows it (version 3).
pub(crate) fn decode_block_with_hint(
    format: ChunkFormat,
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
    hint: &LineHint,
) -> Result<DecodedBlock, ChunkError> {
    let (text, mut entries, skipped) = match format {
        ChunkFormat::V1 => with_none_skipped(v1::parse(codec, compressed, meta)?),
        ChunkFormat::V2 => with_none_skipped(v2::parse(codec, compressed, meta)?),
        ChunkFormat::V3 => v3::parse(codec, compressed, meta, hint)?,
    };
    if entries.len() + skipped != meta.entries {
        return Err(ChunkError::corrupt(format!(
            "block holds {} entries, meta says {}",
            entries.len() + skipped,
            meta.entries
        )));
    }
    // Skipped lines were never rebuilt, so the size can be checked only
    // when none was.
    let size = entries
        .iter()
        .map(|entry| logical_size(entry.ts, entry.len))
        .sum::<usize>();
    if skipped == 0 && size != meta.uncompressed_size {
        return Err(ChunkError::corrupt(format!(
            "block entries take {size} bytes, meta says {}",
            meta.uncompressed_size
        )));
    }
    if entries
        .iter()
        .any(|entry| entry.ts < meta.min_ts || entry.ts > meta.max_ts)
    {
        return Err(ChunkError::corrupt(
            "block entry timestamp outside the block's meta bounds",
        ));
    }
    // Lines are stored back to back, so checking the whole buffer and every
    // line start checks every line.
    let text = String::from_utf8(text)
        .map_err(|_| ChunkError::corrupt("block holds a line that is not valid UTF-8"))?;
    if entries
        .iter()
        .any(|entry| !text.is_char_boundary(entry.start))
    {
        return Err(ChunkError::corrupt(
            "block holds a line that is not valid UTF-8",
        ));
    }
    if !entries.windows(2).all(|pair| pair[0].ts <= pair[1].ts) {
        // Stable: equal timestamps keep their stored order.
        entries.sort_by_key(|entry| entry.ts);
    }
    Ok(DecodedBlock { text, entries })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Entries whose lines are `lines`, back to back in one text buffer.
    pub(crate) fn refs(lines: &[(i64, &str)]) -> (String, Vec<EntryRef>) {
        let mut text = String::new();
        let entries = lines
            .iter()
            .map(|(ts, line)| {
                let entry = EntryRef {
                    ts: *ts,
                    start: text.len(),
                    len: line.len(),
                };
                text.push_str(line);
                entry
            })
            .collect();
        (text, entries)
    }

    pub(crate) fn build(format: ChunkFormat, codec: Codec, lines: &[(i64, &str)]) -> Block {
        let (text, entries) = refs(lines);
        Block::build(format, codec, 3, &text, &entries, &mut Scratch::default())
    }

    #[test]
    fn meta_is_the_same_in_every_format() {
        let lines = [(-1i64, "a"), (300, "bc"), (300, "é")];
        let v1 = build(ChunkFormat::V1, Codec::Zstd, &lines);
        let v2 = build(ChunkFormat::V2, Codec::Zstd, &lines);
        assert_eq!(v1.meta.entries, 3);
        assert_eq!((v1.meta.min_ts, v1.meta.max_ts), (-1, 300));
        // (1 + 1 + 1) + (2 + 1 + 2) + (2 + 1 + 2)
        assert_eq!(v1.meta.uncompressed_size, 13);
        assert_eq!(
            (v1.meta.entries, v1.meta.min_ts, v1.meta.max_ts),
            (v2.meta.entries, v2.meta.min_ts, v2.meta.max_ts)
        );
        assert_eq!(v1.meta.uncompressed_size, v2.meta.uncompressed_size);
        for (format, block) in [(ChunkFormat::V1, &v1), (ChunkFormat::V2, &v2)] {
            assert_eq!(block.meta.checksum, crc32fast::hash(&block.data));
            let decoded =
                decode_block(format, Codec::Zstd, &block.data, &block.meta).expect("valid");
            assert_eq!(decoded.text, "abcé");
            assert_eq!(decoded.entries, refs(&lines).1);
        }
    }

    #[test]
    fn rejects_meta_that_disagrees_with_the_block() {
        let lines = [(1i64, "a"), (2, "bc")];
        for format in ChunkFormat::ALL {
            let block = build(format, Codec::None, &lines);
            let decode = |meta: &BlockMeta| decode_block(format, Codec::None, &block.data, meta);
            assert!(decode(&block.meta).is_ok());
            let mut wrong_count = block.meta;
            wrong_count.entries = 3;
            assert!(decode(&wrong_count).is_err(), "{format:?}");
            let mut wrong_count = block.meta;
            wrong_count.entries = 1;
            assert!(decode(&wrong_count).is_err(), "{format:?}");
            let mut wrong_bounds = block.meta;
            wrong_bounds.max_ts = 1;
            assert!(decode(&wrong_bounds).is_err(), "{format:?}");
            let mut wrong_bounds = block.meta;
            wrong_bounds.min_ts = 2;
            assert!(decode(&wrong_bounds).is_err(), "{format:?}");
            let mut wrong_size = block.meta;
            wrong_size.uncompressed_size -= 1;
            assert!(decode(&wrong_size).is_err(), "{format:?}");
            let mut wrong_size = block.meta;
            wrong_size.uncompressed_size += 1;
            assert!(decode(&wrong_size).is_err(), "{format:?}");
        }
    }
}
