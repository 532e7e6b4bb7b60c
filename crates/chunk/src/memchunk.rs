//! The in-memory chunk of one stream: a head block of raw entries in arrival
//! order plus immutable compressed blocks, queried through [`ChunkIter`].

use std::fmt;

use crate::block::{Block, BlockMeta, Scratch};
use crate::codec::{Codec, DEFAULT_ZSTD_LEVEL};
use crate::error::ChunkError;
use crate::format::ChunkFormat;
use crate::head::HeadBlock;
use crate::iter::{ChunkIter, PendingBlock};

/// Loki's default `ingester.chunk_block_size`: uncompressed bytes per block.
pub const DEFAULT_BLOCK_SIZE: usize = 262_144;
/// Loki's default `ingester.chunk_target_size`: compressed bytes per chunk.
pub const DEFAULT_TARGET_SIZE: usize = 1_572_864;
/// Blocks per chunk when the target size is 0 (Loki's `blocksPerChunk`).
const BLOCKS_PER_CHUNK: usize = 10;

/// The order in which a query returns entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Oldest first; equal timestamps in arrival order.
    #[default]
    Forward,
    /// Newest first: the exact reverse of [`Direction::Forward`].
    Backward,
}

/// The chunk of log entries of one stream.
///
/// Entries may be appended in any timestamp order (Loki's unordered head block).
/// The head holds them raw; once their uncompressed size reaches `block_size`
/// bytes it is cut: the entries are sorted by (timestamp, arrival), laid out as
/// the chunk's [`ChunkFormat`] says and compressed into an immutable block.
/// Blocks may overlap in time, so queries merge them (and the head) by
/// timestamp.
///
/// "Uncompressed size" throughout means the *logical* size: what the entries
/// take in the version-1 block layout (`varint ts, uvarint len, line` per
/// entry, see `docs/formats.md`), whatever the chunk's format, so that the
/// block and target sizes mean the same in every format.
#[derive(Clone)]
pub struct MemChunk {
    format: ChunkFormat,
    codec: Codec,
    /// Encoder setting only: not stored in the chunk bytes.
    zstd_level: i32,
    block_size: usize,
    target_size: usize,
    pub(crate) blocks: Vec<Block>,
    compressed_bytes: usize,
    cut_uncompressed_bytes: usize,
    cut_entries: usize,
    pub(crate) head: HeadBlock,
    /// Reused uncompressed buffers for cutting blocks.
    pub(crate) scratch: Scratch,
}

impl MemChunk {
    /// Creates an empty chunk in the default [`ChunkFormat`]. Callers use
    /// Loki's defaults ([`DEFAULT_BLOCK_SIZE`], [`DEFAULT_TARGET_SIZE`]) unless
    /// configured otherwise; a `target_size` of 0 means "full at 10 blocks".
    pub fn new(codec: Codec, block_size: usize, target_size: usize) -> MemChunk {
        MemChunk {
            format: ChunkFormat::default(),
            codec,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            block_size,
            target_size,
            blocks: Vec::new(),
            compressed_bytes: 0,
            cut_uncompressed_bytes: 0,
            cut_entries: 0,
            head: HeadBlock::default(),
            scratch: Scratch::default(),
        }
    }

    /// Sets the format blocks are written in (default [`ChunkFormat::V2`]).
    /// Choosing [`ChunkFormat::V1`] keeps chunks readable by Sluice versions
    /// that predate version 2.
    ///
    /// # Panics
    ///
    /// If blocks were already cut: they keep their layout and a chunk is
    /// encoded in one format, so set the format on a new chunk.
    pub fn with_format(mut self, format: ChunkFormat) -> MemChunk {
        assert!(
            self.blocks.is_empty(),
            "the format of a chunk with cut blocks cannot change"
        );
        self.format = format;
        self
    }

    /// Returns the format the chunk's blocks are written in.
    pub fn format(&self) -> ChunkFormat {
        self.format
    }

    /// Sets the zstd level blocks cut from now on are compressed at (default
    /// [`DEFAULT_ZSTD_LEVEL`]; clamped to 1..=22; ignored by other codecs).
    ///
    /// The level is an encoder setting, not part of the format: blocks written
    /// at different levels decode alike and may share a chunk. Blocks are cut
    /// inside [`MemChunk::append`], so a higher level slows appends; see
    /// `docs/performance.md` for the trade-off.
    pub fn with_zstd_level(mut self, zstd_level: i32) -> MemChunk {
        self.zstd_level = zstd_level.clamp(1, 22);
        self
    }

