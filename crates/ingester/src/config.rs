//! The `ingester` block of the config, with Loki's key names and defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_chunk::{ChunkFormat, Codec};
use sluice_common::server::humantime_serde_compat;

/// How the ingester builds, keeps and flushes chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    /// Compression of chunk blocks: none, gzip, lz4-64k, lz4-256k, lz4-1M,
    /// lz4, snappy, flate or zstd (default zstd; Loki's default is gzip).
    #[serde(with = "codec_serde")]
    pub chunk_encoding: Codec,
    /// The chunk format new chunks are written in (a Sluice setting): `v2`,
    /// the default; `v3`, lines split into templates and variables, about a
    /// third smaller on service logs for about twice the CPU on append and
    /// on reads without a `|=` word filter; `v1` while readers older than
    /// version 2 remain. Readers read
    /// every format whatever this says.
    #[serde(with = "format_serde")]
    pub chunk_format: ChunkFormat,
    /// Uncompressed size at which the head block is cut and compressed.
    pub chunk_block_size: usize,
    /// Compressed size at which a chunk is closed and a new one started
    /// (0 means ten blocks per chunk).
    pub chunk_target_size: usize,
    /// A chunk with no append for this long is flushed (reason `idle`).
    #[serde(with = "humantime_serde_compat")]
    pub chunk_idle_period: Duration,
    /// A chunk whose entries span more than this is flushed (`max_age`).
    #[serde(with = "humantime_serde_compat")]
    pub max_chunk_age: Duration,
    /// How long a flushed chunk stays in memory, still answering queries.
    #[serde(with = "humantime_serde_compat")]
    pub chunk_retain_period: Duration,
    /// How often chunks are checked for flushing.
    #[serde(with = "humantime_serde_compat")]
    pub flush_check_period: Duration,
    /// Chunks uploaded at once.
    pub concurrent_flushes: usize,
    /// Time limit of one chunk or index upload.
    #[serde(with = "humantime_serde_compat")]
    pub flush_op_timeout: Duration,
    /// Streams a live tail may drop (its reader too slow) before the list
    /// reported with its next response starts over.
    pub max_dropped_streams: usize,
    /// Most bytes of uncompressed head blocks over all streams (a Sluice
    /// setting; 0: no limit). Above it, the largest heads are compressed
    /// into blocks before they reach `chunk_block_size`.
    pub max_head_memory_mb: usize,
    /// Write-ahead log.
    pub wal: WalConfig,
}

/// `ingester.wal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Write every push to the WAL before acknowledging it.
    pub enabled: bool,
    /// WAL directory; empty means `<path_prefix>/wal`.
    pub dir: String,
    /// How often a checkpoint of memory is written (bounding replay time).
    #[serde(with = "humantime_serde_compat")]
    pub checkpoint_duration: Duration,
    /// Flush every chunk to storage on graceful shutdown.
    pub flush_on_shutdown: bool,
    /// During replay, flush chunks once this many bytes are in memory.
    pub replay_memory_ceiling: u64,
    /// `always`: a push is acknowledged only after its WAL record is
    /// fsynced (concurrent pushes share one fsync); `never`: written to the
    /// OS only, faster and unsafe on power loss.
    pub fsync: FsyncMode,
    /// `snappy`: push records are compressed before they are written (a
    /// Sluice setting; replay reads either kind); `none`: written as they are.
    pub compression: WalCompression,
}

/// How push records are stored in the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalCompression {
    /// As they are.
    None,
    /// Raw snappy, as the distributor receives pushes.
    Snappy,
}

impl WalCompression {
    pub(crate) fn is_snappy(self) -> bool {
        self == WalCompression::Snappy
    }
}

/// When WAL writes are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// fsync before acknowledging (group commit).
    Always,
    /// Leave it to the OS.
    Never,
}

impl Default for IngesterConfig {
    fn default() -> IngesterConfig {
        IngesterConfig {
            chunk_encoding: Codec::Zstd,
            chunk_format: ChunkFormat::V2,
            chunk_block_size: 262_144,
            chunk_target_size: 1_572_864,
            chunk_idle_period: Duration::from_secs(30 * 60),
            max_chunk_age: Duration::from_secs(2 * 3600),
            // Loki's default is 0s. Queriers re-list the index of recent
            // days at most every 10s, so a chunk dropped at once after its
            // flush could be invisible for those seconds; keeping it 30s
            // more closes that gap.
            chunk_retain_period: Duration::from_secs(30),
            flush_check_period: Duration::from_secs(30),
            concurrent_flushes: 32,
            flush_op_timeout: Duration::from_secs(10 * 60),
            max_dropped_streams: 10,
            max_head_memory_mb: 256,
            wal: WalConfig::default(),
        }
    }
}

impl Default for WalConfig {
    fn default() -> WalConfig {
        WalConfig {
            enabled: true,
            dir: String::new(),
            checkpoint_duration: Duration::from_secs(5 * 60),
            flush_on_shutdown: true,
            replay_memory_ceiling: 4 << 30,
            fsync: FsyncMode::Always,
            compression: WalCompression::Snappy,
        }
    }
}

impl IngesterConfig {
    /// Checks values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_block_size == 0 {
            return Err("ingester.chunk_block_size: must be greater than 0".to_string());
        }
        if self.concurrent_flushes == 0 {
            return Err("ingester.concurrent_flushes: must be greater than 0".to_string());
        }
        if self.flush_check_period.is_zero() {
            return Err("ingester.flush_check_period: must be greater than 0".to_string());
        }
        if self.wal.enabled && self.wal.checkpoint_duration.is_zero() {
            return Err("ingester.wal.checkpoint_duration: must be greater than 0".to_string());
        }
        Ok(())
    }
}

mod codec_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use sluice_chunk::Codec;

    pub(super) fn serialize<S: Serializer>(
        codec: &Codec,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(codec.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Codec, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<Codec>().map_err(serde::de::Error::custom)
    }
}

mod format_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use sluice_chunk::ChunkFormat;

    pub(super) fn serialize<S: Serializer>(
        format: &ChunkFormat,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(format.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ChunkFormat, D::Error> {
        let text = String::deserialize(deserializer)?;
        ChunkFormat::from_name(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown chunk format {text:?}: expected v1, v2 or v3"
            ))
        })
    }
}
