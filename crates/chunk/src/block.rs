//! Immutable compressed blocks and the uncompressed block layout.
//!
//! An uncompressed block is the concatenation, in timestamp order, of
//! `varint ts_ns, uvarint len, line bytes` for each entry (Go varints).

use std::sync::Arc;

use crate::codec::Codec;
use crate::error::ChunkError;
use crate::varint::{self, Reader};

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

/// Summary of a cut block, as stored in the chunk's block-meta section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// Number of entries in the block.
    pub entries: usize,
    /// Smallest entry timestamp, in nanoseconds.
    pub min_ts: i64,
    /// Largest entry timestamp, in nanoseconds.
    pub max_ts: i64,
    /// Exact length of the uncompressed block layout in bytes.
    pub uncompressed_size: usize,
    /// CRC-32 (IEEE, as computed by `crc32fast`) of the compressed bytes.
    pub checksum: u32,
}

/// A cut, compressed block; the bytes are shared so iterators can own them cheaply.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) meta: BlockMeta,
    pub(crate) data: Arc<[u8]>,
}

impl Block {
    /// Serialises `entries` (already sorted by timestamp) whose lines live in
    /// `text`, and compresses them with `codec` (zstd at `zstd_level`). `scratch`
    /// is reused between calls to avoid reallocating the uncompressed buffer.
    pub(crate) fn build(
        codec: Codec,
        zstd_level: i32,
        text: &str,
        entries: &[EntryRef],
        scratch: &mut Vec<u8>,
    ) -> Block {
        debug_assert!(entries.windows(2).all(|pair| pair[0].ts <= pair[1].ts));
        scratch.clear();
        let mut min_ts = i64::MAX;
        let mut max_ts = i64::MIN;
        for entry in entries {
            let line = text
                .as_bytes()
                .get(entry.start..entry.end())
                .unwrap_or_default();
            varint::put_varint(scratch, entry.ts);
            varint::put_uvarint(scratch, line.len() as u64);
            scratch.extend_from_slice(line);
            min_ts = min_ts.min(entry.ts);
            max_ts = max_ts.max(entry.ts);
        }
        let mut compressed = Vec::with_capacity(scratch.len() / 4 + 64);
        codec.compress_with_level(scratch, zstd_level, &mut compressed);
        let meta = BlockMeta {
            entries: entries.len(),
            min_ts,
            max_ts,
            uncompressed_size: scratch.len(),
            checksum: crc32fast::hash(&compressed),
        };
        Block {
            meta,
            data: Arc::from(compressed),
        }
    }
}

/// A decompressed block: all lines concatenated in one UTF-8 buffer plus one
/// [`EntryRef`] per entry, sorted by timestamp (ties in stored order).
#[derive(Debug, Default)]
pub(crate) struct DecodedBlock {
    pub(crate) text: String,
    pub(crate) entries: Vec<EntryRef>,
}

/// Decompresses and parses a block, checking it against its metadata.
pub(crate) fn decode_block(
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
) -> Result<DecodedBlock, ChunkError> {
    // The size comes from the chunk bytes: cap the up-front allocation so a
    // crafted meta section cannot make us reserve a gigabyte before failing.
    const MAX_PREALLOCATION: usize = 8 << 20;
    let mut raw = Vec::with_capacity(meta.uncompressed_size.min(MAX_PREALLOCATION));
    codec.decompress(compressed, &mut raw, meta.uncompressed_size)?;
    if raw.len() != meta.uncompressed_size {
        return Err(ChunkError::corrupt(format!(
            "block decompressed to {} bytes, meta says {}",
            raw.len(),
            meta.uncompressed_size
        )));
    }
    let (text, entries) = parse_layout(&raw)?;
    if entries.len() != meta.entries {
        return Err(ChunkError::corrupt(format!(
            "block holds {} entries, meta says {}",
            entries.len(),
            meta.entries
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
    Ok(DecodedBlock { text, entries })
}

/// Parses the uncompressed layout, validating UTF-8 and sorting by timestamp if
/// the writer did not.
fn parse_layout(raw: &[u8]) -> Result<(String, Vec<EntryRef>), ChunkError> {
    let mut reader = Reader::new(raw);
    let mut text = Vec::with_capacity(raw.len());
    let mut entries = Vec::new();
    while !reader.is_at_end() {
        let ts = reader
            .varint()
            .ok_or_else(|| ChunkError::corrupt("bad entry timestamp varint in block"))?;
        let len = reader
            .uvarint()
            .and_then(|len| usize::try_from(len).ok())
            .ok_or_else(|| ChunkError::corrupt("bad entry length varint in block"))?;
        let line = reader
            .bytes(len)
            .ok_or_else(|| ChunkError::corrupt("entry line runs past the end of its block"))?;
        entries.push(EntryRef {
            ts,
            start: text.len(),
            len,
        });
        text.extend_from_slice(line);
    }
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
        entries.sort_by_key(|entry| entry.ts);
    }
    Ok((text, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str, lines: &[(i64, &str)]) -> Vec<EntryRef> {
        let mut start = 0;
        lines
            .iter()
            .map(|(ts, line)| {
                let entry = EntryRef {
                    ts: *ts,
                    start,
                    len: line.len(),
                };
                start += line.len();
                debug_assert!(text.len() >= start);
                entry
            })
            .collect()
    }

    #[test]
    fn layout_is_varint_ts_len_line() {
        let lines = [(-1i64, "a"), (300, "bc")];
        let text = "abc";
        let block = Block::build(Codec::None, 3, text, &refs(text, &lines), &mut Vec::new());
        assert_eq!(
            &*block.data,
            [0x01, 0x01, b'a', 0xd8, 0x04, 0x02, b'b', b'c']
        );
        assert_eq!(block.meta.entries, 2);
        assert_eq!((block.meta.min_ts, block.meta.max_ts), (-1, 300));
        assert_eq!(block.meta.uncompressed_size, 8);
        assert_eq!(block.meta.checksum, crc32fast::hash(&block.data));
        let decoded = decode_block(Codec::None, &block.data, &block.meta).expect("valid");
        assert_eq!(decoded.text, "abc");
        assert_eq!(decoded.entries, refs(text, &lines));
    }

    #[test]
    fn rejects_inconsistent_blocks() {
        let text = "abc";
        let lines = [(1i64, "a"), (2, "bc")];
        let block = Block::build(Codec::None, 3, text, &refs(text, &lines), &mut Vec::new());
        let mut wrong_count = block.meta;
        wrong_count.entries = 3;
        assert!(decode_block(Codec::None, &block.data, &wrong_count).is_err());
        let mut wrong_bounds = block.meta;
        wrong_bounds.max_ts = 1;
        assert!(decode_block(Codec::None, &block.data, &wrong_bounds).is_err());
        let mut truncated = block.meta;
        truncated.uncompressed_size = 6;
        assert!(decode_block(Codec::None, &block.data[..6], &truncated).is_err());
        let invalid_utf8 = [0x02, 0x01, 0xff];
        let meta = BlockMeta {
            entries: 1,
            min_ts: 1,
            max_ts: 1,
            uncompressed_size: 3,
            checksum: 0,
        };
        assert!(decode_block(Codec::None, &invalid_utf8, &meta).is_err());
        // A multi-byte character split across two entries is rejected as well.
        let split = [0x02, 0x01, 0xc3, 0x02, 0x01, 0xa9];
        let meta = BlockMeta {
            entries: 2,
            uncompressed_size: 6,
            ..meta
        };
        assert!(decode_block(Codec::None, &split, &meta).is_err());
    }
}
