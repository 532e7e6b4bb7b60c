//! [`Replay`]: reading back the checkpoint and the segments after it.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tracing::warn;

use crate::checkpoint::CHECKPOINT_MAGIC;
use crate::error::WalError;
use crate::record::{open_file_frames, Corruption, FileFrames, Frame, OpenedFile};
use crate::segment::SEGMENT_MAGIC;

/// Where a replayed record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordSource {
    /// The checkpoint: a snapshot record written by
    /// [`CheckpointWriter::write`](crate::CheckpointWriter::write).
    Checkpoint,
    /// A segment: a record passed to [`Wal::submit`](crate::Wal::submit).
    Segment,
}

/// One replayed record; `data` borrows the replay's buffer until the next
/// call to [`Replay::next_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRecord<'a> {
    pub source: RecordSource,
    pub data: &'a [u8],
}

/// Bytes dropped from the end of the last segment at open (a torn write or a
/// crash mid-append). The WAL appends after `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptTail {
    /// Index of the last segment.
    pub segment: u64,
    pub path: PathBuf,
    /// Offset of the first dropped byte: the end of the last good record.
    pub offset: u64,
    pub bytes_dropped: u64,
    pub reason: Corruption,
}

/// A corrupt record in a segment other than the last: the rest of that
/// segment was skipped and replay went on with the next segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptSegment {
    pub segment: u64,
    pub path: PathBuf,
    /// Offset of the first skipped byte.
    pub offset: u64,
    pub bytes_skipped: u64,
    pub reason: Corruption,
}

/// A checkpoint that failed validation at open and was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptCheckpoint {
    pub checkpoint: u64,
    pub path: PathBuf,
    pub offset: u64,
    pub reason: Corruption,
}

/// What replay found. Segment figures and `corrupt_segments` are complete
/// only once [`Replay::next_record`] has returned `Ok(None)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayStats {
    /// Index N of the checkpoint replayed, if any.
    pub checkpoint: Option<u64>,
    /// Records replayed from the checkpoint.
    pub checkpoint_records: u64,
    /// Records replayed from segments.
    pub segment_records: u64,
    /// Segments replayed.
    pub segments: u64,
    /// Payload bytes replayed (checkpoint and segments).
    pub bytes: u64,
    /// Set when the last segment had a torn or corrupt tail (truncated at open).
    pub corrupt_tail: Option<CorruptTail>,
    /// Corrupt records found in segments other than the last.
    pub corrupt_segments: Vec<CorruptSegment>,
    /// Checkpoints skipped because they failed validation.
    pub corrupt_checkpoints: Vec<CorruptCheckpoint>,
}

impl ReplayStats {
    /// Returns whether nothing was dropped or skipped.
    pub fn is_clean(&self) -> bool {
        self.corrupt_tail.is_none()
            && self.corrupt_segments.is_empty()
            && self.corrupt_checkpoints.is_empty()
    }
}

/// The checkpoint to replay, validated at open.
pub(crate) struct CheckpointSource {
    pub(crate) path: PathBuf,
    pub(crate) records: u64,
}

/// A segment to replay; the last one stops at `limit`, the end of its valid
/// prefix at open, so records appended since are not replayed.
pub(crate) struct SegmentSource {
    pub(crate) index: u64,
    pub(crate) path: PathBuf,
    pub(crate) limit: Option<u64>,
}

enum Current {
    Checkpoint {
        frames: FileFrames,
        path: PathBuf,
        expected_records: u64,
    },
    Segment {
        frames: FileFrames,
        index: u64,
        path: PathBuf,
        file_len: u64,
    },
}

enum Step {
    Record(RecordSource),
    Continue,
    Done,
}

/// The records to rebuild state from, as found by [`Wal::open`](crate::Wal::open):
/// the checkpoint's records first, then the records of every segment newer
/// than the checkpoint, in write order.
///
/// Files are read lazily, one frame at a time, into a buffer the returned
/// record borrows. While a `Replay` is alive, [`Wal::checkpoint`](crate::Wal::checkpoint)
/// refuses to run (it would delete segments not replayed yet).
pub struct Replay {
    checkpoint: Option<CheckpointSource>,
    segments: VecDeque<SegmentSource>,
    current: Option<Current>,
    payload: Vec<u8>,
    stats: ReplayStats,
    active: Arc<AtomicBool>,
}

impl Replay {
    pub(crate) fn new(
        checkpoint: Option<CheckpointSource>,
        segments: Vec<SegmentSource>,
        stats: ReplayStats,
        active: Arc<AtomicBool>,
    ) -> Self {
        active.store(true, Ordering::Release);
        Replay {
            checkpoint,
            segments: segments.into(),
            current: None,
            payload: Vec::new(),
            stats,
            active,
        }
    }

