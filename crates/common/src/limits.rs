//! `limits_config`: per-tenant limits, with Loki's keys and defaults. Only
//! the limits Sluice enforces appear here.

use serde::{Deserialize, Serialize};

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
        }
    }
}
