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
    /// The query frontend splits range queries at multiples of this (0: no
    /// splitting). Also the results cache's bucket.
    #[serde(with = "humantime_serde_compat")]
    pub split_queries_by_interval: Duration,
    /// Most sub-queries of one query run at once.
    pub max_query_parallelism: usize,
    /// Most shards one split of a shardable metric query is cut into.
    pub tsdb_max_query_parallelism: usize,
    /// A shardable metric query gets one shard per this many bytes its
    /// streams hold in the split's range (by the index statistics).
    #[serde(with = "serde_byte_size")]
    pub tsdb_max_bytes_per_shard: u64,
    /// Longest `end - start` of a query (0: unlimited).
    #[serde(with = "humantime_serde_compat")]
    pub max_query_length: Duration,
    /// Longest `[range]` of a range aggregation (0: unlimited).
    #[serde(with = "humantime_serde_compat")]
    pub max_query_range: Duration,
    /// Results newer than this are not cached.
    #[serde(with = "humantime_serde_compat")]
    pub max_cache_freshness_per_query: Duration,
    /// Longest a query may run in the frontend (0: unlimited).
    #[serde(with = "humantime_serde_compat")]
    pub query_timeout: Duration,
    /// Queries may not reach further back than this (0: unlimited).
    #[serde(with = "humantime_serde_compat")]
    pub max_query_lookback: Duration,
    /// How long log data is kept (0 = forever). Enforced by the compactor
    /// when `compactor.retention_enabled` is true.
    #[serde(with = "humantime_serde_compat")]
    pub retention_period: Duration,
    /// Per-stream retention rules (Loki's form). A stream takes the
    /// period of the matching rule with the highest priority; among equal
    /// priorities the shortest period wins; no match falls back to
    /// `retention_period`.
    pub retention_stream: Vec<StreamRetention>,
    /// Per-stream retention rules in the design notes' form
    /// (`{selector, retention}`): each is a `retention_stream` rule with
    /// priority 0. Both lists may be given; they are merged.
    pub retention_overrides: Vec<RetentionOverride>,
    /// Whether log lines may be deleted through the delete API:
    /// `disabled`, `filter-only` (hidden from queries, kept in storage) or
    /// `filter-and-delete` (hidden and removed by the compactor).
    pub deletion_mode: DeletionMode,
    /// Loki's deprecated `allow_deletes`: accepted so older configs load,
    /// and ignored as Loki ignores it; `deletion_mode` decides.
    pub allow_deletes: bool,
}

/// One `limits_config.retention_stream` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRetention {
    /// A LogQL stream selector, e.g. `{namespace="dev"}`.
    pub selector: String,
    /// Rules with a higher priority win over matching rules with a lower one.
    #[serde(default)]
    pub priority: i64,
    /// How long matching streams are kept (at least 24h).
    #[serde(with = "humantime_serde_compat")]
    pub period: Duration,
}

/// One `limits_config.retention_overrides` rule (the design notes' form of
/// a [`StreamRetention`] with priority 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOverride {
    /// A LogQL stream selector, e.g. `{tier="debug"}`.
    pub selector: String,
    /// How long matching streams are kept (at least 24h).
    #[serde(with = "humantime_serde_compat")]
    pub retention: Duration,
}

/// `limits_config.deletion_mode`, with Loki's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionMode {
    /// The delete API refuses the tenant (403).
    Disabled,
    /// Deleted lines are hidden from queries but stay in storage.
    FilterOnly,
    /// Deleted lines are hidden from queries and removed from storage.
    #[default]
    FilterAndDelete,
}

impl DeletionMode {
    /// Returns whether the delete API accepts requests from the tenant.
    pub fn allows_requests(self) -> bool {
        !matches!(self, DeletionMode::Disabled)
    }

    /// Returns whether the compactor removes deleted lines from storage.
    pub fn deletes_from_storage(self) -> bool {
        matches!(self, DeletionMode::FilterAndDelete)
    }
}

impl LimitsConfig {
    /// Returns every per-stream retention rule, `retention_stream` first,
    /// then `retention_overrides` as priority-0 rules.
    pub fn stream_retention_rules(&self) -> Vec<StreamRetention> {
        self.retention_stream
            .iter()
            .cloned()
            .chain(self.retention_overrides.iter().map(|rule| StreamRetention {
                selector: rule.selector.clone(),
                priority: 0,
                period: rule.retention,
            }))
            .collect()
    }
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
            max_concurrent_tail_requests: 10,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 24 * 3600),
            creation_grace_period: Duration::from_secs(10 * 60),
            // Loki's default is 30m; the design notes (and Sluice) use 24h.
            split_queries_by_interval: Duration::from_secs(24 * 3600),
            max_query_parallelism: 32,
            tsdb_max_query_parallelism: 128,
            tsdb_max_bytes_per_shard: 600 << 20,
            max_query_length: Duration::from_secs(721 * 3600),
            max_query_range: Duration::ZERO,
            max_cache_freshness_per_query: Duration::from_secs(60),
            query_timeout: Duration::from_secs(60),
            max_query_lookback: Duration::ZERO,
            retention_period: Duration::ZERO,
            retention_stream: Vec::new(),
            retention_overrides: Vec::new(),
            deletion_mode: DeletionMode::default(),
            allow_deletes: false,
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
