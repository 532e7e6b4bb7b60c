//! The `querier` block of the config, with Loki's key names.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_common::server::humantime_serde_compat;

/// Querier settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// Only ask ingesters about the last this-long of a query (Loki's
    /// default 3h); older data comes from the store alone. 0 asks
    /// ingesters for every range.
    #[serde(with = "humantime_serde_compat")]
    pub query_ingesters_within: Duration,
    /// Longest a live tail stays open (Loki's default 1h).
    #[serde(with = "humantime_serde_compat")]
    pub tail_max_duration: Duration,
    /// LogQL engine settings.
    pub engine: EngineConfig,
    /// Queries this querier runs at once for the query frontend (one
    /// worker stream each).
    pub max_concurrent: usize,
    /// Answer reads for several tenants at once (`X-Scope-OrgID: a|b`),
    /// labelling results with `__tenant_id__`.
    pub multi_tenant_queries_enabled: bool,
    /// Longest LogQL expression (`query`, `match[]`) accepted, in bytes;
    /// longer ones are refused with 400 before parsing.
    pub max_query_expression_bytes: usize,
}

/// `querier.engine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How far back an instant log query looks (Loki 2.8: 30s).
    #[serde(with = "humantime_serde_compat")]
    pub max_look_back_period: Duration,
}

impl Default for QuerierConfig {
    fn default() -> QuerierConfig {
        QuerierConfig {
            query_ingesters_within: Duration::from_secs(3 * 3600),
            tail_max_duration: Duration::from_secs(3600),
            engine: EngineConfig::default(),
            max_concurrent: 10,
            multi_tenant_queries_enabled: false,
            max_query_expression_bytes: 128 << 10,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            max_look_back_period: Duration::from_secs(30),
        }
    }
}
