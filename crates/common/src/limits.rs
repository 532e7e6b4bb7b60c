//! `limits_config`: per-tenant limits, with Loki's keys and defaults. Only
//! the limits Sluice enforces appear here. Tenants get their own values
//! from the runtime config file; see [`crate::overrides`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::byte_size::{serde_byte_size, serde_byte_size_usize};
use crate::server::humantime_serde_compat;

/// Limits applied to every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest label name accepted on push.
    pub max_label_name_length: usize,
    /// Longest label value accepted on push.
    pub max_label_value_length: usize,
    /// Most labels a stream may have.
    pub max_label_names_per_series: usize,
    /// How the ingestion rate is shared: each distributor enforces it alone
    /// (`local`), or it is divided among the healthy distributors
    /// (`global`). Not overridable per tenant.
    pub ingestion_rate_strategy: RateStrategy,
    /// A tenant's ingestion rate, in MiB of line bytes per second.
    pub ingestion_rate_mb: f64,
    /// The burst a distributor allows a tenant above its rate, in MiB.
    pub ingestion_burst_size_mb: f64,
    /// A stream's ingestion rate on each ingester, in bytes per second.
    #[serde(with = "serde_byte_size")]
    pub per_stream_rate_limit: u64,
    /// The burst a stream may have above its rate, in bytes.
    #[serde(with = "serde_byte_size")]
    pub per_stream_rate_limit_burst: u64,
    /// Most streams a tenant may have on one ingester (0 = no limit).
    pub max_streams_per_user: usize,
    /// Most streams a tenant may have in the cluster; each ingester allows
    /// its share, this ÷ healthy ingesters × replication factor (0 = no
    /// limit).
    pub max_global_streams_per_user: usize,
    /// Accept entries older than a stream's newest (within half of
    /// `ingester.max_chunk_age`); when false they are refused as out of
    /// order.
    pub unordered_writes: bool,
    /// Longest log line accepted, in bytes (0 = no limit).
    #[serde(with = "serde_byte_size_usize")]
    pub max_line_size: usize,
    /// Truncate over-long lines instead of rejecting them.
    pub max_line_size_truncate: bool,
    /// Largest `limit` a log query may ask for.
    pub max_entries_limit_per_query: u32,
    /// Most series a metric query may return.
    pub max_query_series: usize,
    /// Reject entries older than `reject_old_samples_max_age`.
    pub reject_old_samples: bool,
    /// Oldest entry accepted when `reject_old_samples` is on.
    #[serde(with = "humantime_serde_compat")]
    pub reject_old_samples_max_age: Duration,
    /// How far in the future an entry may be.
    #[serde(with = "humantime_serde_compat")]
    pub creation_grace_period: Duration,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_label_names_per_series: 30,
            ingestion_rate_strategy: RateStrategy::Global,
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 6.0,
            per_stream_rate_limit: 3 << 20,
            per_stream_rate_limit_burst: 15 << 20,
            max_streams_per_user: 0,
            max_global_streams_per_user: 5000,
            unordered_writes: true,
            max_line_size: 0,
            max_line_size_truncate: false,
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 24 * 3600),
            creation_grace_period: Duration::from_secs(10 * 60),
        }
    }
}

/// How a tenant's ingestion rate is enforced across distributors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateStrategy {
    /// Every distributor allows the full rate.
    Local,
    /// The rate is divided among the healthy distributors of the
    /// distributor ring.
    Global,
}

impl LimitsConfig {
    /// Returns the ingestion rate in bytes per second.
    pub fn ingestion_rate_bytes(&self) -> f64 {
        self.ingestion_rate_mb * MIB
    }

    /// Returns the ingestion burst in bytes.
    pub fn ingestion_burst_bytes(&self) -> f64 {
        self.ingestion_burst_size_mb * MIB
    }

    /// Checks values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("ingestion_rate_mb", self.ingestion_rate_mb),
            ("ingestion_burst_size_mb", self.ingestion_burst_size_mb),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(format!("{key}: must be a non-negative number, got {value}"));
            }
        }
        Ok(())
    }
}

const MIB: f64 = 1024.0 * 1024.0;
