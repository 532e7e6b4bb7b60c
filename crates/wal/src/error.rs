//! The crate's error type.

use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::record::Corruption;

/// Errors returned by the WAL.
///
/// `WalError` is `Clone` because one failed write or fsync fails every ticket
/// of its batch with the same error; the I/O source is shared behind an
/// [`Arc`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// An I/O operation on a WAL file or directory failed.
    #[error("wal i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: Arc<io::Error>,
    },

    /// The WAL was closed (or its writer thread stopped) before the operation.
    #[error("wal is closed")]
    Closed,

    /// Empty records are rejected: a zero length frame is how the reader
    /// recognises a zero-filled torn tail.
    #[error("wal record is empty")]
    EmptyRecord,

    /// The record is larger than [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN).
    #[error("wal record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },

    /// A segment or checkpoint file has a valid magic but a format version
    /// this build cannot read; it is left untouched.
    #[error("wal file {path} has unsupported format version {version}")]
    UnsupportedVersion { path: PathBuf, version: u8 },

    /// The checkpoint chosen at open was valid then but failed to read back
    /// during replay.
    #[error("wal checkpoint {path} is corrupt at offset {offset}: {reason}")]
    CheckpointCorrupt {
        path: PathBuf,
        offset: u64,
        reason: Corruption,
    },

    /// No usable starting point: the newest checkpoint is corrupt (or absent)
    /// and the segments needed to rebuild its state without it are gone.
    /// Deleting the named checkpoint lets the WAL open from the remaining
    /// segments, losing the records of the missing ones.
    #[error(
        "wal checkpoint {checkpoint} is unusable ({reason}) and the segments it covered \
         ({first:08}..={last:08}) are gone; delete it to start from the remaining segments",
        first = missing_segments.start(),
        last = missing_segments.end()
    )]
    CheckpointUnrecoverable {
        checkpoint: PathBuf,
        reason: Corruption,
        missing_segments: RangeInclusive<u64>,
    },

    /// Segment files are missing between existing ones (or right after the
    /// checkpoint), so replay would silently skip records.
    #[error(
        "wal directory {dir} is missing segments {first:08}..={last:08}",
        first = missing_segments.start(),
        last = missing_segments.end()
    )]
    SegmentGap {
        dir: PathBuf,
        missing_segments: RangeInclusive<u64>,
    },

    /// `checkpoint` was called while a [`Replay`](crate::Replay) is still
    /// alive; finish (or drop) the replay first.
    #[error("wal checkpoint requested while replay is in progress")]
    ReplayInProgress,

    /// The writer thread panicked; the WAL is unusable.
    #[error("wal writer thread panicked")]
    WriterPanicked,

    /// The caller's checkpoint closure failed for a reason of its own (see
    /// [`WalError::checkpoint_aborted`]); the partial checkpoint was removed.
    #[error("wal checkpoint aborted: {source}")]
    CheckpointAborted {
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl WalError {
    /// Wraps a caller error (e.g. a snapshot encoding failure) so a checkpoint
    /// closure can return it.
    pub fn checkpoint_aborted(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        WalError::CheckpointAborted {
            source: Arc::from(source.into()),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        WalError::Io {
            path: path.as_ref().to_path_buf(),
            source: Arc::new(source),
        }
    }

    /// Returns a closure that wraps an I/O error with `path`, for `map_err`.
    pub(crate) fn with_path(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
        move |source| WalError::io(path, source)
    }
}
