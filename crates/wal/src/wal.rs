//! [`Wal`]: opening a WAL directory (recovery), submitting records,
//! checkpointing and closing.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use parking_lot::Mutex;
use tracing::{info, warn};

use crate::checkpoint::{self, CheckpointStats, CheckpointWriter, Validation};
use crate::config::{FsyncPolicy, WalConfig};
use crate::error::WalError;
use crate::layout::{self, checkpoint_path, segment_path, sync_dir, Listing};
use crate::record::check_payload;
use crate::replay::{CheckpointSource, CorruptCheckpoint, Replay, ReplayStats, SegmentSource};
use crate::segment::{self, ActiveSegment};
use crate::stats::{Counters, WalStats};
use crate::ticket::Ticket;
use crate::writer::{Queue, Writer};

/// Name of the writer thread.
const WRITER_THREAD_NAME: &str = "sluice-wal-writer";

/// A handle to an open WAL. Cheap to clone; all clones share one writer.
///
/// The WAL stops when [`close`](Wal::close) is called on any clone, or when
/// the last clone is dropped (best effort: errors are only logged).
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    fsync: FsyncPolicy,
    queue: Arc<Queue>,
    writer: Mutex<Option<JoinHandle<Result<(), WalError>>>>,
    counters: Arc<Counters>,
    checkpoint_lock: Mutex<()>,
    replay_active: Arc<AtomicBool>,
}

impl Wal {
    /// Opens (or creates) the WAL in `config.dir` and returns it with the
    /// records to replay.
    ///
    /// Recovery, in order:
    /// 1. leftover `checkpoint.N.tmp` files are removed;
    /// 2. the newest checkpoint that validates (every CRC and its trailer) is
    ///    chosen; corrupt ones are reported in [`ReplayStats::corrupt_checkpoints`]
    ///    and the next older one (or none: all segments) is tried. If the
    ///    segments a corrupt checkpoint replaced are gone, open fails with
    ///    [`WalError::CheckpointUnrecoverable`] naming the checkpoint and the
    ///    missing segments;
    /// 3. segments covered by the chosen checkpoint and older checkpoints are
    ///    deleted; the remaining segments must be contiguous
    ///    ([`WalError::SegmentGap`] otherwise);
    /// 4. the last segment is scanned and truncated after its last good
    ///    record ([`ReplayStats::corrupt_tail`]); appends continue there.
    pub fn open(config: WalConfig) -> Result<(Wal, Replay), WalError> {
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(WalError::with_path(&dir))?;
        let sync = config.fsync == FsyncPolicy::Always;
        let listing = layout::list(&dir)?;
        for temporary in &listing.temporary {
            if let Err(error) = layout::remove_file(temporary) {
                warn!(error = %error, "could not remove temporary wal checkpoint");
            }
        }

        let mut replay_stats = ReplayStats::default();
        let base = choose_checkpoint(&dir, &listing, &mut replay_stats)?;
        let first_needed = base.as_ref().map_or(0, |checkpoint| checkpoint.index + 1);
        let needed: Vec<u64> = listing
            .segments
            .iter()
            .copied()
            .filter(|&index| index >= first_needed)
            .collect();
        check_segments(&dir, base.as_ref(), &needed, &replay_stats)?;
        if let Some(checkpoint) = &base {
            delete_covered(&dir, &listing, checkpoint.index);
            replay_stats.checkpoint = Some(checkpoint.index);
        }

        let counters = Arc::new(Counters::default());
        let mut segments = Vec::with_capacity(needed.len());
        let active = match needed.last() {
            Some(&last) => {
                let (valid_len, corrupt_tail) = segment::recover_tail(&dir, last, sync)?;
                replay_stats.corrupt_tail = corrupt_tail;
                for &index in &needed {
                    segments.push(SegmentSource {
                        index,
                        path: segment_path(&dir, index),
                        limit: (index == last).then_some(valid_len),
                    });
                }
                ActiveSegment::reopen(&dir, last, valid_len)?
            }
            None => {
                let created = ActiveSegment::create(&dir, first_needed, sync)?;
                Counters::add(&counters.segments_created, 1);
                created
            }
        };
        Counters::add(&counters.segments, needed.len().max(1) as u64);
        counters
            .current_segment
            .store(active.index(), Ordering::Relaxed);
        info!(
            dir = %dir.display(),
            checkpoint = ?replay_stats.checkpoint,
            segments = needed.len(),
            active_segment = active.index(),
            "wal opened"
        );

        let queue = Arc::new(Queue::new());
        let writer = Writer::new(
            dir.clone(),
            config.segment_size,
            config.fsync,
            active,
            Arc::clone(&counters),
        );
        let writer_queue = Arc::clone(&queue);
        let handle = thread::Builder::new()
            .name(WRITER_THREAD_NAME.to_string())
            .spawn(move || writer.run(&writer_queue))
            .map_err(WalError::with_path(&dir))?;

        let replay_active = Arc::new(AtomicBool::new(true));
        let replay = Replay::new(
            base.map(|checkpoint| CheckpointSource {
                path: checkpoint_path(&dir, checkpoint.index),
                records: checkpoint.records,
            }),
            segments,
            replay_stats,
            Arc::clone(&replay_active),
        );
        let wal = Wal {
            inner: Arc::new(Inner {
                dir,
                fsync: config.fsync,
                queue,
                writer: Mutex::new(Some(handle)),
                counters,
                checkpoint_lock: Mutex::new(()),
                replay_active,
            }),
        };
        Ok((wal, replay))
    }

