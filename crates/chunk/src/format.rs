//! The serialized chunk format (version 1); `docs/formats.md` documents it
//! byte by byte.
//!
//! ```text
//! magic u32 BE (0x534C4331, "SLC1") | version u8 (1) | codec id u8
//! block 0 bytes | CRC-32 u32 BE | block 1 bytes | CRC-32 u32 BE | …
//! meta: uvarint #blocks, then per block uvarint entries, varint min ts,
//!       varint max ts, uvarint offset, uvarint uncompressed size,
//!       uvarint compressed length
//! CRC-32 u32 BE of the meta section | meta offset u64 BE
//! ```
//!
//! Readers dispatch on the version byte, so later versions can be read
//! alongside this one.

use std::sync::Arc;

use crate::block::{Block, BlockMeta};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::memchunk::{MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE};
use crate::varint::{self, Reader};

/// The magic number a Sluice chunk starts with: "SLC1" in ASCII.
pub const CHUNK_MAGIC: u32 = 0x534C_4331;
/// The chunk format version [`MemChunk::encode`] writes.
pub const CHUNK_FORMAT_V1: u8 = 1;

/// Magic, version and codec id.
const HEADER_LEN: usize = 6;
/// Meta CRC and meta offset.
const TRAILER_LEN: usize = 12;
/// A CRC-32 after each block.
const CRC_LEN: usize = 4;
/// Largest uncompressed block accepted from the wire (4 GiB would be absurd;
/// Loki's largest block setting is a few MiB).
const MAX_BLOCK_UNCOMPRESSED_SIZE: u64 = 1 << 30;
/// Smallest layout of one entry: 1-byte timestamp varint, 1-byte length varint.
const MIN_ENTRY_LAYOUT: u64 = 2;

impl MemChunk {
    /// Serializes the chunk (format version 1), including the head entries as a
    /// final block without cutting it.
    pub fn encode(&self) -> Vec<u8> {
        let mut scratch = Vec::new();
        let head_block = self
            .head
            .to_block(self.codec(), self.zstd_level(), &mut scratch);
        let blocks: Vec<&Block> = self.blocks.iter().chain(head_block.as_ref()).collect();
        let data_len: usize = blocks.iter().map(|block| block.data.len() + CRC_LEN).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + data_len + 32 * blocks.len() + 16);
        out.extend_from_slice(&CHUNK_MAGIC.to_be_bytes());
        out.push(CHUNK_FORMAT_V1);
        out.push(self.codec().id());
        let mut offsets = Vec::with_capacity(blocks.len());
        for block in &blocks {
            offsets.push(out.len());
            out.extend_from_slice(&block.data);
            out.extend_from_slice(&block.meta.checksum.to_be_bytes());
        }
        let meta_offset = out.len();
        varint::put_uvarint(&mut out, blocks.len() as u64);
        for (block, offset) in blocks.iter().zip(offsets) {
            varint::put_uvarint(&mut out, block.meta.entries as u64);
            varint::put_varint(&mut out, block.meta.min_ts);
            varint::put_varint(&mut out, block.meta.max_ts);
            varint::put_uvarint(&mut out, offset as u64);
            varint::put_uvarint(&mut out, block.meta.uncompressed_size as u64);
            varint::put_uvarint(&mut out, block.data.len() as u64);
        }
        let meta_checksum = crc32fast::hash(&out[meta_offset..]);
        out.extend_from_slice(&meta_checksum.to_be_bytes());
        out.extend_from_slice(&(meta_offset as u64).to_be_bytes());
        out
    }

    /// Deserializes a chunk written by [`MemChunk::encode`], with the default
    /// block and target sizes for further appends.
    ///
    /// Validates the magic, the version, the codec id, every checksum and every
    /// offset and length; it never panics, whatever the bytes. Blocks are not
    /// decompressed here: a query decompresses the blocks it needs.
    pub fn decode(bytes: &[u8]) -> Result<MemChunk, ChunkError> {
        MemChunk::decode_with_sizes(bytes, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE)
    }

    /// Like [`MemChunk::decode`], with the block and target sizes that later
    /// appends should use.
    pub fn decode_with_sizes(
        bytes: &[u8],
        block_size: usize,
        target_size: usize,
    ) -> Result<MemChunk, ChunkError> {
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(ChunkError::corrupt(format!(
                "{} bytes is shorter than an empty chunk",
                bytes.len()
            )));
        }
        let magic = read_u32(bytes, 0)?;
        if magic != CHUNK_MAGIC {
            return Err(ChunkError::BadMagic {
                found: magic,
                expected: CHUNK_MAGIC,
            });
        }
        match bytes[4] {
            CHUNK_FORMAT_V1 => decode_v1(bytes, block_size, target_size),
            other => Err(ChunkError::UnsupportedVersion(other)),
        }
    }
}

