//! Segment files: the active segment the writer appends to, and the torn
//! tail recovery run on the last segment at open.
//!
//! A segment is the 8-byte file header with magic `SLWS`, then record frames
//! back to back (see the crate docs for the byte layout).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::warn;

use crate::error::WalError;
use crate::layout::{segment_path, sync_dir};
use crate::record::{file_header, open_file_frames, Frame, OpenedFile, FILE_HEADER_LEN};
use crate::replay::CorruptTail;

/// Magic bytes opening every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"SLWS";

/// The segment being appended to.
pub(crate) struct ActiveSegment {
    index: u64,
    path: PathBuf,
    file: File,
    /// Bytes handed to the OS so far.
    written: u64,
    /// Bytes known good: written (and fsynced under `Always`) without error.
    durable: u64,
}

impl ActiveSegment {
    /// Creates segment `index` in `dir` with its header; with `sync`, fsyncs
    /// the file and the directory so the segment survives a machine crash.
    ///
    /// A leftover file holding no record (a previous creation that failed
    /// half way) is reused; a file with records is never overwritten.
    pub(crate) fn create(dir: &Path, index: u64, sync: bool) -> Result<Self, WalError> {
        let path = segment_path(dir, index);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(WalError::with_path(&path))?;
        let existing_len = file.metadata().map_err(WalError::with_path(&path))?.len();
        if existing_len > FILE_HEADER_LEN {
            return Err(WalError::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "segment to create already holds records",
                ),
            ));
        }
        let init = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.write_all(&file_header(SEGMENT_MAGIC))?;
            if sync {
                file.sync_data()?;
            }
            Ok(())
        };
        init(&mut file).map_err(WalError::with_path(&path))?;
        if sync {
            sync_dir(dir)?;
        }
        Ok(ActiveSegment {
            index,
            path,
            file,
            written: FILE_HEADER_LEN,
            durable: FILE_HEADER_LEN,
        })
    }

    /// Opens an existing segment whose valid bytes end at `valid_len` (its
    /// tail already recovered) to append after them.
    pub(crate) fn reopen(dir: &Path, index: u64, valid_len: u64) -> Result<Self, WalError> {
        let path = segment_path(dir, index);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(WalError::with_path(&path))?;
        file.seek(SeekFrom::Start(valid_len))
            .map_err(WalError::with_path(&path))?;
        Ok(ActiveSegment {
            index,
            path,
            file,
            written: valid_len,
            durable: valid_len,
        })
    }

    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    /// Returns the bytes handed to the OS so far, header included.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Returns whether the segment holds anything past its header.
    pub(crate) fn has_records(&self) -> bool {
        self.written > FILE_HEADER_LEN
    }

    /// Appends `bytes` (whole frames) at the end.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        #[cfg(test)]
        if let Some(fault) = failpoint::get(&self.path) {
            return self.inject(fault, bytes);
        }
        self.file
            .write_all(bytes)
            .map_err(WalError::with_path(&self.path))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Fsyncs what was written.
    pub(crate) fn sync(&mut self) -> Result<(), WalError> {
        #[cfg(test)]
        if failpoint::get(&self.path) == Some(failpoint::Fault::Sync) {
            return Err(WalError::io(&self.path, failpoint::no_space()));
        }
        self.file
            .sync_data()
            .map_err(WalError::with_path(&self.path))
    }

    /// Marks everything written so far as good.
    pub(crate) fn mark_durable(&mut self) {
        self.durable = self.written;
    }

    /// Cuts the file back to the last good offset after a failed write or
    /// fsync, so no partial or unacknowledged frame stays in the middle.
    pub(crate) fn truncate_to_durable(&mut self) -> Result<(), WalError> {
        self.file
            .set_len(self.durable)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.durable)))
            .map_err(WalError::with_path(&self.path))?;
        self.written = self.durable;
        Ok(())
    }
}

