//! WAL configuration.

use std::path::PathBuf;

/// Default size at which the writer rotates to a new segment: 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 * 1024 * 1024;

/// Bytes of submitted but not yet written records above which
/// [`Wal::submit`](crate::Wal::submit) blocks: 64 MiB.
pub const MAX_QUEUED_BYTES: u64 = 64 * 1024 * 1024;

/// Configuration of one WAL directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Directory holding the segments and checkpoints; created if missing.
    /// One WAL per directory: two processes must never share it.
    pub dir: PathBuf,
    /// Size in bytes past which the writer starts a new segment. A record is
    /// never split, so a segment can exceed this by one record.
    pub segment_size: u64,
    /// When tickets complete.
    pub fsync: FsyncPolicy,
}

impl WalConfig {
    /// Returns the default configuration for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WalConfig {
            dir: dir.into(),
            ..WalConfig::default()
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            dir: PathBuf::from("wal"),
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: FsyncPolicy::default(),
        }
    }
}

/// Durability policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A ticket completes only after its record is fsynced. Records submitted
    /// concurrently share one fsync (group commit). New segments, checkpoints
    /// and the directory entries for both are fsynced as well.
    #[default]
    Always,
    /// Records are written to the OS but never fsynced: they survive a process
    /// crash, not a machine crash. For tests and benchmarks.
    Never,
}
