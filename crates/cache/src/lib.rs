//! Sluice's caches, as Loki configures them: a `cache` block names either
//! memcached servers or an embedded in-process cache. [`Cache`] adds what
//! every user needs on top: keys hashed to memcached-safe names, and
//! Loki's cache metrics per cache name, so that
//! `hits / (hits + misses)` panels work. A cache that is down or slow only
//! turns into misses; it never fails the caller.

mod config;
mod embedded;
mod loki_counter;
mod memcached;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use config::{CacheConfig, EmbeddedCacheConfig, MemcachedClientConfig, MemcachedConfig};
pub use embedded::EmbeddedCache;
pub use memcached::{MemcachedClient, MemcachedError};

use loki_counter::UnsuffixedCounter;

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    name: String,
    method: String,
    status_code: String,
}

/// Metrics shared by every cache of a process, labelled by cache name.
#[derive(Clone, Debug)]
pub struct CacheMetrics {
    fetched_keys: Family<NameLabel, UnsuffixedCounter>,
    hits: Family<NameLabel, UnsuffixedCounter>,
    misses: Family<NameLabel, Counter>,
    memcache_hits: Family<NameLabel, Counter>,
    memcache_misses: Family<NameLabel, Counter>,
    request_duration: Family<RequestLabels, Histogram>,
}

impl CacheMetrics {
    /// Registers the metrics: `loki_cache_fetched_keys`, `loki_cache_hits`,
    /// `loki_cache_misses`, `loki_cache_request_duration_seconds`, and the
    /// older `cortex_memcache_request_cache_{hits,misses}_total` that the
    /// design notes' `loki:cache_hit_rate` rule reads.
    pub fn new(registry: &mut Registry) -> CacheMetrics {
        let metrics = CacheMetrics {
            fetched_keys: Family::default(),
            hits: Family::default(),
            misses: Family::default(),
            memcache_hits: Family::default(),
            memcache_misses: Family::default(),
            request_duration: Family::new_with_constructor(|| {
                Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                    0.000_25, 4.0, 8,
                ))
            }),
        };
        registry.register(
            "loki_cache_fetched_keys",
            "Total count of keys requested from the cache.",
            metrics.fetched_keys.clone(),
        );
        registry.register(
            "loki_cache_hits",
            "Total count of keys found in the cache.",
            metrics.hits.clone(),
        );
        registry.register(
            "loki_cache_misses",
            "Total count of keys not found in the cache.",
            metrics.misses.clone(),
        );
        registry.register(
            "cortex_memcache_request_cache_hits",
            "Total count of keys found in the cache (Cortex's name).",
            metrics.memcache_hits.clone(),
        );
        registry.register(
            "cortex_memcache_request_cache_misses",
            "Total count of keys not found in the cache (Cortex's name).",
            metrics.memcache_misses.clone(),
        );
        registry.register(
            "loki_cache_request_duration_seconds",
            "Duration of cache requests.",
            metrics.request_duration.clone(),
        );
        metrics
    }
}

enum Backend {
    Memcached(MemcachedClient),
    Embedded(EmbeddedCache),
}

/// One named cache.
pub struct Cache {
    name: String,
    backend: Backend,
    ttl: Duration,
    metrics: CacheMetrics,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Builds the cache `config` describes, or `None` when it names no
    /// backend. Memcached wins when both are set.
    pub fn from_config(name: &str, config: &CacheConfig, metrics: &CacheMetrics) -> Option<Cache> {
        let backend = if !config.memcached_addresses().is_empty() {
            Backend::Memcached(MemcachedClient::new(config))
        } else if config.embedded_cache.enabled {
            Backend::Embedded(EmbeddedCache::new(&config.embedded_cache))
        } else {
            return None;
        };
        let ttl = [config.memcached.expiration, config.default_validity]
            .into_iter()
            .find(|ttl| !ttl.is_zero())
            .unwrap_or(Duration::from_secs(3600));
        Some(Cache {
            name: name.to_string(),
            backend,
            ttl,
            metrics: metrics.clone(),
        })
    }

    /// The item time-to-live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Returns the values found for `keys` (any strings; hashed here).
    pub async fn fetch(&self, keys: &[String]) -> HashMap<String, Bytes> {
        let hashed: Vec<String> = keys.iter().map(|key| hash_key(key)).collect();
        let started = Instant::now();
        let (found, status) = match &self.backend {
            Backend::Memcached(client) => {
                let (found, errors) = client.get_multi(&hashed).await;
                for error in &errors {
                    tracing::debug!(cache = %self.name, %error, "cache fetch failed");
                }
                let found = found
                    .into_iter()
                    .map(|(key, value)| (key, Bytes::from(value)))
                    .collect::<HashMap<_, _>>();
                (found, if errors.is_empty() { "200" } else { "500" })
            }
            Backend::Embedded(cache) => (cache.get_multi(&hashed), "200"),
        };
        self.observe("GET", status, started);
        let mut result = HashMap::with_capacity(found.len());
        for (key, hashed_key) in keys.iter().zip(&hashed) {
            if let Some(value) = found.get(hashed_key) {
                // A shared buffer: no copy.
                result.insert(key.clone(), value.clone());
            }
        }
        let label = NameLabel {
            name: self.name.clone(),
        };
        let hits = result.len() as u64;
        let misses = keys.len() as u64 - hits;
        self.metrics
            .fetched_keys
            .get_or_create(&label)
            .inc_by(keys.len() as u64);
        self.metrics.hits.get_or_create(&label).inc_by(hits);
        self.metrics.misses.get_or_create(&label).inc_by(misses);
        self.metrics
            .memcache_hits
            .get_or_create(&label)
            .inc_by(hits);
        self.metrics
            .memcache_misses
            .get_or_create(&label)
            .inc_by(misses);
        result
    }

    /// Stores `value` under `key` (errors are logged and dropped).
    pub async fn store(&self, key: &str, value: impl Into<Bytes>) {
        let value = value.into();
        let hashed = hash_key(key);
        let started = Instant::now();
        let status = match &self.backend {
            Backend::Memcached(client) => match client.set(&hashed, &value, self.ttl).await {
                Ok(()) => "200",
                Err(error) => {
                    tracing::debug!(cache = %self.name, %error, "cache store failed");
                    "500"
                }
            },
            Backend::Embedded(cache) => {
                cache.set(hashed, value, Some(self.ttl));
                "200"
            }
        };
        self.observe("SET", status, started);
    }

    fn observe(&self, method: &str, status: &str, started: Instant) {
        self.metrics
            .request_duration
            .get_or_create(&RequestLabels {
                name: self.name.clone(),
                method: method.to_string(),
                status_code: status.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A memcached-safe key: FNV-1a 64 of the key, in hex (Loki's `HashKey`
/// idea). Users keep the full key inside the value when collisions matter.
pub fn hash_key(key: &str) -> String {
    format!("{:016x}", memcached::fnv64a(key.as_bytes()))
}
