//! The crate's error type.

use crate::codec::Codec;

/// Errors raised while decoding chunks and index files, (de)compressing data
/// or parsing object keys.
///
/// Every variant names what is wrong so that a log line or an HTTP error body
/// is useful on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The bytes are structurally invalid (truncated, out of bounds, bad varint…).
    #[error("corrupt chunk: {reason}")]
    Corrupt {
        /// What was found to be wrong.
        reason: String,
    },
    /// The CRC-32 stored after a compressed block does not match its bytes.
    #[error("chunk block {block}: checksum mismatch")]
    ChecksumMismatch {
        /// Zero-based index of the block in the chunk.
        block: usize,
    },
    /// The CRC-32 stored after the block-meta section does not match its bytes.
    #[error("chunk block-meta section: checksum mismatch")]
    MetaChecksumMismatch,
    /// The chunk does not start with the Sluice chunk magic number.
    #[error("bad chunk magic {found:#010x}, expected {expected:#010x}")]
    BadMagic {
        /// The magic number that was read.
        found: u32,
        /// The magic number that was expected.
        expected: u32,
    },
    /// The chunk's format version byte is not one this reader understands.
    #[error("unsupported chunk format version {0}")]
    UnsupportedVersion(u8),
    /// The codec id byte does not name a known codec.
    #[error("unknown chunk encoding id {0}")]
    UnknownCodec(u8),
    /// A codec name (from configuration) is not one of Loki's encoding names.
    #[error("invalid encoding: {name}, supported: {supported}")]
    UnknownCodecName {
        /// The name that was given.
        name: String,
        /// The valid names, comma separated.
        supported: &'static str,
    },
    /// Decompressed data would exceed the size the caller allowed.
    #[error("decompressed data exceeds the allowed size")]
    TooLarge,
    /// The codec rejected its input.
    #[error("{codec} decompression failed: {reason}")]
    Decompress {
        /// The codec that failed.
        codec: Codec,
        /// The codec library's description of the failure.
        reason: String,
    },
    /// An index file is structurally invalid (truncated, out of bounds,
    /// unsorted, inconsistent sections…).
    #[error("corrupt index: {reason}")]
    CorruptIndex {
        /// What was found to be wrong.
        reason: String,
    },
    /// The CRC-32 stored after an index section does not match its bytes.
    #[error("index {section} section: checksum mismatch")]
    IndexChecksumMismatch {
        /// The section's name (`toc`, `meta`, `symbols`, `series`, `postings`).
        section: &'static str,
    },
    /// The index file does not start with the Sluice index magic number.
    #[error("bad index magic {found:#010x}, expected {expected:#010x}")]
    BadIndexMagic {
        /// The magic number that was read.
        found: u32,
        /// The magic number that was expected.
        expected: u32,
    },
    /// The index file's format version byte is not one this reader understands.
    #[error("unsupported index format version {0}")]
    UnsupportedIndexVersion(u8),
    /// An object key or index file name is not in the canonical layout.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key (truncated to 256 characters).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ChunkError {
    /// Builds a [`ChunkError::Corrupt`] from anything printable.
    pub(crate) fn corrupt(reason: impl Into<String>) -> ChunkError {
        ChunkError::Corrupt {
            reason: reason.into(),
        }
    }

    /// Builds a [`ChunkError::CorruptIndex`] from anything printable.
    pub(crate) fn corrupt_index(reason: impl Into<String>) -> ChunkError {
        ChunkError::CorruptIndex {
            reason: reason.into(),
        }
    }
}
