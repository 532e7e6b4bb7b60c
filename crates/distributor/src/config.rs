//! The `distributor` block of the config.

use serde::{Deserialize, Serialize};

/// Distributor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorConfig {
    /// Largest push body accepted, compressed or decompressed, in bytes. A
    /// body announced larger is refused (413) before it is read.
    pub max_recv_msg_size: usize,
    /// Lines per second each tenant may push, for teams that think in
    /// lines rather than bytes; shared among distributors like
    /// `limits_config.ingestion_rate_mb` (0 = no line limit).
    pub rate_limit: f64,
    /// Lines a tenant may push at once above `rate_limit`.
    pub rate_limit_burst: f64,
}

impl Default for DistributorConfig {
    fn default() -> DistributorConfig {
        DistributorConfig {
            max_recv_msg_size: 100 << 20,
            rate_limit: 100_000.0,
            rate_limit_burst: 200_000.0,
        }
    }
}

impl DistributorConfig {
    /// Checks values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("distributor.rate_limit", self.rate_limit),
            ("distributor.rate_limit_burst", self.rate_limit_burst),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{key}: must be a non-negative number, got {value}"));
            }
        }
        if self.max_recv_msg_size == 0 {
            return Err("distributor.max_recv_msg_size: must be greater than 0".to_string());
        }
        Ok(())
    }
}
