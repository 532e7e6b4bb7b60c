//! Ring configuration, with Loki's key names.
//!
//! ```yaml
//! kvstore:
//!   store: memcached          # memcached | inmemory (default)
//!   memcached:
//!     addresses: [memcached:11211]
//!     timeout: 1s
//! heartbeat_period: 5s
//! heartbeat_timeout: 1m
//! num_tokens: 128
//! replication_factor: 3
//! zone_awareness_enabled: false
//! instance_id: ingester-0
//! instance_addr: 10.0.0.7:9095
//! instance_availability_zone: zone-a
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RingError;

/// Which membership store backs the ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvStoreKind {
    /// A memcached server (one item per ring, updated with gets/cas).
    Memcached,
    /// Process-local; for the single-process mode.
    #[default]
    Inmemory,
}

/// Memcached client settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedConfig {
    /// `host:port` of the servers; a ring key always maps to the same one.
    pub addresses: Vec<String>,
    /// Per-operation timeout (connect, request and response).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        MemcachedConfig {
            addresses: Vec::new(),
            timeout: Duration::from_secs(1),
        }
    }
}

/// `kvstore` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvStoreConfig {
    /// The backend.
    pub store: KvStoreKind,
    /// Used when `store: memcached`.
    pub memcached: MemcachedConfig,
}

/// Ring and lifecycler settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingConfig {
    /// The membership store.
    pub kvstore: KvStoreConfig,
    /// How often a member heartbeats (and refreshes its view of the ring).
    #[serde(with = "humantime_serde")]
    pub heartbeat_period: Duration,
    /// Members whose last heartbeat is older than this are unhealthy.
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// Tokens per member.
    pub num_tokens: usize,
    /// Replicas per stream.
    pub replication_factor: usize,
    /// Place replicas in distinct zones.
    pub zone_awareness_enabled: bool,
    /// This member's id; must be set (the binary defaults it to the hostname).
    pub instance_id: String,
    /// This member's gRPC address.
    pub instance_addr: String,
    /// This member's zone; required when zone awareness is on.
    pub instance_availability_zone: String,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            kvstore: KvStoreConfig::default(),
            heartbeat_period: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            num_tokens: 128,
            replication_factor: 3,
            zone_awareness_enabled: false,
            instance_id: String::new(),
            instance_addr: "127.0.0.1:9095".to_owned(),
            instance_availability_zone: String::new(),
        }
    }
}

impl RingConfig {
    /// Checks the settings a lifecycler needs.
    pub fn validate(&self) -> Result<(), RingError> {
        let invalid = |reason| Err(RingError::InvalidConfig { reason });
        if self.instance_id.is_empty() {
            return invalid("instance_id must be set");
        }
        if self.heartbeat_period.is_zero() {
            return invalid("heartbeat_period must be positive");
        }
        if self.heartbeat_timeout <= self.heartbeat_period {
            return invalid("heartbeat_timeout must exceed heartbeat_period");
        }
        if self.num_tokens == 0 {
            return invalid("num_tokens must be positive");
        }
        if self.replication_factor == 0 {
            return invalid("replication_factor must be positive");
        }
        if self.zone_awareness_enabled && self.instance_availability_zone.is_empty() {
            return invalid("instance_availability_zone must be set with zone awareness");
        }
        if self.kvstore.store == KvStoreKind::Memcached
            && self.kvstore.memcached.addresses.is_empty()
        {
            return invalid("kvstore.memcached.addresses must be set for store memcached");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_loki() {
        let config = RingConfig::default();
        assert_eq!(config.heartbeat_period, Duration::from_secs(5));
        assert_eq!(config.heartbeat_timeout, Duration::from_secs(60));
        assert_eq!(config.num_tokens, 128);
        assert_eq!(config.replication_factor, 3);
        assert_eq!(config.kvstore.store, KvStoreKind::Inmemory);
    }

    #[test]
    fn parses_yaml_and_rejects_typos() {
        let yaml = "kvstore:\n  store: memcached\n  memcached:\n    addresses: [m:11211]\n    timeout: 250ms\nheartbeat_period: 2s\ninstance_id: i-0\n";
        let config: RingConfig = serde_norway::from_str(yaml).expect("parse");
        assert_eq!(config.kvstore.store, KvStoreKind::Memcached);
        assert_eq!(config.kvstore.memcached.timeout, Duration::from_millis(250));
        assert_eq!(config.heartbeat_period, Duration::from_secs(2));
        assert_eq!(config.num_tokens, 128);
        config.validate().expect("valid");

        let typo = serde_norway::from_str::<RingConfig>("heartbeat_perod: 2s\n");
        assert!(typo.is_err());
        let nested_typo = serde_norway::from_str::<RingConfig>("kvstore:\n  stor: inmemory\n");
        assert!(nested_typo.is_err());
    }

    #[test]
    fn validate_names_the_problem() {
        let err = RingConfig::default().validate().expect_err("no id");
        assert!(err.to_string().contains("instance_id"), "{err}");
        let config = RingConfig {
            instance_id: "i".into(),
            kvstore: KvStoreConfig {
                store: KvStoreKind::Memcached,
                memcached: MemcachedConfig::default(),
            },
            ..RingConfig::default()
        };
        let err = config.validate().expect_err("no addresses");
        assert!(err.to_string().contains("addresses"), "{err}");
    }
}
