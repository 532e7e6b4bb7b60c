//! Checkpoint files: writing one atomically and validating one at open.
//!
//! A checkpoint is the 8-byte file header with magic `SLWC`, record frames
//! exactly as in segments, then a trailer frame carrying the record count.
//! It is written to `checkpoint.N.tmp`, fsynced, renamed to `checkpoint.N`
//! and the directory fsynced, so a visible checkpoint is always complete; the
//! trailer and the CRCs catch later damage.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

use crate::error::WalError;
use crate::layout::{checkpoint_path, checkpoint_tmp_path, remove_file, sync_dir};
use crate::record::{
    check_payload, file_header, frame_header, open_file_frames, trailer_frame, Corruption, Frame,
    OpenedFile, FRAME_HEADER_LEN, TRAILER_LEN,
};

/// Magic bytes opening every checkpoint file.
pub(crate) const CHECKPOINT_MAGIC: [u8; 4] = *b"SLWC";

const WRITE_BUFFER_SIZE: usize = 1024 * 1024;

/// Receives the snapshot records of a checkpoint; see
/// [`Wal::checkpoint`](crate::Wal::checkpoint).
pub struct CheckpointWriter {
    index: u64,
    path: PathBuf,
    file: BufWriter<File>,
    records: u64,
    bytes: u64,
}

impl CheckpointWriter {
    /// Appends one snapshot record (non-empty, at most
    /// [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN) bytes).
    pub fn write(&mut self, record: &[u8]) -> Result<(), WalError> {
        check_payload(record)?;
        self.file
            .write_all(&frame_header(record))
            .and_then(|()| self.file.write_all(record))
            .map_err(WalError::with_path(&self.path))?;
        self.records += 1;
        self.bytes += FRAME_HEADER_LEN + record.len() as u64;
        Ok(())
    }

    /// Returns the index N of the checkpoint being written: it covers every
    /// record in segments ≤ N.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Returns the number of records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

impl fmt::Debug for CheckpointWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointWriter")
            .field("index", &self.index)
            .field("path", &self.path)
            .field("records", &self.records)
            .finish()
    }
}

/// What a successful [`Wal::checkpoint`](crate::Wal::checkpoint) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointStats {
    /// Index N of the checkpoint: it replaces segments ≤ N.
    pub index: u64,
    /// Records in the checkpoint.
    pub records: u64,
    /// Size of the checkpoint file in bytes.
    pub bytes: u64,
    /// Segments deleted because the checkpoint covers them.
    pub segments_deleted: u64,
    /// Older checkpoints deleted.
    pub checkpoints_deleted: u64,
    /// Time from the rotation to the end of the cleanup.
    pub duration: Duration,
}

/// Writes checkpoint `index` atomically; returns its record count and size.
///
/// On any error (including one returned by `write`) the temporary file is
/// removed and no checkpoint becomes visible.
pub(crate) fn write_checkpoint(
    dir: &Path,
    index: u64,
    sync: bool,
    write: impl FnOnce(&mut CheckpointWriter) -> Result<(), WalError>,
) -> Result<(u64, u64), WalError> {
    let tmp_path = checkpoint_tmp_path(dir, index);
    let result = write_tmp(index, &tmp_path, sync, write);
    if result.is_err() {
        if let Err(error) = remove_file(&tmp_path) {
            warn!(error = %error, "could not remove temporary wal checkpoint");
        }
        return result;
    }
    let final_path = checkpoint_path(dir, index);
    fs::rename(&tmp_path, &final_path).map_err(WalError::with_path(&final_path))?;
    if sync {
        sync_dir(dir)?;
    }
    result
}

fn write_tmp(
    index: u64,
    tmp_path: &Path,
    sync: bool,
    write: impl FnOnce(&mut CheckpointWriter) -> Result<(), WalError>,
) -> Result<(u64, u64), WalError> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp_path)
        .map_err(WalError::with_path(tmp_path))?;
    let mut writer = CheckpointWriter {
        index,
        path: tmp_path.to_path_buf(),
        file: BufWriter::with_capacity(WRITE_BUFFER_SIZE, file),
        records: 0,
        bytes: 0,
    };
    let header = file_header(CHECKPOINT_MAGIC);
    writer
        .file
        .write_all(&header)
        .map_err(WalError::with_path(tmp_path))?;
    write(&mut writer)?;
    writer
        .file
        .write_all(&trailer_frame(writer.records))
        .map_err(WalError::with_path(tmp_path))?;
    let file = writer
        .file
        .into_inner()
        .map_err(|error| WalError::io(tmp_path, error.into_error()))?;
    if sync {
        file.sync_all().map_err(WalError::with_path(tmp_path))?;
    }
    let size = header.len() as u64 + writer.bytes + TRAILER_LEN;
    Ok((writer.records, size))
}

/// Result of validating a checkpoint file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    Valid { records: u64 },
    Corrupt { offset: u64, reason: Corruption },
}

/// Reads a whole checkpoint, checking every CRC and the trailer.
pub(crate) fn validate(path: &Path) -> Result<Validation, WalError> {
    let mut frames = match open_file_frames(path, CHECKPOINT_MAGIC, None)? {
        OpenedFile::Frames { frames, .. } => frames,
        OpenedFile::Corrupt { reason, .. } => return Ok(Validation::Corrupt { offset: 0, reason }),
    };
    let mut payload = Vec::new();
    let mut records = 0u64;
    loop {
        let frame_start = frames.offset();
        let corrupt = |reason| {
            Ok(Validation::Corrupt {
                offset: frame_start,
                reason,
            })
        };
        match frames
            .next_frame(&mut payload)
            .map_err(WalError::with_path(path))?
        {
            Frame::Record => records += 1,
            Frame::End => return corrupt(Corruption::MissingTrailer),
            Frame::Corrupt(reason) => return corrupt(reason),
            Frame::Trailer {
                records: trailer_records,
            } => {
                if trailer_records != records {
                    return corrupt(Corruption::TrailerCountMismatch);
                }
                let after_trailer = frames.offset();
                return match frames
                    .next_frame(&mut payload)
                    .map_err(WalError::with_path(path))?
                {
                    Frame::End => Ok(Validation::Valid { records }),
                    _ => Ok(Validation::Corrupt {
                        offset: after_trailer,
                        reason: Corruption::DataAfterTrailer,
                    }),
                };
            }
        }
    }
}
