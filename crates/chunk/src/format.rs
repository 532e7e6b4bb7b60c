//! The serialized chunk format; `docs/formats.md` documents it byte by byte.
//!
//! ```text
//! magic u32 BE (0x534C4331, "SLC1") | version u8 (1, 2 or 3) | codec id u8
//! block 0 bytes | CRC-32 u32 BE | block 1 bytes | CRC-32 u32 BE | …
//! meta: uvarint #blocks, then per block uvarint entries, varint min ts,
//!       varint max ts, uvarint offset, uvarint uncompressed size,
//!       uvarint compressed length
//! CRC-32 u32 BE of the meta section | meta offset u64 BE
//! ```
//!
//! Every version shares this container and differ only in what a block's
//! bytes hold ([`ChunkFormat`]). Readers dispatch on the version byte, so every
//! version stays readable alongside the newest.

use bytes::Bytes;

use crate::block::{Block, BlockMeta, Scratch};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::memchunk::{MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE};
use crate::varint::{self, Reader};

/// The magic number a Sluice chunk starts with: "SLC1" in ASCII.
pub const CHUNK_MAGIC: u32 = 0x534C_4331;
/// The version byte of [`ChunkFormat::V1`] chunks.
pub const CHUNK_FORMAT_V1: u8 = 1;
/// The version byte of [`ChunkFormat::V2`] chunks.
pub const CHUNK_FORMAT_V2: u8 = 2;
/// The version byte of [`ChunkFormat::V3`] chunks.
pub const CHUNK_FORMAT_V3: u8 = 3;

/// The chunk format version: how the entries of a block are laid out before
/// compression. It is the chunk header's version byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChunkFormat {
    /// Version 1: per entry `varint ts, uvarint len, line`, interleaved, and
    /// the whole block compressed as one stream. Still read; written only by
    /// chunks decoded from version 1 (so appending to one keeps it
    /// consistent) and by writers that ask for it with
    /// [`MemChunk::with_format`], e.g. while older readers remain.
    V1,
    /// Version 2, the default: a column of delta-encoded timestamps, a column
    /// of line lengths and the concatenated lines, compressed separately.
    /// About 7–12% smaller than version 1 on service logs, see
    /// `docs/performance.md`.
    #[default]
    V2,
    /// Version 3: lines split into templates and variables (after CLP), the
    /// timestamp column as in version 2, no length column. Smaller than
    /// version 2 on service logs and costlier to write and read, see
    /// `docs/performance.md`.
    V3,
}

impl ChunkFormat {
    /// Every format, oldest first.
    pub const ALL: [ChunkFormat; 3] = [ChunkFormat::V1, ChunkFormat::V2, ChunkFormat::V3];

    /// Returns the version byte of the format.
    pub fn version(self) -> u8 {
        match self {
            ChunkFormat::V1 => CHUNK_FORMAT_V1,
            ChunkFormat::V2 => CHUNK_FORMAT_V2,
            ChunkFormat::V3 => CHUNK_FORMAT_V3,
        }
    }

