//! The membership store interface, its compare-and-swap update loop and the
//! in-memory backend.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::debug;

use crate::config::{KvStoreConfig, KvStoreKind};
use crate::desc::RingDesc;
use crate::error::RingError;
use crate::memcached::MemcachedKv;

/// A version id returned by [`KvStore::get`] and checked by [`KvStore::cas`].
pub type CasId = u64;

/// How [`KvStore::update`] retries compare-and-swap conflicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before giving up with [`RingError::TooManyConflicts`].
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled per attempt.
    pub base_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 32,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// Returns a "full jitter" backoff for the given (1-based) failed attempt.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let millis = u64::try_from(exponential.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis.max(1)))
    }
}

/// A key-value store with compare-and-swap, holding one ring record per key.
pub trait KvStore: Send + Sync {
    /// Returns the value and its CAS id, or `None` if the key is absent.
    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, CasId)>, RingError>> + Send;

    /// Stores `value` if the key is still at version `cas`; `false` on conflict
    /// (the key changed or disappeared).
    fn cas(
        &self,
        key: &str,
        value: &[u8],
        cas: CasId,
    ) -> impl Future<Output = Result<bool, RingError>> + Send;

    /// Stores `value` if the key is absent; `false` if it exists.
    fn add(&self, key: &str, value: &[u8]) -> impl Future<Output = Result<bool, RingError>> + Send;

    /// The retry policy [`KvStore::update`] uses.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Applies `f` to the current ring record and stores the result with
    /// compare-and-swap, retrying with jittered backoff on conflict. `f` may
    /// run several times and must be a pure function of its input. Returns
    /// the stored record.
    fn update<F>(
        &self,
        key: &str,
        mut f: F,
    ) -> impl Future<Output = Result<RingDesc, RingError>> + Send
    where
        F: FnMut(Option<RingDesc>) -> RingDesc + Send,
    {
        async move {
            let policy = self.retry_policy();
            for attempt in 1..=policy.max_attempts {
                let current = self.get(key).await?;
                let stored = match current {
                    None => {
                        let desc = f(None);
                        let bytes = desc.encode(key)?;
                        self.add(key, &bytes).await?.then_some(desc)
                    }
                    Some((bytes, cas)) => {
                        let desc = f(Some(RingDesc::decode(key, &bytes)?));
                        let bytes = desc.encode(key)?;
                        self.cas(key, &bytes, cas).await?.then_some(desc)
                    }
                };
                if let Some(desc) = stored {
                    return Ok(desc);
                }
                debug!(key, attempt, "ring record cas conflict, retrying");
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
            Err(RingError::TooManyConflicts {
                key: key.to_owned(),
                attempts: policy.max_attempts,
            })
        }
    }

    /// Returns the decoded ring record, if any.
    fn get_desc(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<RingDesc>, RingError>> + Send {
        async move {
            match self.get(key).await? {
                None => Ok(None),
                Some((bytes, _)) => RingDesc::decode(key, &bytes).map(Some),
            }
        }
    }
}

/// A process-local store: a mutex-guarded map with a global version counter.
/// Clones share the same map.
#[derive(Clone, Debug, Default)]
pub struct InMemoryKv {
    inner: Arc<Mutex<InMemoryState>>,
}

#[derive(Debug, Default)]
struct InMemoryState {
    next_version: CasId,
    items: HashMap<String, (Vec<u8>, CasId)>,
}

impl InMemoryState {
    fn bump(&mut self) -> CasId {
        self.next_version += 1;
        self.next_version
    }
}

impl InMemoryKv {
    /// Returns an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every item, as a restarted memcached would.
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        self.inner.lock().items.clear();
    }
}