    /// Returns the zstd level cut blocks are compressed at.
    pub fn zstd_level(&self) -> i32 {
        self.zstd_level
    }

    /// Builds a chunk from already-cut blocks of a `format` chunk (used by the
    /// decoder).
    pub(crate) fn from_blocks(
        format: ChunkFormat,
        codec: Codec,
        block_size: usize,
        target_size: usize,
        blocks: Vec<Block>,
    ) -> MemChunk {
        let mut chunk = MemChunk::new(codec, block_size, target_size).with_format(format);
        for block in blocks {
            chunk.push_block(block);
        }
        chunk
    }

    fn push_block(&mut self, block: Block) {
        self.compressed_bytes += block.data.len();
        self.cut_uncompressed_bytes += block.meta.uncompressed_size;
        self.cut_entries += block.meta.entries;
        self.blocks.push(block);
    }

    /// Appends one entry, in any timestamp order, cutting the head block when
    /// its uncompressed size reaches the block size.
    pub fn append(&mut self, ts_ns: i64, line: &str) {
        self.head.append(ts_ns, line);
        if self.head.layout_size() >= self.block_size {
            self.cut_block();
        }
    }

    /// Compresses the head block into an immutable block now (no-op if empty).
    pub fn cut_block(&mut self) {
        if let Some(block) =
            self.head
                .cut(self.format, self.codec, self.zstd_level, &mut self.scratch)
        {
            self.push_block(block);
        }
    }

    /// Cuts the head block like [`MemChunk::cut_block`] and frees its
    /// buffers instead of keeping them for the next entries: what an
    /// ingester does to a head it must not keep in memory uncompressed.
    pub fn cut_block_and_release(&mut self) {
        self.cut_block();
        self.head.release();
        self.scratch = Scratch::default();
    }

    /// Returns the uncompressed size of the head block (what is not
    /// compressed yet), in the block layout's terms.
    pub fn head_bytes(&self) -> usize {
        self.head.layout_size()
    }

    /// Returns whether the chunk should be closed: compressed cut blocks plus the
    /// uncompressed head reach the target size (or 10 blocks without a target).
    pub fn is_full(&self) -> bool {
        if self.target_size > 0 {
            self.size_bytes() >= self.target_size
        } else {
            self.blocks.len() >= BLOCKS_PER_CHUNK
        }
    }

    /// Returns whether a line of `line_len` bytes still fits under the target
    /// size (Loki's `SpaceFor`); the caller starts a new chunk otherwise.
    pub fn has_space_for(&self, line_len: usize) -> bool {
        if self.target_size > 0 {
            self.size_bytes() + line_len < self.target_size
        } else {
            self.blocks.len() < BLOCKS_PER_CHUNK
        }
    }

    /// Returns the compressed size of the cut blocks plus the uncompressed size
    /// of the head.
    pub fn size_bytes(&self) -> usize {
        self.compressed_bytes + self.head.layout_size()
    }

    /// Returns the compressed size of the cut blocks only.
    pub fn compressed_bytes(&self) -> usize {
        self.compressed_bytes
    }

    /// Returns the uncompressed size of every block, the head included.
    pub fn uncompressed_bytes(&self) -> usize {
        self.cut_uncompressed_bytes + self.head.layout_size()
    }

    /// Returns the number of entries, the head included.
    pub fn entries(&self) -> usize {
        self.cut_entries + self.head.len()
    }

    /// Returns whether the chunk holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries() == 0
    }

    /// Returns the smallest and largest timestamps, or `None` when empty.
    pub fn bounds(&self) -> Option<(i64, i64)> {
        self.blocks
            .iter()
            .map(|block| (block.meta.min_ts, block.meta.max_ts))
            .chain(self.head.bounds())
            .reduce(|(min, max), (block_min, block_max)| (min.min(block_min), max.max(block_max)))
    }

    /// Returns the number of cut blocks (the head is not counted).
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Returns the metadata of the cut blocks, in cut order.
    pub fn block_metas(&self) -> Vec<BlockMeta> {
        self.blocks.iter().map(|block| block.meta).collect()
    }

    /// Returns the codec blocks are compressed with.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Returns the head-block cut threshold, in uncompressed bytes.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Returns the target compressed size (0: full at 10 blocks).
    pub fn target_size(&self) -> usize {
        self.target_size
    }

    /// Returns an owned iterator over the entries with `from_ns <= ts < through_ns`.
    ///
    /// Entries come in timestamp order; equal timestamps come in arrival order
    /// going forward and in exactly the reverse order going backward. Blocks whose
    /// time range misses the query are never decompressed; the others are
    /// decompressed lazily, when the merge reaches them. The iterator shares the
    /// compressed blocks and copies the matching head entries, so it does not
    /// borrow the chunk.
    pub fn iter(
        &self,
        from_ns: i64,
        through_ns: i64,
        direction: Direction,
    ) -> Result<ChunkIter, ChunkError> {
        let pending = self
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, block)| block.meta.max_ts >= from_ns && block.meta.min_ts < through_ns)
            .map(|(order, block)| PendingBlock {
                order,
                meta: block.meta,
                data: block.data.clone(),
            })
            .collect();
        let (head_text, head_entries) = self.head.snapshot(from_ns, through_ns);
        Ok(ChunkIter::new(
            self.format,
            self.codec,
            direction,
            from_ns,
            through_ns,
            pending,
            (self.blocks.len(), head_text, head_entries),
        ))
    }
}

