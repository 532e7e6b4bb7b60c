//! `limits_config`: per-tenant limits, with Loki's keys and defaults. Only
//! the limits Sluice enforces appear here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    /// Longest log line accepted, in bytes (0 = no limit).
    pub max_line_size: usize,
    /// Truncate over-long lines instead of rejecting them.
    pub max_line_size_truncate: bool,
    /// Largest `limit` a log query may ask for.
    pub max_entries_limit_per_query: u32,
    /// Most series a metric query may return.
    pub max_query_series: usize,
    /// Live tails a tenant may have open at once.
    pub max_concurrent_tail_requests: u32,
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
            max_line_size: 0,
            max_line_size_truncate: false,
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_concurrent_tail_requests: 10,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 24 * 3600),
            creation_grace_period: Duration::from_secs(10 * 60),
        }
    }
}
