//! Ring membership over time: the [`Lifecycler`] registers this instance and
//! heartbeats; the [`RingWatcher`] only follows the ring (distributors,
//! queriers).
//!
//! Both keep the last ring they saw when the KV store is unreachable: an
//! error is logged and the next tick retries. A heartbeat that finds its
//! member missing (e.g. memcached restarted empty) re-registers it with the
//! same tokens, so the ring heals without a restart.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::RingConfig;
use crate::desc::{Member, MemberState, RingDesc};
use crate::error::RingError;
use crate::kv::KvStore;
use crate::ring::Ring;
use crate::tokens::generate_tokens;

/// Returns the current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// What this instance believes about itself; the KV record is rewritten
/// from it on every heartbeat.
#[derive(Clone, Debug)]
struct LocalMember {
    state: MemberState,
    tokens: Vec<u32>,
    registered_ms: i64,
}

struct Shared<K> {
    kv: K,
    key: String,
    config: RingConfig,
    local: Mutex<LocalMember>,
    /// The last record read or written; restores the ring when the record
    /// vanishes (memcached restarted empty or evicted it).
    last_desc: Mutex<RingDesc>,
    ring_tx: watch::Sender<Arc<Ring>>,
}

impl<K: KvStore> Shared<K> {
    fn member(&self, local: &LocalMember, now: i64) -> Member {
        Member {
            id: self.config.instance_id.clone(),
            addr: self.config.instance_addr.clone(),
            zone: self.config.instance_availability_zone.clone(),
            state: local.state,
            tokens: local.tokens.clone(),
            heartbeat_ms: now,
            registered_ms: local.registered_ms,
        }
    }

    fn publish(&self, desc: &RingDesc) {
        *self.last_desc.lock() = desc.clone();
        let ring = Ring::new(desc, self.config.zone_awareness_enabled).read_at(now_ms());
        self.ring_tx.send_replace(Arc::new(ring));
    }

    /// The record to start from when the store has none: the last one
    /// seen, so one heartbeat after a memcached restart brings back every
    /// member (those that died meanwhile come back unhealthy, as before).
    fn base(&self, stored: Option<RingDesc>) -> RingDesc {
        stored.unwrap_or_else(|| self.last_desc.lock().clone())
    }

    /// Registers this instance, reusing its tokens if the record still has
    /// them (a restart) and drawing fresh ones otherwise.
    async fn join(&self) -> Result<(), RingError> {
        let id = self.config.instance_id.clone();
        let num_tokens = self.config.num_tokens;
        let local = self.local.lock().clone();
        let mut token_error = None;
        let desc = self
            .kv
            .update(&self.key, |desc| {
                let mut desc = self.base(desc);
                let taken = desc.taken_tokens(&id);
                let reusable = desc.members.get(&id).filter(|existing| {
                    existing.tokens.len() == num_tokens
                        && existing.tokens.iter().all(|token| !taken.contains(token))
                });
                let (tokens, registered_ms) = match reusable {
                    Some(existing) => (existing.tokens.clone(), existing.registered_ms),
                    None => {
                        let mut rng = fastrand::Rng::new();
                        match generate_tokens(num_tokens, &taken, &mut rng) {
                            Ok(tokens) => (tokens, local.registered_ms),
                            Err(error) => {
                                token_error = Some(error);
                                return desc;
                            }
                        }
                    }
                };
                let joined = LocalMember {
                    state: local.state,
                    tokens,
                    registered_ms,
                };
                desc.members
                    .insert(id.clone(), self.member(&joined, now_ms()));
                desc
            })
            .await?;
        if let Some(error) = token_error {
            return Err(error);
        }
        if let Some(member) = desc.members.get(&id) {
            let mut local = self.local.lock();
            local.tokens = member.tokens.clone();
            local.registered_ms = member.registered_ms;
        }
        self.publish(&desc);
        Ok(())
    }

    /// Writes this instance's state and heartbeat, re-adding it if missing.
    /// Joins first if the join never succeeded (the store was down at
    /// startup).
    async fn heartbeat(&self) -> Result<(), RingError> {
        let local = self.local.lock().clone();
        if local.tokens.is_empty() {
            return self.join().await;
        }
        let id = self.config.instance_id.clone();
        let desc = self
            .kv
            .update(&self.key, |desc| {
                let mut desc = self.base(desc);
                desc.members
                    .insert(id.clone(), self.member(&local, now_ms()));
                desc
            })
            .await?;
        self.publish(&desc);
        Ok(())
    }

    async fn remove(&self) -> Result<(), RingError> {
        let id = self.config.instance_id.clone();
        let desc = self
            .kv
            .update(&self.key, |desc| {
                let mut desc = self.base(desc);
                desc.members.remove(&id);
                desc
            })
            .await?;
        self.publish(&desc);
        Ok(())
    }
}