    /// Returns the next record, or `None` at the end.
    ///
    /// Corruption in a segment is not an error: it is reported in
    /// [`stats`](Replay::stats) and replay goes on. Errors are I/O failures,
    /// a file in an unsupported format version, or a checkpoint that was
    /// valid at open but no longer reads back.
    pub fn next_record(&mut self) -> Result<Option<ReplayRecord<'_>>, WalError> {
        loop {
            match self.step()? {
                Step::Record(source) => {
                    return Ok(Some(ReplayRecord {
                        source,
                        data: &self.payload,
                    }))
                }
                Step::Continue => {}
                Step::Done => return Ok(None),
            }
        }
    }

    /// Returns what replay found so far.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }

    fn step(&mut self) -> Result<Step, WalError> {
        let Some(current) = self.current.as_mut() else {
            return self.open_next();
        };
        match current {
            Current::Checkpoint {
                frames,
                path,
                expected_records,
            } => {
                let offset = frames.offset();
                let corrupt = |path: &PathBuf, reason| WalError::CheckpointCorrupt {
                    path: path.clone(),
                    offset,
                    reason,
                };
                match frames
                    .next_frame(&mut self.payload)
                    .map_err(WalError::with_path(path))?
                {
                    Frame::Record => {
                        self.stats.checkpoint_records += 1;
                        self.stats.bytes += self.payload.len() as u64;
                        Ok(Step::Record(RecordSource::Checkpoint))
                    }
                    Frame::Trailer { records } => {
                        if records != *expected_records || records != self.stats.checkpoint_records
                        {
                            return Err(corrupt(path, Corruption::TrailerCountMismatch));
                        }
                        self.current = None;
                        Ok(Step::Continue)
                    }
                    Frame::End => Err(corrupt(path, Corruption::MissingTrailer)),
                    Frame::Corrupt(reason) => Err(corrupt(path, reason)),
                }
            }
            Current::Segment {
                frames,
                index,
                path,
                file_len,
            } => {
                let offset = frames.offset();
                let reason = match frames
                    .next_frame(&mut self.payload)
                    .map_err(WalError::with_path(path))?
                {
                    Frame::Record => {
                        self.stats.segment_records += 1;
                        self.stats.bytes += self.payload.len() as u64;
                        return Ok(Step::Record(RecordSource::Segment));
                    }
                    Frame::End => {
                        self.current = None;
                        return Ok(Step::Continue);
                    }
                    Frame::Trailer { .. } => Corruption::UnexpectedTrailer,
                    Frame::Corrupt(reason) => reason,
                };
                let corrupt = CorruptSegment {
                    segment: *index,
                    path: path.clone(),
                    offset,
                    bytes_skipped: file_len.saturating_sub(offset),
                    reason,
                };
                self.report(corrupt);
                self.current = None;
                Ok(Step::Continue)
            }
        }
    }

    fn open_next(&mut self) -> Result<Step, WalError> {
        if let Some(checkpoint) = self.checkpoint.take() {
            let frames = match open_file_frames(&checkpoint.path, CHECKPOINT_MAGIC, None)? {
                OpenedFile::Frames { frames, .. } => frames,
                OpenedFile::Corrupt { reason, .. } => {
                    return Err(WalError::CheckpointCorrupt {
                        path: checkpoint.path,
                        offset: 0,
                        reason,
                    })
                }
            };
            self.current = Some(Current::Checkpoint {
                frames,
                path: checkpoint.path,
                expected_records: checkpoint.records,
            });
            return Ok(Step::Continue);
        }
        let Some(segment) = self.segments.pop_front() else {
            self.active.store(false, Ordering::Release);
            return Ok(Step::Done);
        };
        self.stats.segments += 1;
        match open_file_frames(&segment.path, SEGMENT_MAGIC, segment.limit)? {
            OpenedFile::Frames { frames, file_len } => {
                self.current = Some(Current::Segment {
                    frames,
                    index: segment.index,
                    path: segment.path,
                    file_len: segment.limit.unwrap_or(file_len).min(file_len),
                });
            }
            OpenedFile::Corrupt { reason, file_len } => self.report(CorruptSegment {
                segment: segment.index,
                path: segment.path,
                offset: 0,
                bytes_skipped: file_len,
                reason,
            }),
        }
        Ok(Step::Continue)
    }

    fn report(&mut self, corrupt: CorruptSegment) {
        warn!(
            path = %corrupt.path.display(),
            segment = corrupt.segment,
            offset = corrupt.offset,
            bytes_skipped = corrupt.bytes_skipped,
            reason = corrupt.reason.as_str(),
            "skipping rest of corrupt wal segment"
        );
        self.stats.corrupt_segments.push(corrupt);
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.active.store(false, Ordering::Release);
    }
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replay")
            .field("pending_segments", &self.segments.len())
            .field("stats", &self.stats)
            .finish()
    }
}
