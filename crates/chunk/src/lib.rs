//! Sluice's storage primitives, shared by the distributor, ingester and querier.
//!
//! This crate owns:
//! - [`Labels`]: parsing Loki push-path label strings (`{a="1", b="2"}`), their
//!   canonical string form, and the stable [`Labels::fingerprint`] used in keys;
//! - [`Codec`]: block compression with Loki's codec names and id bytes;
//! - [`MemChunk`]: one stream's chunk (unordered head block, compressed blocks),
//!   its owned query iterator [`ChunkIter`], and its serialized format.
//!
//! It is pure: no async runtime, no I/O. The byte formats are documented in
//! `docs/formats.md`.

mod block;
pub mod codec;
mod error;
mod format;
mod head;
mod iter;
pub mod labels;
pub mod memchunk;
mod varint;

pub use block::BlockMeta;
pub use codec::Codec;
pub use error::ChunkError;
pub use format::{CHUNK_FORMAT_V1, CHUNK_MAGIC};
pub use iter::ChunkIter;
pub use labels::{go_quote, is_valid_label_name, Label, Labels, LabelsError};
pub use memchunk::{Direction, MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE};
