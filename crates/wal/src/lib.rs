//! Sluice's write-ahead log: a generic, segmented, checksummed log of opaque
//! byte records with group commit and checkpoints.
//!
//! The crate knows nothing about log entries. The ingester uses it so:
//! 1. at startup, [`Wal::open`] returns the WAL and a [`Replay`]; the caller
//!    applies the checkpoint records, then the segment records, to memory;
//! 2. on each push it builds one record, [`Wal::submit`]s it and waits on the
//!    returned [`Ticket`] before acknowledging the client;
//! 3. periodically it writes a snapshot of memory with [`Wal::checkpoint`],
//!    which deletes the segments the snapshot replaces (see that method for
//!    the consistency contract the snapshot must meet).
//!
//! It owns no async runtime: one named writer thread does all appends, and
//! tickets can be awaited from async code with [`Ticket::wait_async`].
//!
//! # Directory layout
//!
//! - `<dir>/00000000`, `<dir>/00000001`, …: segments (index zero-padded to at
//!   least 8 digits). The writer appends to the highest one and starts the
//!   next once a record would push it past `segment_size`.
//! - `<dir>/checkpoint.0000000N`: a snapshot covering every record in
//!   segments ≤ N. At most one is kept after a successful checkpoint.
//! - `<dir>/checkpoint.0000000N.tmp`: a checkpoint being written; ignored and
//!   removed at open.
//!
//! # Byte format (version 1)
//!
//! All integers are big endian; CRC-32 is the IEEE polynomial (`crc32fast`).
//!
//! Every file starts with an 8-byte header: magic (4 bytes: `SLWS` for a
//! segment, `SLWC` for a checkpoint), format version (`u8` = 1), 3 zero
//! bytes. Readers dispatch on the version; an unknown version is an error and
//! the file is left untouched.
//!
//! Then record frames, back to back:
//!
//! ```text
//! u32 len     payload length, 1 ..= 2^30 (0 is never written: a zero-filled
//!             tail must not decode as records)
//! u32 crc     CRC-32 of the payload
//! [len] payload
//! ```
//!
//! A checkpoint ends with a trailer frame: `u32 0xFFFFFFFF`, `u32` CRC-32 of
//! the next 8 bytes, `u64` number of records in the checkpoint. A checkpoint
//! without a valid trailer, or with bytes after it, is corrupt.
//!
//! # Failure handling
//!
//! - **Torn or corrupt tail of the last segment** (short header, short
//!   payload, zero length, CRC mismatch): at open the segment is truncated at
//!   the end of its last good record, a warning is logged, the loss is
//!   reported in [`ReplayStats::corrupt_tail`], and appends continue there.
//!   Never a panic, never a refusal to start.
//! - **Corruption in an older segment**: replay reports it in
//!   [`ReplayStats::corrupt_segments`], skips the rest of *that* segment and
//!   continues with the next one. Rationale: segments are independent files,
//!   so later segments are still trustworthy, and losing a bounded range of
//!   records beats refusing to start or dropping everything after it. The
//!   corrupt bytes are left on disk for inspection until a checkpoint
//!   deletes the segment.
//! - **Corrupt checkpoint**: reported in [`ReplayStats::corrupt_checkpoints`];
//!   open falls back to the next older valid checkpoint or to replaying all
//!   segments, provided every segment since that point still exists. Since a
//!   successful checkpoint deletes the segments it covers, this usually fails
//!   with [`WalError::CheckpointUnrecoverable`], which names the checkpoint
//!   and the missing segments; deleting that checkpoint file lets the WAL
//!   start from the remaining segments.
//! - **Write or fsync error** (e.g. disk full): every ticket of the batch
//!   fails with the error, the segment is truncated back to its last good
//!   offset, and later submissions work again once the disk recovers.

mod checkpoint;
mod config;
mod error;
mod layout;
mod record;
mod replay;
mod segment;
mod stats;
mod ticket;
mod wal;
#[cfg(test)]
mod wal_test;
mod writer;

pub use checkpoint::{CheckpointStats, CheckpointWriter};
pub use config::{FsyncPolicy, WalConfig, DEFAULT_SEGMENT_SIZE, MAX_QUEUED_BYTES};
pub use error::WalError;
pub use record::{Corruption, MAX_RECORD_LEN};
pub use replay::{
    CorruptCheckpoint, CorruptSegment, CorruptTail, RecordSource, Replay, ReplayRecord, ReplayStats,
};
pub use stats::WalStats;
pub use ticket::Ticket;
pub use wal::Wal;
