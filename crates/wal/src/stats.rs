//! Runtime counters of a WAL, for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a WAL's counters (see [`Wal::stats`](crate::Wal::stats)).
///
/// Counters only grow; `segments`, `current_segment` and `queued_bytes` are
/// gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalStats {
    /// Records acknowledged successfully.
    pub records_written: u64,
    /// Bytes of acknowledged records, framing included.
    pub bytes_written: u64,
    /// Segment fsyncs (one per group commit under `FsyncPolicy::Always`).
    pub fsyncs: u64,
    /// Batches that failed to write or fsync (each failed all its tickets).
    pub write_errors: u64,
    /// Segments created since open.
    pub segments_created: u64,
    /// Segment files currently in the directory.
    pub segments: u64,
    /// Index of the segment being appended to.
    pub current_segment: u64,
    /// Checkpoints written successfully.
    pub checkpoints: u64,
    /// Checkpoints that failed.
    pub checkpoint_errors: u64,
    /// Bytes submitted but not yet acknowledged.
    pub queued_bytes: u64,
}

/// The live counters behind [`WalStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records_written: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) write_errors: AtomicU64,
    pub(crate) segments_created: AtomicU64,
    pub(crate) segments: AtomicU64,
    pub(crate) current_segment: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) checkpoint_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, value: u64) {
        counter.fetch_add(value, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, value: u64) {
        // Saturating: a gauge must not wrap if files vanish behind our back.
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
            Some(current.saturating_sub(value))
        });
    }

    pub(crate) fn snapshot(&self, queued_bytes: u64) -> WalStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WalStats {
            records_written: load(&self.records_written),
            bytes_written: load(&self.bytes_written),
            fsyncs: load(&self.fsyncs),
            write_errors: load(&self.write_errors),
            segments_created: load(&self.segments_created),
            segments: load(&self.segments),
            current_segment: load(&self.current_segment),
            checkpoints: load(&self.checkpoints),
            checkpoint_errors: load(&self.checkpoint_errors),
            queued_bytes,
        }
    }
}
