//! `frontend`, `query_range` and `frontend_worker` settings (Loki's keys).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_cache::CacheConfig;
use sluice_common::server::humantime_serde_compat;

/// `frontend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontendConfig {
    /// Queued requests per tenant beyond which new ones get 429.
    pub max_outstanding_per_tenant: usize,
    /// Log queries slower than this (0: never).
    #[serde(with = "humantime_serde_compat")]
    pub log_queries_longer_than: Duration,
    /// Base URL of the queriers (`http://querier:3100`) live tails are
    /// proxied to; empty: this frontend does not serve
    /// `/loki/api/v1/tail` (in `-target=all` the querier serves it).
    pub tail_proxy_url: String,
    /// Base URL of a ruler (`http://ruler:3100`) the rules and alerts API
    /// (`/prometheus/api/v1/rules`, `/loki/api/v1/rules…`) is forwarded
    /// to; empty: not served here. Sluice's own key (Loki's chart routes
    /// these paths in its gateway).
    pub ruler_proxy_url: String,
}

/// `query_range`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryRangeConfig {
    /// Cache metric range query results.
    pub cache_results: bool,
    /// Where results are cached.
    pub results_cache: ResultsCacheConfig,
    /// Retries of a sub-query that failed with a 5xx.
    pub max_retries: usize,
    /// Accepted for compatibility: start and end are always moved onto
    /// multiples of the step, as the engine evaluates there anyway.
    pub align_queries_with_step: bool,
    /// Run shardable metric queries as shards of their streams (see
    /// `limits_config.tsdb_max_bytes_per_shard`).
    pub parallelise_shardable_queries: bool,
}

/// `query_range.results_cache`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResultsCacheConfig {
    /// The cache backend (memcached or embedded).
    pub cache: CacheConfig,
    /// `""` or `snappy`; accepted, values are stored uncompressed.
    pub compression: String,
}

/// `frontend_worker`: how queriers reach the frontend.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontendWorkerConfig {
    /// gRPC `host:port` of the query frontend; empty: this querier does not
    /// pull work from a frontend (unless one runs in the same process).
    pub frontend_address: String,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        FrontendConfig {
            max_outstanding_per_tenant: 2048,
            log_queries_longer_than: Duration::ZERO,
            tail_proxy_url: String::new(),
            ruler_proxy_url: String::new(),
        }
    }
}

impl Default for QueryRangeConfig {
    fn default() -> Self {
        QueryRangeConfig {
            cache_results: false,
            results_cache: ResultsCacheConfig::default(),
            max_retries: 5,
            align_queries_with_step: false,
            parallelise_shardable_queries: true,
        }
    }
}
