//! Version-1 blocks: for each entry in timestamp order (equal timestamps in
//! arrival order) `varint ts, uvarint len, line`, interleaved, and the whole
//! layout compressed as one stream.

use super::{BlockMeta, EntryRef, Scratch};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::varint::{self, Reader};

/// The up-front allocation for a decompressed block is capped: sizes come from
/// the chunk bytes, and a crafted meta section must not make us reserve a
/// gigabyte before failing.
pub(super) const MAX_PREALLOCATION: usize = 8 << 20;

/// Returns the compressed layout of `entries`, whose lines live in `text`.
pub(super) fn build(
    codec: Codec,
    zstd_level: i32,
    text: &str,
    entries: &[EntryRef],
    scratch: &mut Scratch,
) -> Vec<u8> {
    let layout = &mut scratch.raw;
    layout.clear();
    for entry in entries {
        let line = text
            .as_bytes()
            .get(entry.start..entry.end())
            .unwrap_or_default();
        varint::put_varint(layout, entry.ts);
        varint::put_uvarint(layout, line.len() as u64);
        layout.extend_from_slice(line);
    }
    let mut compressed = Vec::with_capacity(layout.len() / 4 + 64);
    codec.compress_with_level(layout, zstd_level, &mut compressed);
    compressed
}

/// Decompresses a block and splits it into its lines, back to back, and their
/// entries, in stored order.
pub(super) fn parse(
    codec: Codec,
    compressed: &[u8],
    meta: &BlockMeta,
) -> Result<(Vec<u8>, Vec<EntryRef>), ChunkError> {
    let mut raw = Vec::with_capacity(meta.uncompressed_size.min(MAX_PREALLOCATION));
    codec.decompress(compressed, &mut raw, meta.uncompressed_size)?;
    if raw.len() != meta.uncompressed_size {
        return Err(ChunkError::corrupt(format!(
            "block decompressed to {} bytes, meta says {}",
            raw.len(),
            meta.uncompressed_size
        )));
    }
    let mut reader = Reader::new(&raw);
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
    Ok((text, entries))
}

#[cfg(test)]
mod tests {
    use super::super::tests::build;
    use super::super::{decode_block, BlockMeta};
    use crate::codec::Codec;
    use crate::format::ChunkFormat;

    #[test]
    fn layout_is_varint_ts_len_line() {
        let block = build(ChunkFormat::V1, Codec::None, &[(-1i64, "a"), (300, "bc")]);
        assert_eq!(
            &*block.data,
            [0x01, 0x01, b'a', 0xd8, 0x04, 0x02, b'b', b'c']
        );
        assert_eq!(block.meta.uncompressed_size, 8);
    }

    #[test]
    fn rejects_malformed_layouts() {
        let decode = |data: &[u8], entries: usize| {
            let meta = BlockMeta {
                entries,
                min_ts: 1,
                max_ts: 1,
                uncompressed_size: data.len(),
                checksum: 0,
            };
            decode_block(ChunkFormat::V1, Codec::None, data, &meta)
        };
        assert!(decode(&[0x02, 0x01, b'a'], 1).is_ok());
        // Truncated line, truncated varint, invalid UTF-8.
        assert!(decode(&[0x02, 0x02, b'a'], 1).is_err());
        assert!(decode(&[0x02, 0x81], 1).is_err());
        assert!(decode(&[0x02, 0x01, 0xff], 1).is_err());
        // A multi-byte character split across two entries.
        assert!(decode(&[0x02, 0x01, 0xc3, 0x02, 0x01, 0xa9], 2).is_err());
        // Decompressed size differs from the meta's.
        let meta = BlockMeta {
            entries: 1,
            min_ts: 1,
            max_ts: 1,
            uncompressed_size: 4,
            checksum: 0,
        };
        assert!(decode_block(ChunkFormat::V1, Codec::None, &[0x02, 0x01, b'a'], &meta).is_err());
    }
}