    /// Enqueues `record` and returns the ticket that completes once it is
    /// durable. Records are written in submission order (across all clones).
    ///
    /// Does not block unless more than
    /// [`MAX_QUEUED_BYTES`](crate::MAX_QUEUED_BYTES) are waiting to be
    /// written; then it blocks until the writer catches up (backpressure).
    /// Empty records and records over [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN)
    /// are rejected.
    pub fn submit(&self, record: Vec<u8>) -> Result<Ticket, WalError> {
        check_payload(&record)?;
        self.inner.queue.submit(record).map(Ticket::new)
    }

    /// Writes a checkpoint and deletes what it makes obsolete.
    ///
    /// Steps: the writer seals the active segment N (every record submitted
    /// before this call is in a segment ≤ N and durable) and starts N+1, so
    /// submissions continue meanwhile; `write` is called to stream the
    /// snapshot into `checkpoint.N.tmp`; the file is fsynced, renamed to
    /// `checkpoint.N` and the directory fsynced; then segments ≤ N and older
    /// checkpoints are deleted.
    ///
    /// **Contract for the caller.** After the checkpoint, replay starts from
    /// the snapshot instead of segments ≤ N, so the snapshot must include the
    /// effect of every record submitted before `checkpoint` was called. Apply
    /// each record to the state the snapshot reads *before* (or atomically
    /// with) submitting it. Records submitted while `write` runs land in
    /// segment N+1 or later and are replayed after the checkpoint, whether or
    /// not the snapshot already saw them: replaying state + those records must
    /// be idempotent (e.g. skip entries a per-stream counter says are already
    /// applied).
    ///
    /// Fails with [`WalError::ReplayInProgress`] while the [`Replay`] from
    /// `open` is alive. Checkpoints are serialized; do not call `checkpoint`
    /// from inside `write`. If `write` fails, no checkpoint is left behind and
    /// nothing is deleted.
    pub fn checkpoint(
        &self,
        write: impl FnOnce(&mut CheckpointWriter) -> Result<(), WalError>,
    ) -> Result<CheckpointStats, WalError> {
        let _serialized = self.inner.checkpoint_lock.lock();
        if self.inner.replay_active.load(Ordering::Acquire) {
            return Err(WalError::ReplayInProgress);
        }
        let result = self.checkpoint_serialized(write);
        match &result {
            Ok(_) => Counters::add(&self.inner.counters.checkpoints, 1),
            Err(_) => Counters::add(&self.inner.counters.checkpoint_errors, 1),
        }
        result
    }

    fn checkpoint_serialized(
        &self,
        write: impl FnOnce(&mut CheckpointWriter) -> Result<(), WalError>,
    ) -> Result<CheckpointStats, WalError> {
        let started = Instant::now();
        let dir = &self.inner.dir;
        let sync = self.inner.fsync == FsyncPolicy::Always;
        let index = self.inner.queue.rotate()?;
        let (records, bytes) = checkpoint::write_checkpoint(dir, index, sync, write)?;

        let listing = layout::list(dir)?;
        let (segments_deleted, checkpoints_deleted) = delete_covered(dir, &listing, index);
        Counters::sub(&self.inner.counters.segments, segments_deleted);
        if sync {
            if let Err(error) = sync_dir(dir) {
                warn!(error = %error, "could not fsync wal directory after cleanup");
            }
        }
        let stats = CheckpointStats {
            index,
            records,
            bytes,
            segments_deleted,
            checkpoints_deleted,
            duration: started.elapsed(),
        };
        info!(
            checkpoint = index,
            records,
            bytes,
            segments_deleted,
            duration_ms = stats.duration.as_millis() as u64,
            "wal checkpoint written"
        );
        Ok(stats)
    }

