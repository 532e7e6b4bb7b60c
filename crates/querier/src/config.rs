//! The `querier` block of the config, with Loki's key names.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_common::server::humantime_serde_compat;

/// Querier settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// LogQL engine settings.
    pub engine: EngineConfig,
}

/// `querier.engine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How far back an instant log query looks (Loki 2.8: 30s).
    #[serde(with = "humantime_serde_compat")]
    pub max_look_back_period: Duration,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            max_look_back_period: Duration::from_secs(30),
        }
    }
}
