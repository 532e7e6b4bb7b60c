//! The `distributor` block of the config.

use serde::{Deserialize, Serialize};

/// Distributor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorConfig {
    /// Largest push body accepted, compressed or decompressed, in bytes.
    pub max_recv_msg_size: usize,
}

impl Default for DistributorConfig {
    fn default() -> DistributorConfig {
        DistributorConfig {
            max_recv_msg_size: 100 << 20,
        }
    }
}