/// Registers this instance in the ring and keeps its heartbeat fresh.
///
/// Lifecycle: [`start`](Self::start) (joins as JOINING, starts heartbeating),
/// [`set_state`](Self::set_state) to ACTIVE when ready and to LEAVING when
/// shutting down, then [`leave`](Self::leave).
pub struct Lifecycler<K: KvStore + 'static> {
    shared: Arc<Shared<K>>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl<K: KvStore + 'static> Lifecycler<K> {
    /// Returns a lifecycler for ring record `key`; validates `config`.
    pub fn new(kv: K, key: impl Into<String>, config: RingConfig) -> Result<Self, RingError> {
        config.validate()?;
        let (ring_tx, _) = watch::channel(Arc::new(Ring::default()));
        Ok(Lifecycler {
            shared: Arc::new(Shared {
                kv,
                key: key.into(),
                config,
                local: Mutex::new(LocalMember {
                    state: MemberState::Joining,
                    tokens: Vec::new(),
                    registered_ms: now_ms(),
                }),
                last_desc: Mutex::new(RingDesc::default()),
                ring_tx,
            }),
            cancel: CancellationToken::new(),
            task: Mutex::new(None),
        })
    }

    /// Joins the ring as JOINING and starts the heartbeat loop. When the KV
    /// store cannot be reached the error is logged and returned, but the
    /// loop still starts and joins as soon as the store answers, so a
    /// process need not fail because memcached is briefly down.
    pub async fn start(&self) -> Result<(), RingError> {
        let joined = self.shared.join().await;
        match &joined {
            Ok(()) => info!(
                instance = %self.shared.config.instance_id,
                tokens = self.shared.config.num_tokens,
                "joined ring"
            ),
            Err(error) => warn!(
                %error,
                instance = %self.shared.config.instance_id,
                "cannot join the ring yet, retrying every heartbeat"
            ),
        }
        let shared = Arc::clone(&self.shared);
        let cancel = self.cancel.clone();
        let handle = tokio::spawn(heartbeat_loop(shared, cancel));
        if let Some(previous) = self.task.lock().replace(handle) {
            previous.abort();
        }
        joined
    }

    /// Sets this instance's state and writes it to the ring at once. On a KV
    /// error the state is still kept locally and written by the next
    /// heartbeat.
    pub async fn set_state(&self, state: MemberState) -> Result<(), RingError> {
        self.shared.local.lock().state = state;
        self.shared.heartbeat().await
    }

    /// Sends one heartbeat now (the loop does this every `heartbeat_period`).
    pub async fn heartbeat(&self) -> Result<(), RingError> {
        self.shared.heartbeat().await
    }

    /// Stops heartbeating and removes this instance from the ring.
    pub async fn leave(&self) -> Result<(), RingError> {
        self.cancel.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            // The loop only exits on cancellation; a join error means it
            // panicked, which is worth a log but must not stop the leave.
            if let Err(error) = task.await {
                warn!(%error, "ring heartbeat task failed");
            }
        }
        self.shared.remove().await?;
        info!(instance = %self.shared.config.instance_id, "left ring");
        Ok(())
    }

    /// Returns the last ring seen.
    pub fn ring(&self) -> Arc<Ring> {
        self.shared.ring_tx.borrow().clone()
    }

    /// Returns a receiver notified on every ring refresh.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Ring>> {
        self.shared.ring_tx.subscribe()
    }

    /// Returns this instance's state.
    pub fn state(&self) -> MemberState {
        self.shared.local.lock().state
    }

    /// Returns this instance's tokens (empty before `start`).
    pub fn tokens(&self) -> Vec<u32> {
        self.shared.local.lock().tokens.clone()
    }

    /// Returns the configuration.
    pub fn config(&self) -> &RingConfig {
        &self.shared.config
    }
}

impl<K: KvStore + 'static> Drop for Lifecycler<K> {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn heartbeat_loop<K: KvStore>(shared: Arc<Shared<K>>, cancel: CancellationToken) {
    let mut ticker = tokio::time::interval(shared.config.heartbeat_period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; `start` just joined
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {
                if let Err(error) = shared.heartbeat().await {
                    warn!(
                        %error,
                        instance = %shared.config.instance_id,
                        "ring heartbeat failed, keeping the last ring"
                    );
                }
            }
        }
    }
}