impl fmt::Debug for MemChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemChunk")
            .field("format", &self.format)
            .field("codec", &self.codec)
            .field("zstd_level", &self.zstd_level)
            .field("block_size", &self.block_size)
            .field("target_size", &self.target_size)
            .field("blocks", &self.blocks.len())
            .field("entries", &self.entries())
            .field("size_bytes", &self.size_bytes())
            .field("bounds", &self.bounds())
            .finish()
    }
}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;

    fn owned(entries: &[(i64, &str)]) -> Vec<(i64, String)> {
        entries
            .iter()
            .map(|(ts, line)| (*ts, (*line).to_owned()))
            .collect()
    }

    fn read(chunk: &MemChunk, from: i64, through: i64, direction: Direction) -> Vec<(i64, String)> {
        chunk
            .iter(from, through, direction)
            .expect("iterator")
            .collect_all()
    }

    fn reversed(mut entries: Vec<(i64, String)>) -> Vec<(i64, String)> {
        entries.reverse();
        entries
    }

    /// Reference model: stable sort by timestamp, then range filter.
    fn expected(appended: &[(i64, String)], from: i64, through: i64) -> Vec<(i64, String)> {
        let mut sorted: Vec<(i64, String)> = appended
            .iter()
            .filter(|(ts, _)| *ts >= from && *ts < through)
            .cloned()
            .collect();
        sorted.sort_by_key(|(ts, _)| *ts);
        sorted
    }

    #[test]
    fn out_of_order_appends_read_back_sorted_both_ways() {
        for cut_first in [false, true] {
            let mut chunk = MemChunk::new(Codec::Zstd, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
            for (ts, line) in [(5, "e"), (1, "a"), (3, "c"), (2, "b"), (4, "d")] {
                chunk.append(ts, line);
            }
            if cut_first {
                chunk.cut_block();
                assert_eq!(chunk.blocks(), 1);
            }
            let forward = owned(&[(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]);
            assert_eq!(read(&chunk, 0, 10, Direction::Forward), forward);
            assert_eq!(read(&chunk, 0, 10, Direction::Backward), reversed(forward));
            // from is inclusive, through exclusive.
            assert_eq!(
                read(&chunk, 2, 4, Direction::Forward),
                owned(&[(2, "b"), (3, "c")])
            );
            assert_eq!(
                read(&chunk, 2, 4, Direction::Backward),
                owned(&[(3, "c"), (2, "b")])
            );
            assert!(read(&chunk, 6, 10, Direction::Forward).is_empty());
            assert!(read(&chunk, 4, 4, Direction::Forward).is_empty());
            assert!(read(&chunk, 5, 1, Direction::Backward).is_empty());
            assert_eq!(chunk.bounds(), Some((1, 5)));
            assert_eq!(chunk.entries(), 5);
        }
    }

    #[test]
    fn ties_keep_arrival_order_across_blocks_and_head() {
        let mut chunk = MemChunk::new(Codec::Snappy, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
        chunk.append(10, "first");
        chunk.append(5, "early");
        chunk.append(10, "second");
        chunk.cut_block();
        chunk.append(10, "third");
        chunk.append(20, "late");
        chunk.cut_block();
        chunk.append(10, "fourth");
        chunk.append(1, "earliest");
        let forward = owned(&[
            (1, "earliest"),
            (5, "early"),
            (10, "first"),
            (10, "second"),
            (10, "third"),
            (10, "fourth"),
            (20, "late"),
        ]);
        assert_eq!(
            read(&chunk, i64::MIN, i64::MAX, Direction::Forward),
            forward
        );
        assert_eq!(
            read(&chunk, i64::MIN, i64::MAX, Direction::Backward),
            reversed(forward.clone())
        );
        let decoded = MemChunk::decode(&chunk.encode()).expect("round trip");
        assert_eq!(
            read(&decoded, i64::MIN, i64::MAX, Direction::Forward),
            forward
        );
        assert_eq!(
            read(&decoded, i64::MIN, i64::MAX, Direction::Backward),
            reversed(forward)
        );
    }

    #[test]
    fn cuts_blocks_automatically_at_block_size() {
        let line = "x".repeat(98);
        // Each entry is 1 (ts varint) + 1 (len varint) + 98 bytes = 100 bytes.
        let mut chunk = MemChunk::new(Codec::Lz4_64k, 1_000, 0);
        for ts in 0..25 {
            chunk.append(ts, &line);
        }
        assert_eq!(chunk.blocks(), 2);
        assert_eq!(chunk.entries(), 25);
        assert_eq!(chunk.uncompressed_bytes(), 2_500);
        let metas = chunk.block_metas();
        assert_eq!(metas[0].entries, 10);
        assert_eq!((metas[0].min_ts, metas[0].max_ts), (0, 9));
        assert_eq!(metas[0].uncompressed_size, 1_000);
        assert_eq!((metas[1].min_ts, metas[1].max_ts), (10, 19));
        assert_eq!(chunk.size_bytes(), chunk.compressed_bytes() + 500);
        assert!(!chunk.is_full());
        for ts in 25..100 {
            chunk.append(ts, &line);
        }
        assert_eq!(chunk.blocks(), 10);
        assert!(chunk.is_full(), "target 0 means 10 blocks");
        assert!(!chunk.has_space_for(1));
        assert_eq!(read(&chunk, 0, 100, Direction::Forward).len(), 100);
    }

    #[test]
    fn is_full_compares_size_with_target() {
        let mut chunk = MemChunk::new(Codec::None, 1 << 20, 1_000);
        assert!(chunk.is_empty());
        assert_eq!(chunk.bounds(), None);
        chunk.append(1, &"y".repeat(500));
        assert!(!chunk.is_full());
        assert!(chunk.has_space_for(400));
        assert!(!chunk.has_space_for(600));
        chunk.append(2, &"y".repeat(500));
        assert!(chunk.is_full());
        assert_eq!(chunk.size_bytes(), 2 * (1 + 2 + 500));
    }

    #[test]
    fn only_overlapping_blocks_are_decompressed() {
        let mut chunk = MemChunk::new(Codec::None, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
        chunk.append(1, "a");
        chunk.cut_block();
        chunk.append(100, "b");
        chunk.cut_block();
        // Corrupt the first block's bytes in memory: a query that skips it works,
        // one that needs it reports the error.
        chunk.blocks[0].data = bytes::Bytes::from_static(b"\xff\xff");
        assert_eq!(
            read(&chunk, 50, 200, Direction::Forward),
            owned(&[(100, "b")])
        );
        let mut iter = chunk.iter(0, 200, Direction::Forward).expect("iterator");
        assert_eq!(iter.next_entry(), None);
        assert!(matches!(iter.error(), Some(ChunkError::Corrupt { .. })));
        assert!(iter.try_next_entry().is_err());
    }

    #[test]
    fn iterator_outlives_the_chunk() {
        let mut chunk = MemChunk::new(Codec::Gzip, 64, DEFAULT_TARGET_SIZE);
        for ts in (0..50).rev() {
            chunk.append(ts, &format!("line {ts}"));
        }
        let mut iter = chunk.iter(10, 13, Direction::Forward).expect("iterator");
        drop(chunk);
        assert_eq!(iter.next_entry(), Some((10, "line 10")));
        assert_eq!(iter.next_entry(), Some((11, "line 11")));
        assert_eq!(iter.next_entry(), Some((12, "line 12")));
        assert_eq!(iter.next_entry(), None);
        assert!(iter.error().is_none());
    }

    #[test]
    fn every_codec_serves_queries() {
        for codec in Codec::ALL {
            let mut chunk = MemChunk::new(codec, 512, DEFAULT_TARGET_SIZE);
            let mut appended = Vec::new();
            for index in 0..300i64 {
                let ts = (index * 7919) % 1_000;
                let line = format!("level=info msg=\"entry {index}\" é");
                chunk.append(ts, &line);
                appended.push((ts, line));
            }
            assert!(chunk.blocks() > 5, "{codec}");
            assert_eq!(chunk.codec(), codec);
            assert_eq!(
                read(&chunk, 0, 1_000, Direction::Forward),
                expected(&appended, 0, 1_000)
            );
            let decoded = MemChunk::decode(&chunk.encode()).expect("round trip");
            assert_eq!(decoded.codec(), codec);
            assert_eq!(
                read(&decoded, 100, 700, Direction::Backward),
                reversed(expected(&appended, 100, 700)),
                "{codec}"
            );
        }
    }

    #[test]
    fn zstd_level_is_an_encoder_setting_only() {
        let lines: Vec<(i64, String)> = (0..3_000i64)
            .map(|index| {
                (
                    index,
                    format!(
                        "level=info msg=\"request completed\" path=/api/v1/orders/{} status=200 duration={}ms",
                        index % 97,
                        index % 13
                    ),
                )
            })
            .collect();
        let write = |level: Option<i32>, switch_to: Option<i32>| {
            let mut chunk = MemChunk::new(Codec::Zstd, 16 << 10, DEFAULT_TARGET_SIZE);
            if let Some(level) = level {
                chunk = chunk.with_zstd_level(level);
            }
            for (index, (ts, line)) in lines.iter().enumerate() {
                if index == lines.len() / 2 {
                    if let Some(level) = switch_to {
                        chunk = chunk.with_zstd_level(level);
                    }
                }
                chunk.append(*ts, line);
            }
            chunk.encode()
        };
        assert_eq!(
            MemChunk::new(Codec::Zstd, 1, 0).zstd_level(),
            DEFAULT_ZSTD_LEVEL
        );
        assert_eq!(
            MemChunk::new(Codec::Zstd, 1, 0)
                .with_zstd_level(0)
                .zstd_level(),
            1
        );
        assert_eq!(
            MemChunk::new(Codec::Zstd, 1, 0)
                .with_zstd_level(40)
                .zstd_level(),
            22
        );
        let default = write(None, None);
        assert_eq!(default, write(Some(DEFAULT_ZSTD_LEVEL), None));
        let fast = write(Some(1), None);
        let strong = write(Some(19), None);
        let mixed = write(Some(1), Some(19));
        assert!(
            strong.len() < fast.len(),
            "{} vs {}",
            strong.len(),
            fast.len()
        );
        for bytes in [&default, &fast, &strong, &mixed] {
            // Same codec id byte whatever the level.
            assert_eq!(bytes[5], Codec::Zstd.id());
            let decoded = MemChunk::decode(bytes).expect("decodes");
            assert_eq!(decoded.zstd_level(), DEFAULT_ZSTD_LEVEL);
            assert_eq!(
                read(&decoded, i64::MIN, i64::MAX, Direction::Forward),
                lines
            );
        }
    }

    proptest! {
        #[test]
        fn random_entries_round_trip(
            entries in proptest::collection::vec((-50i64..50, "\\PC{0,12}"), 0..120),
            block_size in 16usize..400,
            codec_index in 0usize..Codec::ALL.len(),
            format_index in 0usize..ChunkFormat::ALL.len(),
            cut in any::<bool>(),
            from in -60i64..60,
            span in 0i64..120,
        ) {
            let codec = Codec::ALL[codec_index];
            let format = ChunkFormat::ALL[format_index];
            let mut chunk =
                MemChunk::new(codec, block_size, DEFAULT_TARGET_SIZE).with_format(format);
            for (ts, line) in &entries {
                chunk.append(*ts, line);
            }
            if cut {
                chunk.cut_block();
            }
            prop_assert_eq!(chunk.entries(), entries.len());
            let through = from + span;
            let want = expected(&entries, from, through);
            prop_assert_eq!(read(&chunk, from, through, Direction::Forward), want.clone());
            prop_assert_eq!(read(&chunk, from, through, Direction::Backward), reversed(want.clone()));
            let decoded = MemChunk::decode(&chunk.encode()).expect("round trip");
            prop_assert_eq!(decoded.format(), format);
            prop_assert_eq!(decoded.entries(), entries.len());
            prop_assert_eq!(decoded.bounds(), chunk.bounds());
            prop_assert_eq!(decoded.uncompressed_bytes(), chunk.uncompressed_bytes());
            prop_assert_eq!(read(&decoded, from, through, Direction::Forward), want.clone());
            prop_assert_eq!(read(&decoded, from, through, Direction::Backward), reversed(want));
        }
    }
}
