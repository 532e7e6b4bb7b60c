//! Cache settings with Loki's keys: a `cache` block holds either a
//! `memcached_client` (+ `memcached`) or an `embedded_cache`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One cache (`query_range.results_cache.cache`,
/// `chunk_store_config.chunk_cache_config`,
/// `storage_config.index_queries_cache_config`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Time-to-live of stored items when the user of the cache sets none.
    #[serde(with = "humantime_serde")]
    pub default_validity: Duration,
    /// The memcached servers.
    pub memcached_client: MemcachedClientConfig,
    /// Batching of memcached requests.
    pub memcached: MemcachedConfig,
    /// An in-process cache instead of memcached.
    pub embedded_cache: EmbeddedCacheConfig,
}

/// `memcached_client`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedClientConfig {
    /// `host:port` of each server (`dns+` prefixes are accepted and
    /// stripped: names are resolved on every connect).
    pub addresses: Vec<String>,
    /// Alternative to `addresses`: one host name, with `service` its port.
    pub host: String,
    /// Port (or service name) used with `host`.
    pub service: String,
    /// Deadline of one request, connect included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Idle connections kept per server.
    pub max_idle_conns: usize,
    /// Largest item stored, bytes (0: memcached's own limit decides).
    pub max_item_size: usize,
    /// How often server addresses are re-resolved (names are resolved on
    /// each new connection, so this only bounds connection reuse).
    #[serde(with = "humantime_serde")]
    pub update_interval: Duration,
    /// Pick the server by consistent hashing of the key (always on).
    pub consistent_hash: bool,
}

/// `memcached`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedConfig {
    /// Item expiration (0: `default_validity`).
    #[serde(with = "humantime_serde")]
    pub expiration: Duration,
    /// Keys per `get` request.
    pub batch_size: usize,
    /// Concurrent batches.
    pub parallelism: usize,
}

/// `embedded_cache`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedCacheConfig {
    /// Use the in-process cache.
    pub enabled: bool,
    /// Memory budget, MiB.
    pub max_size_mb: u64,
    /// Time-to-live of items.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
}

impl Default for MemcachedClientConfig {
    fn default() -> Self {
        MemcachedClientConfig {
            addresses: Vec::new(),
            host: String::new(),
            service: "memcached".to_string(),
            timeout: Duration::from_millis(100),
            max_idle_conns: 16,
            max_item_size: 0,
            update_interval: Duration::from_secs(60),
            consistent_hash: true,
        }
    }
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        MemcachedConfig {
            expiration: Duration::ZERO,
            batch_size: 1024,
            parallelism: 100,
        }
    }
}

impl Default for EmbeddedCacheConfig {
    fn default() -> Self {
        EmbeddedCacheConfig {
            enabled: false,
            max_size_mb: 100,
            ttl: Duration::from_secs(3600),
        }
    }
}

impl CacheConfig {
    /// The memcached server addresses, from `addresses` or `host`+`service`.
    pub fn memcached_addresses(&self) -> Vec<String> {
        let client = &self.memcached_client;
        let mut addresses: Vec<String> = client
            .addresses
            .iter()
            .flat_map(|list| list.split(','))
            .map(|address| address.trim().trim_start_matches("dns+").to_string())
            .filter(|address| !address.is_empty())
            .collect();
        if addresses.is_empty() && !client.host.is_empty() {
            let port = if client.service.parse::<u16>().is_ok() {
                client.service.clone()
            } else {
                "11211".to_string()
            };
            addresses.push(format!("{}:{port}", client.host));
        }
        addresses
    }

    /// Whether any backend is configured.
    pub fn is_configured(&self) -> bool {
        self.embedded_cache.enabled || !self.memcached_addresses().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_keys_parse_and_addresses_resolve() {
        let config: CacheConfig = serde_norway::from_str(
            "memcached_client:\n  addresses: [dns+memcached:11211, 'b:1,c:2']\n  timeout: 500ms\nmemcached:\n  batch_size: 64\n",
        )
        .expect("parse");
        assert_eq!(
            config.memcached_addresses(),
            ["memcached:11211", "b:1", "c:2"]
        );
        assert_eq!(config.memcached.batch_size, 64);
        assert_eq!(config.memcached.parallelism, 100);
        assert!(config.is_configured());
        let host: CacheConfig =
            serde_norway::from_str("memcached_client:\n  host: mc\n  service: '11311'\n").unwrap();
        assert_eq!(host.memcached_addresses(), ["mc:11311"]);
        assert!(!CacheConfig::default().is_configured());
        assert!(serde_norway::from_str::<CacheConfig>("embeded_cache: {}\n").is_err());
    }
}