fn decode_v1(bytes: &[u8], block_size: usize, target_size: usize) -> Result<MemChunk, ChunkError> {
    let codec = Codec::from_id(bytes[5])?;
    let trailer_start = bytes.len() - TRAILER_LEN;
    let meta_offset = usize::try_from(read_u64(bytes, trailer_start + CRC_LEN)?)
        .ok()
        .filter(|offset| (HEADER_LEN..=trailer_start).contains(offset))
        .ok_or_else(|| ChunkError::corrupt("meta section offset out of bounds"))?;
    let meta = &bytes[meta_offset..trailer_start];
    if crc32fast::hash(meta) != read_u32(bytes, trailer_start)? {
        return Err(ChunkError::MetaChecksumMismatch);
    }
    let metas = parse_meta(meta, meta_offset)?;
    let mut blocks = Vec::with_capacity(metas.len());
    let mut previous_end = HEADER_LEN;
    for (index, (mut block_meta, offset, compressed_len)) in metas.into_iter().enumerate() {
        if offset < previous_end {
            return Err(ChunkError::corrupt(format!(
                "block {index} overlaps the data before it"
            )));
        }
        let data_end = offset
            .checked_add(compressed_len)
            .filter(|end| end.saturating_add(CRC_LEN) <= meta_offset)
            .ok_or_else(|| {
                ChunkError::corrupt(format!("block {index} runs past the meta section"))
            })?;
        let data = &bytes[offset..data_end];
        let stored = read_u32(bytes, data_end)?;
        if crc32fast::hash(data) != stored {
            return Err(ChunkError::ChecksumMismatch { block: index });
        }
        block_meta.checksum = stored;
        blocks.push(Block {
            meta: block_meta,
            data: Arc::from(data),
        });
        previous_end = data_end + CRC_LEN;
    }
    Ok(MemChunk::from_blocks(
        codec,
        block_size,
        target_size,
        blocks,
    ))
}