    /// Returns the format's name in configuration: `v1`, `v2` or `v3`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkFormat::V1 => "v1",
            ChunkFormat::V2 => "v2",
            ChunkFormat::V3 => "v3",
        }
    }

    /// Returns the format named `name` in configuration (see
    /// [`ChunkFormat::as_str`]), or `None`.
    pub fn from_name(name: &str) -> Option<ChunkFormat> {
        ChunkFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
    }

    /// Returns the format with version byte `version`, or
    /// [`ChunkError::UnsupportedVersion`].
    pub fn from_version(version: u8) -> Result<ChunkFormat, ChunkError> {
        match version {
            CHUNK_FORMAT_V1 => Ok(ChunkFormat::V1),
            CHUNK_FORMAT_V2 => Ok(ChunkFormat::V2),
            CHUNK_FORMAT_V3 => Ok(ChunkFormat::V3),
            other => Err(ChunkError::UnsupportedVersion(other)),
        }
    }
}

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
    /// Serializes the chunk in its [`ChunkFormat`], including the head entries
    /// as a final block without cutting it.
    pub fn encode(&self) -> Vec<u8> {
        let mut scratch = Scratch::default();
        let head_block =
            self.head
                .to_block(self.format(), self.codec(), self.zstd_level(), &mut scratch);
        let blocks: Vec<&Block> = self.blocks.iter().chain(head_block.as_ref()).collect();
        let data_len: usize = blocks.iter().map(|block| block.data.len() + CRC_LEN).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + data_len + 32 * blocks.len() + 16);
        out.extend_from_slice(&CHUNK_MAGIC.to_be_bytes());
        out.push(self.format().version());
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

    /// Deserializes a chunk written by [`MemChunk::encode`] in any
    /// [`ChunkFormat`], with the default block and target sizes for further
    /// appends. The chunk keeps its format: blocks cut later are written in it.
    ///
    /// Validates the magic, the version, the codec id, every checksum and every
    /// offset and length; it never panics, whatever the bytes. Blocks are not
    /// decompressed here: a query decompresses the blocks it needs.
    pub fn decode(bytes: &[u8]) -> Result<MemChunk, ChunkError> {
        MemChunk::decode_with_sizes(
            Bytes::copy_from_slice(bytes),
            DEFAULT_BLOCK_SIZE,
            DEFAULT_TARGET_SIZE,
        )
    }

    /// Like [`MemChunk::decode`], sharing `bytes` (an object as downloaded)
    /// instead of copying blocks out of it, for an object the caller has
    /// already checked against a checksum of the whole object (the index's):
    /// the blocks' own CRCs are not computed again. The meta
    /// section's CRC still is.
    pub fn decode_verified(bytes: Bytes) -> Result<MemChunk, ChunkError> {
        MemChunk::decode_checked(bytes, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE, false)
    }

    /// Like [`MemChunk::decode`], with the block and target sizes that later
    /// appends should use.
    pub fn decode_with_sizes(
        bytes: Bytes,
        block_size: usize,
        target_size: usize,
    ) -> Result<MemChunk, ChunkError> {
        MemChunk::decode_checked(bytes, block_size, target_size, true)
    }

    fn decode_checked(
        bytes: Bytes,
        block_size: usize,
        target_size: usize,
        check_blocks: bool,
    ) -> Result<MemChunk, ChunkError> {
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(ChunkError::corrupt(format!(
                "{} bytes is shorter than an empty chunk",
                bytes.len()
            )));
        }
        let magic = read_u32(&bytes, 0)?;
        if magic != CHUNK_MAGIC {
            return Err(ChunkError::BadMagic {
                found: magic,
                expected: CHUNK_MAGIC,
            });
        }
        let format = ChunkFormat::from_version(bytes[4])?;
        decode_container(format, bytes, block_size, target_size, check_blocks)
    }
}

