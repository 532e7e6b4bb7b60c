//! The ruler service: reads the rule store every `poll_interval` (and at
//! once after an API change or a ruler-ring change), keeps the groups it
//! owns running, and wires the notifier, the sample WAL and the
//! remote-write clients. Stopping it stops the groups, leaves the ring,
//! sends what the notifier holds and checkpoints the WAL.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::RulerConfig;
use crate::evaluator::QueryEvaluator;
use crate::group::{GroupDeps, GroupKey, GroupStatus};
use crate::manager::Manager;
use crate::metrics::{ReasonLabel, RulerMetrics, UserLabel};
use crate::notifier::Notifier;
use crate::remote_write::RemoteWriteClient;
use crate::rulefmt::RuleGroup;
use crate::sample_wal::SampleWal;
use crate::sharding::{RulerMember, Sharding};
use crate::store::RuleStore;

/// Why the ruler could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulerError {
    /// A setting is unusable; the message names it.
    #[error("{0}")]
    Config(String),
    /// The sample WAL could not be opened.
    #[error("ruler.wal.dir {dir}: {source}")]
    Wal {
        /// The directory.
        dir: String,
        /// Why.
        source: sluice_wal::WalError,
    },
}

/// What the ruler is built from.
#[derive(Debug)]
pub struct RulerDeps {
    /// Runs rule queries.
    pub evaluator: Arc<dyn QueryEvaluator>,
    /// Holds the rules.
    pub store: RuleStore,
    /// Membership in the ruler ring when `enable_sharding`.
    pub sharding: Option<Sharding>,
    /// The WAL directory (already resolved against `path_prefix`).
    pub wal_dir: PathBuf,
    /// `auth_enabled`.
    pub auth_enabled: bool,
}

/// A running ruler.
pub struct Ruler {
    config: RulerConfig,
    store: RuleStore,
    manager: Manager,
    sharding: Option<Sharding>,
    samples: Option<Arc<SampleWal>>,
    metrics: RulerMetrics,
    auth_enabled: bool,
    peers: reqwest::Client,
    sync_now: Notify,
    last_good: Mutex<BTreeMap<(String, String), Vec<RuleGroup>>>,
    reported_errors: Mutex<HashSet<String>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop_senders: CancellationToken,
}

impl std::fmt::Debug for Ruler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruler")
            .field("store", &self.store)
            .field("sharding", &self.sharding)
            .finish_non_exhaustive()
    }
}

impl Ruler {
    /// Starts the ruler; it runs until `shutdown`, then
    /// [`Ruler::stopped`] finishes the shutdown.
    pub async fn start(
        config: RulerConfig,
        deps: RulerDeps,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> Result<Arc<Ruler>, RulerError> {
        config.validate().map_err(RulerError::Config)?;
        let metrics = RulerMetrics::new(registry);
        let stop_senders = CancellationToken::new();
        let mut tasks = Vec::new();
        let notifier = Notifier::new(&config, metrics.clone()).map_err(RulerError::Config)?;
        if let Some(notifier) = &notifier {
            tasks.push(tokio::spawn(Arc::clone(notifier).run(stop_senders.clone())));
        }
        let clients = RemoteWriteClient::all(&config, &metrics).map_err(RulerError::Config)?;
        let samples = if clients.is_empty() {
            None
        } else {
            let names: Vec<String> = clients
                .iter()
                .map(|client| client.name().to_string())
                .collect();
            let dir = deps.wal_dir.clone();
            let wal_metrics = metrics.clone();
            let wal = tokio::task::spawn_blocking(move || SampleWal::open(dir, names, wal_metrics))
                .await
                .map_err(|err| RulerError::Config(format!("opening the ruler WAL: {err}")))?
                .map_err(|source| RulerError::Wal {
                    dir: deps.wal_dir.display().to_string(),
                    source,
                })?;
            let wal = Arc::new(wal);
            for client in clients {
                tasks.push(tokio::spawn(
                    client.run(Arc::clone(&wal), stop_senders.clone()),
                ));
            }
            tasks.push(tokio::spawn(checkpoint_loop(
                Arc::clone(&wal),
                config.wal.truncate_frequency,
                stop_senders.clone(),
            )));
            Some(wal)
        };
        let group_deps = Arc::new(GroupDeps {
            evaluator: deps.evaluator,
            notifier,
            samples: samples.clone(),
            metrics: metrics.clone(),
            external_url: config.external_url.clone(),
            resend_delay: config.resend_delay,
        });
        let peers = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| RulerError::Config(err.to_string()))?;
        let ruler = Arc::new(Ruler {
            manager: Manager::new(group_deps, config.evaluation_interval),
            config,
            store: deps.store,
            sharding: deps.sharding,
            samples,
            metrics,
            auth_enabled: deps.auth_enabled,
            peers,
            sync_now: Notify::new(),
            last_good: Mutex::new(BTreeMap::new()),
            reported_errors: Mutex::new(HashSet::new()),
            tasks: Mutex::new(tasks),
            stop_senders,
        });
        tracing::info!(
            store = %ruler.store.describe(),
            sharding = ruler.sharding.is_some(),
            "ruler started"
        );
        let sync_task = tokio::spawn(Arc::clone(&ruler).sync_loop(shutdown));
        ruler.tasks.lock().push(sync_task);
        Ok(ruler)
    }