impl KvStore for InMemoryKv {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasId)>, RingError> {
        Ok(self.inner.lock().items.get(key).cloned())
    }

    async fn cas(&self, key: &str, value: &[u8], cas: CasId) -> Result<bool, RingError> {
        let mut state = self.inner.lock();
        match state.items.get(key) {
            Some((_, version)) if *version == cas => {
                let version = state.bump();
                state
                    .items
                    .insert(key.to_owned(), (value.to_vec(), version));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn add(&self, key: &str, value: &[u8]) -> Result<bool, RingError> {
        let mut state = self.inner.lock();
        if state.items.contains_key(key) {
            return Ok(false);
        }
        let version = state.bump();
        state
            .items
            .insert(key.to_owned(), (value.to_vec(), version));
        Ok(true)
    }
}

/// The backend chosen by configuration.
#[derive(Clone, Debug)]
pub enum AnyKv {
    /// In-memory.
    InMemory(InMemoryKv),
    /// Memcached.
    Memcached(MemcachedKv),
}

impl AnyKv {
    /// Builds the configured backend (memcached connects lazily).
    pub fn from_config(config: &KvStoreConfig) -> Result<Self, RingError> {
        match config.store {
            KvStoreKind::Inmemory => Ok(AnyKv::InMemory(InMemoryKv::new())),
            KvStoreKind::Memcached => MemcachedKv::new(&config.memcached).map(AnyKv::Memcached),
        }
    }
}

impl KvStore for AnyKv {
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasId)>, RingError> {
        match self {
            AnyKv::InMemory(kv) => kv.get(key).await,
            AnyKv::Memcached(kv) => kv.get(key).await,
        }
    }

    async fn cas(&self, key: &str, value: &[u8], cas: CasId) -> Result<bool, RingError> {
        match self {
            AnyKv::InMemory(kv) => kv.cas(key, value, cas).await,
            AnyKv::Memcached(kv) => kv.cas(key, value, cas).await,
        }
    }

    async fn add(&self, key: &str, value: &[u8]) -> Result<bool, RingError> {
        match self {
            AnyKv::InMemory(kv) => kv.add(key, value).await,
            AnyKv::Memcached(kv) => kv.add(key, value).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::{Member, MemberState};

    fn member(id: &str) -> Member {
        Member {
            id: id.to_owned(),
            addr: format!("{id}:9095"),
            zone: String::new(),
            state: MemberState::Joining,
            tokens: vec![],
            heartbeat_ms: 0,
            registered_ms: 0,
        }
    }

    #[tokio::test]
    async fn cas_rejects_stale_versions() {
        let kv = InMemoryKv::new();
        assert!(kv.add("k", b"one").await.expect("add"));
        assert!(!kv.add("k", b"two").await.expect("add"));
        let (value, cas) = kv.get("k").await.expect("get").expect("present");
        assert_eq!(value, b"one");
        assert!(kv.cas("k", b"three", cas).await.expect("cas"));
        assert!(!kv.cas("k", b"four", cas).await.expect("stale cas"));
        assert!(!kv.cas("absent", b"x", cas).await.expect("absent cas"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_joiners_lose_nobody() {
        let kv = InMemoryKv::new();
        let mut tasks = Vec::new();
        for index in 0..16 {
            let kv = kv.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("ingester-{index}");
                kv.update("ring", |desc| {
                    let mut desc = desc.unwrap_or_default();
                    desc.members.insert(id.clone(), member(&id));
                    desc
                })
                .await
            }));
        }
        for task in tasks {
            task.await.expect("join").expect("update");
        }
        let desc = kv.get_desc("ring").await.expect("get").expect("present");
        assert_eq!(desc.members.len(), 16);
    }

    /// A store whose CAS always conflicts.
    struct AlwaysConflicting;

    impl KvStore for AlwaysConflicting {
        async fn get(&self, _key: &str) -> Result<Option<(Vec<u8>, CasId)>, RingError> {
            Ok(Some((b"{}".to_vec(), 1)))
        }
        async fn cas(&self, _: &str, _: &[u8], _: CasId) -> Result<bool, RingError> {
            Ok(false)
        }
        async fn add(&self, _: &str, _: &[u8]) -> Result<bool, RingError> {
            Ok(false)
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                max_attempts: 3,
                base_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            }
        }
    }

    #[tokio::test]
    async fn update_gives_up_with_a_clear_error() {
        let err = AlwaysConflicting
            .update("ring", |desc| desc.unwrap_or_default())
            .await
            .expect_err("always conflicts");
        assert!(matches!(
            err,
            RingError::TooManyConflicts { attempts: 3, .. }
        ));
        assert!(err.to_string().contains("\"ring\""), "{err}");
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::default();
        for attempt in 1..40 {
            assert!(policy.backoff(attempt) <= policy.max_backoff);
        }
    }
}