/// Parses the meta section into (meta, offset, compressed length) per block.
fn parse_meta(
    meta: &[u8],
    meta_offset: usize,
) -> Result<Vec<(BlockMeta, usize, usize)>, ChunkError> {
    let bad = |what: &str| ChunkError::corrupt(format!("bad {what} in block meta section"));
    let mut reader = Reader::new(meta);
    let count = reader.uvarint().ok_or_else(|| bad("block count"))?;
    let mut metas = Vec::new();
    for _ in 0..count {
        let entries = reader.uvarint().ok_or_else(|| bad("entry count"))?;
        let min_ts = reader.varint().ok_or_else(|| bad("min timestamp"))?;
        let max_ts = reader.varint().ok_or_else(|| bad("max timestamp"))?;
        let offset = reader.uvarint().ok_or_else(|| bad("block offset"))?;
        let uncompressed_size = reader.uvarint().ok_or_else(|| bad("uncompressed size"))?;
        let compressed_len = reader.uvarint().ok_or_else(|| bad("compressed length"))?;
        if entries == 0 || entries.saturating_mul(MIN_ENTRY_LAYOUT) > uncompressed_size {
            return Err(bad("entry count"));
        }
        if min_ts > max_ts {
            return Err(bad("time range"));
        }
        if uncompressed_size > MAX_BLOCK_UNCOMPRESSED_SIZE {
            return Err(bad("uncompressed size"));
        }
        let as_offset = |value: u64| {
            usize::try_from(value)
                .ok()
                .filter(|value| *value <= meta_offset)
        };
        let (Some(offset), Some(compressed_len)) = (as_offset(offset), as_offset(compressed_len))
        else {
            return Err(bad("block offset or length"));
        };
        let to_usize = |value: u64| usize::try_from(value).map_err(|_| bad("size"));
        metas.push((
            BlockMeta {
                entries: to_usize(entries)?,
                min_ts,
                max_ts,
                uncompressed_size: to_usize(uncompressed_size)?,
                checksum: 0,
            },
            offset,
            compressed_len,
        ));
    }
    if !reader.is_at_end() {
        return Err(ChunkError::corrupt(format!(
            "{} trailing bytes after the block meta section",
            meta.len() - reader.position()
        )));
    }
    Ok(metas)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ChunkError> {
    bytes
        .get(at..at.saturating_add(4))
        .and_then(|slice| <[u8; 4]>::try_from(slice).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| ChunkError::corrupt("truncated u32"))
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, ChunkError> {
    bytes
        .get(at..at.saturating_add(8))
        .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ChunkError::corrupt("truncated u64"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::memchunk::Direction;

    fn sample_chunk() -> MemChunk {
        let mut chunk = MemChunk::new(Codec::Zstd, 256, DEFAULT_TARGET_SIZE);
        for index in 0..40i64 {
            chunk.append((index * 37) % 100, &format!("msg=\"hello {index}\""));
        }
        chunk
    }

    #[test]
    fn encodes_header_and_trailer() {
        let chunk = sample_chunk();
        let bytes = chunk.encode();
        assert_eq!(&bytes[..4], b"SLC1");
        assert_eq!(bytes[4], CHUNK_FORMAT_V1);
        assert_eq!(bytes[5], Codec::Zstd.id());
        let meta_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
        let blocks = chunk.blocks() + 1; // the head becomes a final block
        assert_eq!(bytes[meta_offset] as usize, blocks);
        // encode does not mutate: the head is still there.
        assert_eq!(chunk.blocks(), blocks - 1);
        let decoded = MemChunk::decode(&bytes).expect("valid");
        assert_eq!(decoded.blocks(), blocks);
        assert_eq!(decoded.entries(), 40);
        assert_eq!(decoded.size_bytes(), decoded.compressed_bytes());
        assert_eq!(decoded.block_size(), DEFAULT_BLOCK_SIZE);
        assert_eq!(decoded.encode(), bytes, "re-encoding is byte-identical");
    }

    #[test]
    fn empty_chunk_round_trips() {
        let chunk = MemChunk::new(Codec::None, 10, 10);
        let bytes = chunk.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 1 + TRAILER_LEN);
        let decoded = MemChunk::decode_with_sizes(&bytes, 10, 10).expect("valid");
        assert!(decoded.is_empty());
        assert_eq!(decoded.bounds(), None);
    }

    #[test]
    fn decoded_chunk_accepts_more_appends() {
        let mut decoded = MemChunk::decode(&sample_chunk().encode()).expect("valid");
        decoded.append(-5, "new");
        let all = decoded
            .iter(i64::MIN, i64::MAX, Direction::Forward)
            .expect("iterator")
            .collect_all();
        assert_eq!(all.len(), 41);
        assert_eq!(all[0], (-5, "new".to_owned()));
    }

    #[test]
    fn corrupted_block_byte_is_a_checksum_error() {
        let bytes = sample_chunk().encode();
        let mut corrupted = bytes.clone();
        corrupted[HEADER_LEN + 3] ^= 0x01;
        assert_eq!(
            MemChunk::decode(&corrupted).expect_err("corrupt"),
            ChunkError::ChecksumMismatch { block: 0 }
        );
        // The stored CRC itself flipped.
        let meta_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
        let mut corrupted = bytes.clone();
        corrupted[meta_offset - 1] ^= 0x80;
        assert!(matches!(
            MemChunk::decode(&corrupted),
            Err(ChunkError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn corrupted_header_and_meta_are_named() {
        let bytes = sample_chunk().encode();
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            MemChunk::decode(&bad_magic),
            Err(ChunkError::BadMagic {
                expected: CHUNK_MAGIC,
                ..
            })
        ));
        let mut bad_version = bytes.clone();
        bad_version[4] = 2;
        assert_eq!(
            MemChunk::decode(&bad_version).expect_err("v2"),
            ChunkError::UnsupportedVersion(2)
        );
        let mut bad_codec = bytes.clone();
        bad_codec[5] = 2;
        assert_eq!(
            MemChunk::decode(&bad_codec).expect_err("codec"),
            ChunkError::UnknownCodec(2)
        );
        let meta_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
        let mut bad_meta = bytes.clone();
        bad_meta[meta_offset + 1] ^= 0x01;
        assert_eq!(
            MemChunk::decode(&bad_meta).expect_err("meta"),
            ChunkError::MetaChecksumMismatch
        );
        let mut bad_offset = bytes.clone();
        let last = bad_offset.len() - 1;
        bad_offset[last] ^= 0x01;
        assert!(MemChunk::decode(&bad_offset).is_err());
        let error = MemChunk::decode(&bytes[..10]).expect_err("short");
        assert_eq!(
            error.to_string(),
            "corrupt chunk: 10 bytes is shorter than an empty chunk"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_chunk().encode();
        for len in 0..bytes.len() {
            assert!(
                MemChunk::decode(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    #[test]
    fn inconsistent_meta_with_valid_checksum_is_corrupt() {
        // Rebuild a chunk whose meta claims an offset inside the header.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&CHUNK_MAGIC.to_be_bytes());
        bytes.extend_from_slice(&[CHUNK_FORMAT_V1, Codec::None.id()]);
        bytes.extend_from_slice(b"\x02\x01a");
        bytes.extend_from_slice(&crc32fast::hash(b"\x02\x01a").to_be_bytes());
        let meta_offset = bytes.len();
        for offset in [0u8, 6] {
            let mut chunk = bytes[..meta_offset].to_vec();
            // 1 block: 1 entry, ts 1..1, offset, uncompressed 3, compressed 3.
            chunk.extend_from_slice(&[1, 1, 2, 2, offset, 3, 3]);
            let crc = crc32fast::hash(&chunk[meta_offset..]);
            chunk.extend_from_slice(&crc.to_be_bytes());
            chunk.extend_from_slice(&(meta_offset as u64).to_be_bytes());
            let result = MemChunk::decode(&chunk);
            if offset == 6 {
                let decoded = result.expect("valid hand-made chunk");
                let all = decoded
                    .iter(0, 10, Direction::Forward)
                    .expect("iterator")
                    .collect_all();
                assert_eq!(all, [(1, "a".to_owned())]);
            } else {
                assert!(
                    matches!(result, Err(ChunkError::Corrupt { .. })),
                    "{result:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = MemChunk::decode(&bytes);
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..256),
            codec_id in 0u8..10,
        ) {
            let mut bytes = CHUNK_MAGIC.to_be_bytes().to_vec();
            bytes.push(CHUNK_FORMAT_V1);
            bytes.push(codec_id);
            bytes.extend_from_slice(&tail);
            let _ = MemChunk::decode(&bytes);
        }

        #[test]
        fn mutations_and_truncations_never_panic(
            position in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = sample_chunk().encode();
            let mut mutated = bytes.clone();
            let at = position.index(mutated.len());
            mutated[at] ^= xor;
            if let Ok(chunk) = MemChunk::decode(&mutated) {
                let mut iter = chunk.iter(i64::MIN, i64::MAX, Direction::Forward).expect("iterator");
                while iter.next_entry().is_some() {}
            }
            let _ = MemChunk::decode(&bytes[..cut.index(bytes.len())]);
        }
    }
}