    /// The rules HTTP API.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        crate::api::router(Arc::clone(self), self.config.enable_api)
    }

    pub(crate) fn auth_enabled(&self) -> bool {
        self.auth_enabled
    }

    pub(crate) fn store(&self) -> &RuleStore {
        &self.store
    }

    /// Asks for a sync now (after an API change).
    pub(crate) fn sync_soon(&self) {
        self.sync_now.notify_one();
    }

    async fn sync_loop(self: Arc<Self>, shutdown: CancellationToken) {
        self.sync("initial").await;
        let mut poll = tokio::time::interval(self.config.poll_interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        let mut ring_updates = self.sharding.as_ref().map(Sharding::subscribe);
        let mut last_members: BTreeSet<RulerMember> = self
            .sharding
            .as_ref()
            .map(Sharding::healthy_members)
            .unwrap_or_default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = poll.tick() => self.sync("periodic").await,
                () = self.sync_now.notified() => self.sync("api").await,
                changed = async {
                    match ring_updates.as_mut() {
                        Some(updates) => updates.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if changed.is_err() {
                        ring_updates = None;
                        continue;
                    }
                    let members = self
                        .sharding
                        .as_ref()
                        .map(Sharding::healthy_members)
                        .unwrap_or_default();
                    if members != last_members {
                        tracing::info!(rulers = members.len(), "ruler ring changed, re-syncing rule groups");
                        last_members = members;
                        self.sync("ring-change").await;
                    }
                }
            }
        }
    }

    /// Re-reads the store and runs the groups this ruler owns.
    async fn sync(&self, reason: &'static str) {
        self.metrics
            .syncs
            .get_or_create(&ReasonLabel { reason })
            .inc();
        let all = match self.store.list_all().await {
            Ok(all) => all,
            Err(error) => {
                tracing::error!(%error, "cannot list rule groups, keeping the running ones");
                return;
            }
        };
        let mut wanted = BTreeMap::new();
        let mut errors = HashSet::new();
        {
            let mut last_good = self.last_good.lock();
            let mut next_good = BTreeMap::new();
            for (tenant, namespaces) in all {
                let mut tenant_ok = true;
                for (namespace, loaded) in namespaces {
                    let groups = match loaded {
                        Ok(groups) => groups,
                        Err(error) => {
                            tenant_ok = false;
                            errors.insert(error.0.clone());
                            last_good
                                .get(&(tenant.clone(), namespace.clone()))
                                .cloned()
                                .unwrap_or_default()
                        }
                    };
                    for group in &groups {
                        let key = GroupKey {
                            tenant: tenant.clone(),
                            namespace: namespace.clone(),
                            name: group.name.clone(),
                        };
                        if self.owns(&key) {
                            wanted.insert(key, group.clone());
                        }
                    }
                    next_good.insert((tenant.clone(), namespace), groups);
                }
                self.metrics
                    .config_reload_ok
                    .get_or_create(&UserLabel { user: tenant })
                    .set(i64::from(tenant_ok));
            }
            *last_good = next_good;
        }
        {
            let mut reported = self.reported_errors.lock();
            for error in errors.difference(&reported) {
                tracing::error!(%error, "invalid rule file, keeping its last valid rules");
            }
            *reported = errors;
        }
        self.manager.sync(wanted);
    }

    fn owns(&self, key: &GroupKey) -> bool {
        let Some(sharding) = &self.sharding else {
            return true;
        };
        match sharding.owns(&key.tenant, &key.namespace, &key.name) {
            Ok(owned) => owned,
            Err(error) => {
                self.metrics.ring_check_errors.inc();
                tracing::warn!(%error, tenant = %key.tenant, group = %key.name, "cannot check rule group ownership on the ring");
                false
            }
        }
    }

    /// This ruler's groups of `tenant`.
    pub fn local_groups(&self, tenant: &str) -> Vec<GroupStatus> {
        self.manager.tenant_status(tenant)
    }

    /// Every ruler's groups of `tenant` (this one's alone without
    /// sharding); fails if a ruler of the ring does not answer.
    pub async fn all_groups(&self, tenant: &str) -> Result<Vec<GroupStatus>, String> {
        let Some(sharding) = &self.sharding else {
            return Ok(self.local_groups(tenant));
        };
        let members = sharding.healthy_members();
        let fetches = members.iter().map(|member| async move {
            if member.id == sharding.instance_id() {
                return Ok(self.local_groups(tenant));
            }
            let url = format!("http://{}/ruler/internal/groups", member.addr);
            let response = self
                .peers
                .get(&url)
                .header("X-Scope-OrgID", tenant)
                .send()
                .await
                .map_err(|err| {
                    format!("unable to retrieve rules from ruler {}: {err}", member.addr)
                })?;
            if !response.status().is_success() {
                return Err(format!(
                    "unable to retrieve rules from ruler {}: {}",
                    member.addr,
                    response.status()
                ));
            }
            response.json::<Vec<GroupStatus>>().await.map_err(|err| {
                format!("unable to retrieve rules from ruler {}: {err}", member.addr)
            })
        });
        let mut groups = Vec::new();
        for result in futures::future::join_all(fetches).await {
            groups.extend(result?);
        }
        groups.sort_by(|a, b| a.key.cmp(&b.key));
        groups.dedup_by(|a, b| a.key == b.key);
        Ok(groups)
    }

    /// Finishes the shutdown after `shutdown` fired: stops the groups,
    /// leaves the ring, lets the notifier send what it holds, stops the
    /// senders and checkpoints the WAL.
    pub async fn stopped(&self) {
        self.manager.stop().await;
        if let Some(sharding) = &self.sharding {
            sharding.leave().await;
        }
        self.stop_senders.cancel();
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(wal) = &self.samples {
            let wal = Arc::clone(wal);
            let result = tokio::task::spawn_blocking(move || wal.checkpoint()).await;
            if let Ok(Err(error)) = result {
                tracing::warn!(%error, "cannot checkpoint the ruler WAL at shutdown");
            }
        }
        tracing::info!("ruler stopped");
    }
}

async fn checkpoint_loop(wal: Arc<SampleWal>, every: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
    ticker.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {
                let wal = Arc::clone(&wal);
                match tokio::task::spawn_blocking(move || wal.checkpoint()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "ruler WAL checkpoint failed"),
                    Err(error) => tracing::warn!(%error, "ruler WAL checkpoint task failed"),
                }
            }
        }
    }
}