/// Follows a ring without being a member: polls the record every `interval`
/// and keeps the last good snapshot.
pub struct RingWatcher {
    ring_rx: watch::Receiver<Arc<Ring>>,
    refresh_tx: mpsc::Sender<oneshot::Sender<()>>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl RingWatcher {
    /// Reads the ring once (an error is logged, the ring starts empty) and
    /// starts polling.
    pub async fn start<K: KvStore + 'static>(
        kv: K,
        key: impl Into<String>,
        zone_awareness_enabled: bool,
        interval: Duration,
    ) -> Self {
        let key = key.into();
        let (ring_tx, ring_rx) = watch::channel(Arc::new(Ring::default()));
        refresh(&kv, &key, zone_awareness_enabled, &ring_tx).await;
        let cancel = CancellationToken::new();
        let loop_cancel = cancel.clone();
        let (refresh_tx, mut refresh_rx) = mpsc::channel::<oneshot::Sender<()>>(8);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = loop_cancel.cancelled() => break,
                    _ = ticker.tick() => refresh(&kv, &key, zone_awareness_enabled, &ring_tx).await,
                    Some(done) = refresh_rx.recv() => {
                        refresh(&kv, &key, zone_awareness_enabled, &ring_tx).await;
                        let _ = done.send(());
                    }
                }
            }
        });
        RingWatcher {
            ring_rx,
            refresh_tx,
            cancel,
            task: Mutex::new(Some(task)),
        }
    }

    /// Returns the last ring seen.
    pub fn ring(&self) -> Arc<Ring> {
        self.ring_rx.borrow().clone()
    }

    /// Returns a receiver notified on every refresh.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Ring>> {
        self.ring_rx.clone()
    }

    /// Reads the ring now instead of at the next tick, and returns once
    /// done (at once if the watcher is stopped).
    pub async fn refresh(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.refresh_tx.send(done_tx).await.is_ok() {
            let _ = done_rx.await;
        }
    }

    /// Stops polling.
    pub async fn stop(&self) {
        self.cancel.cancel();
        let task = self.task.lock().take();
        if let Some(task) = task {
            if let Err(error) = task.await {
                warn!(%error, "ring watcher task failed");
            }
        }
    }
}

