//! The `ingester` block of the config, with Loki's key names.

use serde::{Deserialize, Serialize};
use sluice_chunk::Codec;

/// How the ingester builds chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    /// Compression of chunk blocks: none, gzip, lz4-64k, lz4-256k, lz4-1M,
    /// lz4, snappy, flate or zstd (default zstd; Loki's default is gzip).
    #[serde(with = "codec_serde")]
    pub chunk_encoding: Codec,
    /// Uncompressed size at which the head block is cut and compressed.
    pub chunk_block_size: usize,
    /// Compressed size at which a chunk is closed and a new one started
    /// (0 means ten blocks per chunk).
    pub chunk_target_size: usize,
}

impl Default for IngesterConfig {
    fn default() -> IngesterConfig {
        IngesterConfig {
            chunk_encoding: Codec::Zstd,
            chunk_block_size: 262_144,
            chunk_target_size: 1_572_864,
        }
    }
}

impl IngesterConfig {
    /// Checks values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.chunk_block_size == 0 {
            return Err("ingester.chunk_block_size: must be greater than 0".to_string());
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