    /// Writes out everything submitted, fsyncs the active segment and stops
    /// the writer thread. Later submissions (on any clone) fail with
    /// [`WalError::Closed`]. Closing twice is a no-op.
    pub fn close(self) -> Result<(), WalError> {
        self.inner.shutdown()
    }

    /// Returns a snapshot of the counters.
    pub fn stats(&self) -> WalStats {
        self.inner
            .counters
            .snapshot(self.inner.queue.queued_bytes())
    }

    /// Returns the WAL directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .field("fsync", &self.inner.fsync)
            .finish()
    }
}

impl Inner {
    fn shutdown(&self) -> Result<(), WalError> {
        self.queue.close();
        let Some(handle) = self.writer.lock().take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(result) => result,
            Err(_) => Err(WalError::WriterPanicked),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            warn!(error = %error, dir = %self.dir.display(), "wal close on drop failed");
        }
    }
}

/// The checkpoint chosen at open.
struct BaseCheckpoint {
    index: u64,
    records: u64,
}

/// Returns the newest checkpoint that validates; reports the corrupt ones.
fn choose_checkpoint(
    dir: &Path,
    listing: &Listing,
    stats: &mut ReplayStats,
) -> Result<Option<BaseCheckpoint>, WalError> {
    for &index in listing.checkpoints.iter().rev() {
        let path = checkpoint_path(dir, index);
        match checkpoint::validate(&path)? {
            Validation::Valid { records } => return Ok(Some(BaseCheckpoint { index, records })),
            Validation::Corrupt { offset, reason } => {
                warn!(
                    path = %path.display(),
                    offset,
                    reason = reason.as_str(),
                    "corrupt wal checkpoint, falling back"
                );
                stats.corrupt_checkpoints.push(CorruptCheckpoint {
                    checkpoint: index,
                    path,
                    offset,
                    reason,
                });
            }
        }
    }
    Ok(None)
}

/// Checks that the segments to replay (`needed`, ascending) leave no record
/// out: they must start right after the base checkpoint (or at 0) and be
/// contiguous.
fn check_segments(
    dir: &Path,
    base: Option<&BaseCheckpoint>,
    needed: &[u64],
    stats: &ReplayStats,
) -> Result<(), WalError> {
    let first_needed = base.map_or(0, |checkpoint| checkpoint.index + 1);
    let first_present = needed.first().copied();
    // `corrupt_checkpoints` is newest first.
    if let Some(corrupt) = stats.corrupt_checkpoints.first() {
        if first_present != Some(first_needed) {
            let last_missing = first_present.map_or(corrupt.checkpoint, |first| first - 1);
            return Err(WalError::CheckpointUnrecoverable {
                checkpoint: corrupt.path.clone(),
                reason: corrupt.reason,
                missing_segments: first_needed..=last_missing.max(first_needed),
            });
        }
    } else if let Some(first) = first_present {
        if first != first_needed {
            if base.is_some() {
                return Err(WalError::SegmentGap {
                    dir: dir.to_path_buf(),
                    missing_segments: first_needed..=first - 1,
                });
            }
            // No checkpoint at all: someone removed it along with the older
            // segments; replay what is left rather than refuse to start.
            warn!(
                dir = %dir.display(),
                first_segment = first,
                "wal has no checkpoint and its first segments are missing"
            );
        }
    }
    for pair in needed.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(WalError::SegmentGap {
                dir: dir.to_path_buf(),
                missing_segments: pair[0] + 1..=pair[1] - 1,
            });
        }
    }
    Ok(())
}

/// Deletes segments ≤ `index` (ascending, stopping at the first failure so
/// the remaining segments stay contiguous) and checkpoints < `index`.
/// Failures are logged: the next checkpoint retries. Returns the numbers of
/// segments and checkpoints deleted.
fn delete_covered(dir: &Path, listing: &Listing, index: u64) -> (u64, u64) {
    let mut segments_deleted = 0;
    for &segment in listing.segments.iter().filter(|&&segment| segment <= index) {
        if let Err(error) = layout::remove_file(&segment_path(dir, segment)) {
            warn!(error = %error, "could not delete wal segment covered by checkpoint");
            break;
        }
        segments_deleted += 1;
    }
    let mut checkpoints_deleted = 0;
    for &older in listing.checkpoints.iter().filter(|&&older| older < index) {
        match layout::remove_file(&checkpoint_path(dir, older)) {
            Ok(()) => checkpoints_deleted += 1,
            Err(error) => warn!(error = %error, "could not delete old wal checkpoint"),
        }
    }
    (segments_deleted, checkpoints_deleted)
}