#[cfg(test)]
impl ActiveSegment {
    /// Simulates a disk filling up: half the bytes land, then ENOSPC.
    fn inject(&mut self, fault: failpoint::Fault, bytes: &[u8]) -> Result<(), WalError> {
        if fault == failpoint::Fault::Write {
            let half = &bytes[..bytes.len() / 2];
            self.file
                .write_all(half)
                .map_err(WalError::with_path(&self.path))?;
            self.written += half.len() as u64;
            return Err(WalError::io(&self.path, failpoint::no_space()));
        }
        self.file
            .write_all(bytes)
            .map_err(WalError::with_path(&self.path))?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Scans the last segment and truncates it after its last good record.
///
/// Returns the length of the valid prefix and, if bytes were dropped, what
/// was dropped. A segment whose header itself is torn or corrupt is reset to
/// a bare header.
pub(crate) fn recover_tail(
    dir: &Path,
    index: u64,
    sync: bool,
) -> Result<(u64, Option<CorruptTail>), WalError> {
    let path = segment_path(dir, index);
    let (valid_len, file_len, reason) = match open_file_frames(&path, SEGMENT_MAGIC, None)? {
        OpenedFile::Corrupt { reason, file_len } => (0, file_len, reason),
        OpenedFile::Frames {
            mut frames,
            file_len,
        } => {
            let mut payload = Vec::new();
            loop {
                let frame_start = frames.offset();
                match frames
                    .next_frame(&mut payload)
                    .map_err(WalError::with_path(&path))?
                {
                    Frame::Record => {}
                    Frame::End => return Ok((frame_start, None)),
                    Frame::Trailer { .. } => {
                        break (
                            frame_start,
                            file_len,
                            crate::record::Corruption::UnexpectedTrailer,
                        )
                    }
                    Frame::Corrupt(reason) => break (frame_start, file_len, reason),
                }
            }
        }
    };

    let tail = CorruptTail {
        segment: index,
        path: path.clone(),
        offset: valid_len,
        bytes_dropped: file_len - valid_len,
        reason,
    };
    warn!(
        path = %path.display(),
        segment = index,
        offset = valid_len,
        bytes_dropped = tail.bytes_dropped,
        reason = reason.as_str(),
        "truncating corrupt wal tail"
    );
    let truncate = |file: &mut File| -> std::io::Result<()> {
        file.set_len(valid_len)?;
        if valid_len < FILE_HEADER_LEN {
            file.write_all(&file_header(SEGMENT_MAGIC))?;
        }
        if sync {
            file.sync_data()?;
        }
        Ok(())
    };
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(WalError::with_path(&path))?;
    truncate(&mut file).map_err(WalError::with_path(&path))?;
    Ok((valid_len.max(FILE_HEADER_LEN), Some(tail)))
}

/// Test-only fault injection, keyed by WAL directory so parallel tests do not
/// interfere.
#[cfg(test)]
pub(crate) mod failpoint {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Fault {
        /// Writes put half their bytes in the file, then fail.
        Write,
        /// Fsyncs fail.
        Sync,
    }

    static FAULTS: Mutex<Vec<(PathBuf, Fault)>> = Mutex::new(Vec::new());

    /// Sets (or with `None` clears) the fault for segments in `dir`.
    pub(crate) fn set(dir: &Path, fault: Option<Fault>) {
        let mut faults = FAULTS.lock().expect("failpoint lock");
        faults.retain(|(faulty_dir, _)| faulty_dir != dir);
        if let Some(fault) = fault {
            faults.push((dir.to_path_buf(), fault));
        }
    }

    pub(crate) fn get(segment: &Path) -> Option<Fault> {
        let dir = segment.parent()?;
        let faults = FAULTS.lock().expect("failpoint lock");
        faults
            .iter()
            .find(|(faulty_dir, _)| faulty_dir == dir)
            .map(|(_, fault)| *fault)
    }

    pub(crate) fn no_space() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::StorageFull, "injected: no space left")
    }
}
