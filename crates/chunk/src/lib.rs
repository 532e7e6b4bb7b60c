//! Sluice's storage primitives, shared by the distributor, ingester and querier.
//!
//! This crate owns:
//! - [`Labels`]: parsing Loki push-path label strings (`{a="1", b="2"}`), their
//!   canonical string form, and the stable [`Labels::fingerprint`] used in keys;
//! - [`Codec`]: block compression with Loki's codec names and id bytes;
//! - [`MemChunk`]: one stream's chunk (unordered head block, compressed blocks),
//!   its owned query iterator [`ChunkIter`], and its serialized format;
//! - the object-store layout ([`key`]): schema periods, [`ChunkKey`] and index
//!   file names ([`IndexFileName`]);
//! - the per-(period, tenant) index file ([`index`]): [`IndexWriter`] and
//!   [`IndexReader`], mapping label matchers to series to [`ChunkRef`]s;
//! - index statistics and byte volumes over chunk metadata ([`stats`]), with
//!   replicas' copies of a chunk counted once.
//!
//! It is pure: no async runtime, no I/O. The byte formats are documented in
//! `docs/formats.md`.

mod block;
pub mod codec;
mod digest;
mod error;
mod format;
mod head;
mod hint;
pub mod index;
mod iter;
pub mod key;
pub mod labels;
pub mod memchunk;
mod shard;
pub mod stats;
mod varint;

pub use block::BlockMeta;
pub use codec::{Codec, DEFAULT_ZSTD_LEVEL};
pub use digest::{line_digest, line_hash};
pub use error::ChunkError;
pub use format::{ChunkFormat, CHUNK_FORMAT_V1, CHUNK_FORMAT_V2, CHUNK_FORMAT_V3, CHUNK_MAGIC};
pub use hint::LineHint;
pub use index::{
    ChunkRef, IndexReader, IndexWriter, LabelMatcher, SeriesId, SeriesLabels, INDEX_FORMAT_V1,
    INDEX_MAGIC,
};
pub use iter::ChunkIter;
pub use key::{
    index_dir, is_valid_writer, period_index, ChunkKey, IndexFileKind, IndexFileName, PeriodConfig,
    DEFAULT_INDEX_PREFIX, DEFAULT_PERIOD_NS, INDEX_FILE_EXTENSION,
};
pub use labels::{go_quote, is_valid_label_name, Label, Labels, LabelsError};
pub use memchunk::{Direction, MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE};
pub use shard::{Shard, ShardError};
