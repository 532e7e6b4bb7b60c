//! The in-process cache (`embedded_cache`): least recently used items are
//! evicted beyond `max_size_mb`; items expire after `ttl`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;
use parking_lot::Mutex;

use crate::config::EmbeddedCacheConfig;

struct Item {
    value: Bytes,
    expires: Instant,
}

struct State {
    items: LruCache<String, Item>,
    bytes: usize,
}

/// A bounded in-memory cache.
pub struct EmbeddedCache {
    state: Mutex<State>,
    max_bytes: usize,
    ttl: Duration,
}

impl std::fmt::Debug for EmbeddedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCache")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl EmbeddedCache {
    /// An empty cache with `config`'s budget and TTL.
    pub fn new(config: &EmbeddedCacheConfig) -> EmbeddedCache {
        EmbeddedCache {
            state: Mutex::new(State {
                items: LruCache::unbounded(),
                bytes: 0,
            }),
            max_bytes: usize::try_from(config.max_size_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            ttl: if config.ttl.is_zero() {
                Duration::from_secs(3600)
            } else {
                config.ttl
            },
        }
    }

    /// Returns the live items among `keys` (shared, not copied).
    pub fn get_multi(&self, keys: &[String]) -> HashMap<String, Bytes> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let mut found = HashMap::new();
        for key in keys {
            let expired = match state.items.get(key) {
                Some(item) if item.expires > now => {
                    found.insert(key.clone(), item.value.clone());
                    false
                }
                Some(_) => true,
                None => false,
            };
            if expired {
                if let Some(item) = state.items.pop(key) {
                    state.bytes -= Self::cost(key, &item.value);
                }
            }
        }
        found
    }

    /// Stores an item, evicting the least recently used beyond the budget.
    pub fn set(&self, key: String, value: impl Into<Bytes>, ttl: Option<Duration>) {
        let value = value.into();
        let cost = Self::cost(&key, &value);
        if cost > self.max_bytes {
            return;
        }
        let mut state = self.state.lock();
        let expires = Instant::now() + ttl.filter(|t| !t.is_zero()).unwrap_or(self.ttl);
        if let Some(old) = state.items.put(key.clone(), Item { value, expires }) {
            state.bytes -= Self::cost(&key, &old.value);
        }
        state.bytes += cost;
        while state.bytes > self.max_bytes {
            match state.items.pop_lru() {
                Some((key, item)) => state.bytes -= Self::cost(&key, &item.value),
                None => break,
            }
        }
    }

    fn cost(key: &str, value: &[u8]) -> usize {
        key.len() + value.len() + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_budget_and_expires() {
        let cache = EmbeddedCache::new(&EmbeddedCacheConfig {
            enabled: true,
            max_size_mb: 1,
            ttl: Duration::from_secs(60),
        });
        let big = vec![0u8; 400 << 10];
        cache.set("a".into(), big.clone(), None);
        cache.set("b".into(), big.clone(), None);
        assert_eq!(cache.get_multi(&["a".into()]).len(), 1); // a is now fresh
        cache.set("c".into(), big, None); // evicts b
        let found = cache.get_multi(&["a".into(), "b".into(), "c".into()]);
        assert!(found.contains_key("a") && found.contains_key("c"));
        assert!(!found.contains_key("b"));
        cache.set("d".into(), vec![1], Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get_multi(&["d".into()]).is_empty());
    }
}