impl Drop for RingWatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn refresh<K: KvStore>(
    kv: &K,
    key: &str,
    zone_awareness_enabled: bool,
    ring_tx: &watch::Sender<Arc<Ring>>,
) {
    match kv.get_desc(key).await {
        Ok(Some(desc)) => {
            let ring = Ring::new(&desc, zone_awareness_enabled).read_at(now_ms());
            ring_tx.send_replace(Arc::new(ring));
        }
        // A missing record is a store that lost it (members leaving write
        // an empty record, they never delete it): keep the last ring until
        // the members' next heartbeats write it back.
        Ok(None) => {}
        Err(error) => warn!(%error, key, "ring refresh failed, keeping the last ring"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::kv::{CasId, InMemoryKv, RetryPolicy};

    fn config(id: &str) -> RingConfig {
        RingConfig {
            instance_id: id.to_owned(),
            instance_addr: format!("{id}:9095"),
            heartbeat_period: Duration::from_millis(20),
            heartbeat_timeout: Duration::from_secs(60),
            num_tokens: 16,
            replication_factor: 1,
            ..RingConfig::default()
        }
    }

    /// An in-memory store that can be switched off.
    #[derive(Clone, Default)]
    struct FlakyKv {
        inner: InMemoryKv,
        down: Arc<AtomicBool>,
    }

    impl FlakyKv {
        fn check(&self) -> Result<(), RingError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(RingError::MemcachedTimeout {
                    addr: "flaky".into(),
                    timeout: Duration::ZERO,
                });
            }
            Ok(())
        }
    }

    impl KvStore for FlakyKv {
        async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, CasId)>, RingError> {
            self.check()?;
            self.inner.get(key).await
        }
        async fn cas(&self, key: &str, value: &[u8], cas: CasId) -> Result<bool, RingError> {
            self.check()?;
            self.inner.cas(key, value, cas).await
        }
        async fn add(&self, key: &str, value: &[u8]) -> Result<bool, RingError> {
            self.check()?;
            self.inner.add(key, value).await
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn joins_activates_and_leaves() {
        let kv = InMemoryKv::new();
        let first = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        let second = Lifecycler::new(kv.clone(), "ring", config("b")).expect("config");
        first.start().await.expect("start");
        second.start().await.expect("start");
        assert_eq!(first.tokens().len(), 16);
        let desc = kv.get_desc("ring").await.expect("get").expect("present");
        assert_eq!(desc.members.len(), 2);
        assert_eq!(desc.members["a"].state, MemberState::Joining);
        // JOINING members take no writes.
        assert!(second
            .ring()
            .get(0, 1, now_ms(), Duration::from_secs(60))
            .is_err());

        first.set_state(MemberState::Active).await.expect("active");
        second.set_state(MemberState::Active).await.expect("active");
        let ring = second.ring();
        let set = ring
            .get(12345, 1, now_ms(), Duration::from_secs(60))
            .expect("set");
        assert_eq!(set.members.len(), 1);
        let ownership = ring.token_ownership();
        assert_eq!(ownership.len(), 2);

        first.leave().await.expect("leave");
        let desc = kv.get_desc("ring").await.expect("get").expect("present");
        assert_eq!(desc.members.keys().collect::<Vec<_>>(), ["b"]);
        second.leave().await.expect("leave");
    }

    #[tokio::test]
    async fn heartbeats_advance_and_rejoin_reuses_tokens() {
        let kv = InMemoryKv::new();
        let lifecycler = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        lifecycler.start().await.expect("start");
        let first_beat = kv
            .get_desc("ring")
            .await
            .expect("get")
            .expect("present")
            .members["a"]
            .heartbeat_ms;
        tokio::time::sleep(Duration::from_millis(80)).await;
        let later_beat = kv
            .get_desc("ring")
            .await
            .expect("get")
            .expect("present")
            .members["a"]
            .heartbeat_ms;
        assert!(later_beat > first_beat, "{later_beat} > {first_beat}");
        let tokens = lifecycler.tokens();
        drop(lifecycler);

        // A restarted instance with the same id keeps its tokens.
        let restarted = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        restarted.start().await.expect("start");
        assert_eq!(restarted.tokens(), tokens);
        restarted.leave().await.expect("leave");
    }

    #[tokio::test]
    async fn keeps_the_last_ring_while_the_kv_is_down() {
        let kv = FlakyKv::default();
        let lifecycler = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        lifecycler.start().await.expect("start");
        lifecycler
            .set_state(MemberState::Active)
            .await
            .expect("active");
        kv.down.store(true, Ordering::SeqCst);
        assert!(lifecycler.heartbeat().await.is_err());
        tokio::time::sleep(Duration::from_millis(80)).await; // failing loop ticks
        assert_eq!(lifecycler.ring().members().len(), 1);
        // State changes are kept locally and written once the KV is back.
        assert!(lifecycler.set_state(MemberState::Leaving).await.is_err());
        kv.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(80)).await;
        let desc = kv.get_desc("ring").await.expect("get").expect("present");
        assert_eq!(desc.members["a"].state, MemberState::Leaving);
        lifecycler.leave().await.expect("leave");
    }

    #[tokio::test]
    async fn watcher_follows_the_ring() {
        let kv = InMemoryKv::new();
        let watcher =
            RingWatcher::start(kv.clone(), "ring", false, Duration::from_millis(20)).await;
        assert!(watcher.ring().members().is_empty());
        let lifecycler = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        lifecycler.start().await.expect("start");
        let mut updates = watcher.subscribe();
        tokio::time::timeout(
            Duration::from_secs(5),
            updates.wait_for(|ring| ring.members().len() == 1),
        )
        .await
        .expect("in time")
        .expect("watcher alive");
        watcher.stop().await;
        lifecycler.leave().await.expect("leave");
    }

    #[tokio::test]
    async fn joins_once_the_kv_comes_up() {
        let kv = FlakyKv::default();
        kv.down.store(true, Ordering::SeqCst);
        let lifecycler = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        assert!(lifecycler.start().await.is_err());
        assert!(lifecycler.tokens().is_empty());
        kv.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(lifecycler.tokens().len(), 16);
        let desc = kv
            .inner
            .get_desc("ring")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(desc.members["a"].tokens, lifecycler.tokens());
        lifecycler.leave().await.expect("leave");
    }

    #[tokio::test]
    async fn a_lost_record_comes_back_whole() {
        let kv = InMemoryKv::new();
        let slow = RingConfig {
            heartbeat_period: Duration::from_secs(3600),
            heartbeat_timeout: Duration::from_secs(7200),
            ..config("b")
        };
        let first = Lifecycler::new(kv.clone(), "ring", config("a")).expect("config");
        let second = Lifecycler::new(kv.clone(), "ring", slow).expect("config");
        second.start().await.expect("start");
        first.start().await.expect("start");
        second.set_state(MemberState::Active).await.expect("active");
        first.set_state(MemberState::Active).await.expect("active");
        let watcher =
            RingWatcher::start(kv.clone(), "ring", false, Duration::from_millis(10)).await;
        assert_eq!(watcher.ring().members().len(), 2);

        kv.clear();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // The watcher keeps the last ring rather than an empty one...
        assert_eq!(watcher.ring().members().len(), 2);
        // ...and one heartbeat of `a` restores `b` too, with its tokens.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let desc = kv.get_desc("ring").await.expect("get").expect("restored");
        assert_eq!(desc.members.len(), 2);
        assert_eq!(desc.members["b"].tokens, second.tokens());
        assert_eq!(desc.members["b"].state, MemberState::Active);
        watcher.stop().await;
        first.leave().await.expect("leave");
        second.leave().await.expect("leave");
    }

    #[test]
    fn rejects_invalid_config() {
        assert!(Lifecycler::new(InMemoryKv::new(), "ring", RingConfig::default()).is_err());
    }
}