/// Reads the container shared by every format version; the blocks' bytes are
/// checked against their CRCs here (unless `check_blocks` is false: the caller
/// verified the whole object), and parsed when a query opens them.
fn decode_container(
    format: ChunkFormat,
    object: Bytes,
    block_size: usize,
    target_size: usize,
    check_blocks: bool,
) -> Result<MemChunk, ChunkError> {
    let bytes = &object[..];
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
        let data = object.slice(offset..data_end);
        let stored = read_u32(bytes, data_end)?;
        if check_blocks && crc32fast::hash(&data) != stored {
            return Err(ChunkError::ChecksumMismatch { block: index });
        }
        block_meta.checksum = stored;
        blocks.push(Block {
            meta: block_meta,
            data,
        });
        previous_end = data_end + CRC_LEN;
    }
    Ok(MemChunk::from_blocks(
        format,
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

    fn sample_chunk_in(format: ChunkFormat) -> MemChunk {
        let mut chunk = MemChunk::new(Codec::Zstd, 256, DEFAULT_TARGET_SIZE).with_format(format);
        for index in 0..40i64 {
            chunk.append((index * 37) % 100, &format!("msg=\"hello {index}\""));
        }
        chunk
    }

    fn sample_chunk() -> MemChunk {
        sample_chunk_in(ChunkFormat::default())
    }

    fn read_all(chunk: &MemChunk) -> Result<Vec<(i64, String)>, ChunkError> {
        let mut iter = chunk.iter(i64::MIN, i64::MAX, Direction::Forward)?;
        let mut all = Vec::new();
        while let Some((ts, line)) = iter.try_next_entry()? {
            all.push((ts, line.to_owned()));
        }
        Ok(all)
    }

    /// Recomputes every block CRC and the meta CRC, so that a mutation inside
    /// a block reaches the block parser instead of failing the checksum.
    fn fix_checksums(bytes: &mut [u8]) {
        let trailer_start = bytes.len() - TRAILER_LEN;
        let meta_offset = read_u64(bytes, trailer_start + CRC_LEN).expect("offset") as usize;
        let metas = parse_meta(&bytes[meta_offset..trailer_start], meta_offset).expect("meta");
        for (_, offset, len) in metas {
            let crc = crc32fast::hash(&bytes[offset..offset + len]);
            bytes[offset + len..offset + len + CRC_LEN].copy_from_slice(&crc.to_be_bytes());
        }
    }

    #[test]
    fn verified_objects_skip_only_the_block_crcs() {
        let encoded = sample_chunk_in(ChunkFormat::V2).encode();
        let entries = |chunk: &MemChunk| {
            chunk
                .iter(i64::MIN, i64::MAX, crate::Direction::Forward)
                .unwrap()
                .collect_all()
        };
        let checked = MemChunk::decode(&encoded).expect("valid");
        let verified = MemChunk::decode_verified(Bytes::from(encoded.clone())).expect("valid");
        assert_eq!(entries(&verified), entries(&checked));

        // A flipped byte in the first block's data: the full decode refuses
        // it, the verified one leaves it to the object checksum its caller
        // compared; a flipped byte in the meta section is refused by both.
        let mut bad_block = encoded.clone();
        bad_block[HEADER_LEN + 1] ^= 0xff;
        assert!(matches!(
            MemChunk::decode(&bad_block),
            Err(ChunkError::ChecksumMismatch { block: 0 })
        ));
        assert!(MemChunk::decode_verified(Bytes::from(bad_block)).is_ok());
        let mut bad_meta = encoded;
        let meta_byte = bad_meta.len() - TRAILER_LEN - 1;
        bad_meta[meta_byte] ^= 0xff;
        assert!(MemChunk::decode_verified(Bytes::from(bad_meta)).is_err());
    }

    #[test]
    fn version_two_is_the_default() {
        assert_eq!(ChunkFormat::default(), ChunkFormat::V2);
        assert_eq!(MemChunk::new(Codec::Zstd, 1, 0).format(), ChunkFormat::V2);
        assert_eq!(ChunkFormat::V1.version(), 1);
        assert_eq!(ChunkFormat::V2.version(), 2);
        assert_eq!(ChunkFormat::V3.version(), 3);
        for format in ChunkFormat::ALL {
            assert_eq!(ChunkFormat::from_version(format.version()), Ok(format));
            assert_eq!(ChunkFormat::from_name(format.as_str()), Some(format));
        }
        assert_eq!(ChunkFormat::from_name("v4"), None);
        for version in [0, 4, 255] {
            assert_eq!(
                ChunkFormat::from_version(version),
                Err(ChunkError::UnsupportedVersion(version))
            );
        }
    }

    #[test]
    fn encodes_header_and_trailer() {
        for format in ChunkFormat::ALL {
            let chunk = sample_chunk_in(format);
            let bytes = chunk.encode();
            assert_eq!(&bytes[..4], b"SLC1");
            assert_eq!(bytes[4], format.version());
            assert_eq!(bytes[5], Codec::Zstd.id());
            let meta_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
            let blocks = chunk.blocks() + 1; // the head becomes a final block
            assert_eq!(bytes[meta_offset] as usize, blocks);
            // encode does not mutate: the head is still there.
            assert_eq!(chunk.blocks(), blocks - 1);
            let decoded = MemChunk::decode(&bytes).expect("valid");
            assert_eq!(decoded.format(), format);
            assert_eq!(decoded.blocks(), blocks);
            assert_eq!(decoded.entries(), 40);
            assert_eq!(decoded.size_bytes(), decoded.compressed_bytes());
            assert_eq!(decoded.uncompressed_bytes(), chunk.uncompressed_bytes());
            assert_eq!(decoded.block_metas()[..blocks - 1], chunk.block_metas()[..]);
            assert_eq!(decoded.block_size(), DEFAULT_BLOCK_SIZE);
            assert_eq!(decoded.encode(), bytes, "re-encoding is byte-identical");
            assert_eq!(read_all(&decoded), read_all(&chunk));
        }
    }

    #[test]
    fn both_versions_hold_the_same_entries_and_cut_at_the_same_places() {
        let v1 = sample_chunk_in(ChunkFormat::V1);
        let v2 = sample_chunk_in(ChunkFormat::V2);
        let metas = |chunk: &MemChunk| {
            chunk
                .block_metas()
                .iter()
                .map(|meta| {
                    (
                        meta.entries,
                        meta.min_ts,
                        meta.max_ts,
                        meta.uncompressed_size,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(metas(&v1), metas(&v2));
        let from_v1 = MemChunk::decode(&v1.encode()).expect("v1");
        let from_v2 = MemChunk::decode(&v2.encode()).expect("v2");
        let all = read_all(&from_v1).expect("v1 entries");
        assert_eq!(all.len(), 40);
        assert_eq!(read_all(&from_v2).expect("v2 entries"), all);
    }

    #[test]
    fn appending_to_a_decoded_chunk_keeps_its_format() {
        for format in ChunkFormat::ALL {
            let mut decoded = MemChunk::decode(&sample_chunk_in(format).encode()).expect("valid");
            decoded.append(-5, "new");
            decoded.cut_block();
            decoded.append(7, "newer");
            let bytes = decoded.encode();
            assert_eq!(bytes[4], format.version());
            let again = MemChunk::decode(&bytes).expect("valid");
            assert_eq!(again.format(), format);
            let all = read_all(&again).expect("entries");
            assert_eq!(all.len(), 42);
            assert_eq!(all[0], (-5, "new".to_owned()));
            assert!(all.contains(&(7, "newer".to_owned())));
        }
    }

    #[test]
    #[should_panic(expected = "cannot change")]
    fn format_of_a_chunk_with_blocks_is_fixed() {
        let _ = sample_chunk_in(ChunkFormat::V1).with_format(ChunkFormat::V2);
    }

    #[test]
    fn corrupt_v2_block_with_valid_checksums_is_an_error_on_read() {
        let chunk = sample_chunk_in(ChunkFormat::V2);
        let mut bytes = chunk.encode();
        // Block 0 starts right after the header with its column lengths:
        // make the timestamp column claim more bytes than the block holds.
        bytes[HEADER_LEN] = 0x7f;
        fix_checksums(&mut bytes);
        let decoded = MemChunk::decode(&bytes).expect("the container is valid");
        let error = read_all(&decoded).expect_err("block 0 is corrupt");
        assert!(
            matches!(&error, ChunkError::Corrupt { reason } if reason.contains("timestamp column")),
            "{error}"
        );
        // A query that skips block 0 does not see the damage.
        let meta = decoded.block_metas()[0];
        let later = decoded
            .iter(meta.max_ts + 1, i64::MAX, Direction::Forward)
            .expect("iterator");
        assert!(!later.collect_all().is_empty());
    }

    #[test]
    fn empty_chunk_round_trips() {
        let chunk = MemChunk::new(Codec::None, 10, 10);
        let bytes = chunk.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 1 + TRAILER_LEN);
        let decoded =
            MemChunk::decode_with_sizes(Bytes::from(bytes.clone()), 10, 10).expect("valid");
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
        for version in [0, 4] {
            let mut bad_version = bytes.clone();
            bad_version[4] = version;
            assert_eq!(
                MemChunk::decode(&bad_version).expect_err("unknown version"),
                ChunkError::UnsupportedVersion(version)
            );
        }
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
            version in CHUNK_FORMAT_V1..=CHUNK_FORMAT_V3,
            codec_id in 0u8..10,
        ) {
            let mut bytes = CHUNK_MAGIC.to_be_bytes().to_vec();
            bytes.push(version);
            bytes.push(codec_id);
            bytes.extend_from_slice(&tail);
            let _ = MemChunk::decode(&bytes);
        }

        #[test]
        fn mutations_and_truncations_never_panic(
            format in 0usize..ChunkFormat::ALL.len(),
            position in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = sample_chunk_in(ChunkFormat::ALL[format]).encode();
            let mut mutated = bytes.clone();
            let at = position.index(mutated.len());
            mutated[at] ^= xor;
            if let Ok(chunk) = MemChunk::decode(&mutated) {
                let mut iter = chunk.iter(i64::MIN, i64::MAX, Direction::Forward).expect("iterator");
                while iter.next_entry().is_some() {}
            }
            let _ = MemChunk::decode(&bytes[..cut.index(bytes.len())]);
        }

        /// Bytes flipped inside a block with every checksum recomputed reach
        /// the block parser: reading reports an error or entries, never panics.
        #[test]
        fn corrupt_blocks_behind_valid_checksums_never_panic(
            format in 0usize..ChunkFormat::ALL.len(),
            codec_index in 0usize..Codec::ALL.len(),
            position in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let mut chunk = MemChunk::new(Codec::ALL[codec_index], 256, DEFAULT_TARGET_SIZE)
                .with_format(ChunkFormat::ALL[format]);
            for index in 0..40i64 {
                // Ids repeated three times and a counter: version 3 stores
                // references and differences.
                let trace = ((index / 3 + 1) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                chunk.append(
                    (index * 37) % 100,
                    &format!("msg=\"hello {index}\" seq={} trace={trace:016x}", 1000 + index),
                );
            }
            let mut bytes = chunk.encode();
            let meta_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
            let at = HEADER_LEN + position.index(meta_offset - HEADER_LEN);
            bytes[at] ^= xor;
            fix_checksums(&mut bytes);
            let decoded = MemChunk::decode(&bytes).expect("container is intact");
            match read_all(&decoded) {
                Ok(entries) => prop_assert!(entries.len() <= 40),
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}
