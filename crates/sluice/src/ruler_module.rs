//! Wiring of the ruler module (`-target=ruler`, part of `all`): where its
//! queries run (an in-process querier, or a query frontend in remote
//! mode), its rule store, its WAL directory, its ring (`ruler.ring`, else
//! `common.ring`, registered with this process's HTTP address) and the
//! `/ruler/ring` page.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use prometheus_client::registry::Registry;
use sluice_querier::Querier;
use sluice_ring::AnyKv;
use sluice_ruler::config::EvaluationMode;
use sluice_ruler::{
    LocalEvaluator, QueryEvaluator, RemoteEvaluator, RuleStore, Ruler, RulerDeps, Sharding,
    RULER_RING_KEY,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ring_page::{self, RingPage};
use crate::ring_setup;

/// A running ruler.
pub(crate) struct RulerModule {
    ruler: Arc<Ruler>,
    ring_page: Option<Router>,
}

impl RulerModule {
    /// Builds the ruler and starts it; `querier` is the in-process querier
    /// local evaluation uses.
    pub(crate) async fn start(
        config: &Config,
        querier: Option<Arc<Querier>>,
        common_kv: &AnyKv,
        http_addr: SocketAddr,
        path_prefix: &Path,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> anyhow::Result<RulerModule> {
        let ruler_config = &config.ruler;
        let evaluator: Arc<dyn QueryEvaluator> = match ruler_config.evaluation.mode {
            EvaluationMode::Local => Arc::new(LocalEvaluator::new(
                querier.context("the ruler's local evaluation needs a querier")?,
            )),
            EvaluationMode::Remote => Arc::new(
                RemoteEvaluator::new(
                    &ruler_config.evaluation.query_frontend.address,
                    ruler_config.evaluation.query_frontend.timeout,
                )
                .map_err(anyhow::Error::msg)
                .context("ruler.evaluation.query_frontend")?,
            ),
        };
        let store =
            RuleStore::from_config(&ruler_config.storage, &config.storage_config, path_prefix)
                .context("ruler.storage")?;
        let wal_dir = {
            let dir = PathBuf::from(&ruler_config.wal.dir);
            if dir.is_absolute() {
                dir
            } else {
                path_prefix.join(dir)
            }
        };
        let mut ring_page = None;
        let sharding = if ruler_config.enable_sharding {
            let (raw, kv) = match &ruler_config.ring {
                Some(ring) => {
                    let mut ring = ring.clone();
                    // The instance is the same process as in common.ring.
                    if ring.instance_id.trim().is_empty() {
                        ring.instance_id = config.common.ring.instance_id.clone();
                    }
                    let kv = AnyKv::from_config(&ring.kvstore).context("ruler.ring.kvstore")?;
                    (ring, kv)
                }
                None => (config.common.ring.clone(), common_kv.clone()),
            };
            let mut ring = ring_setup::resolve(&raw, http_addr);
            // Rulers reach each other over HTTP, so the ring holds this
            // process's HTTP address even when instance_addr names the
            // gRPC one.
            if !raw.instance_addr.trim().is_empty() {
                let host = raw
                    .instance_addr
                    .rsplit_once(':')
                    .map_or(raw.instance_addr.as_str(), |(host, _)| host);
                ring.instance_addr = format!("{host}:{}", http_addr.port());
            }
            ring.validate().context("ruler.ring")?;
            let watcher = ring_setup::watch(&kv, RULER_RING_KEY, &ring).await;
            ring_page = Some(ring_page::router(
                RingPage {
                    title: "Ruler ring",
                    kv: kv.clone(),
                    key: RULER_RING_KEY,
                    watcher,
                    heartbeat_timeout: ring.heartbeat_timeout,
                },
                &["/ruler/ring"],
            ));
            Some(Sharding::join(kv, ring).await.context("ruler.ring")?)
        } else {
            None
        };
        let ruler = Ruler::start(
            ruler_config.clone(),
            RulerDeps {
                evaluator,
                store,
                sharding,
                wal_dir,
                auth_enabled: config.auth_enabled,
            },
            registry,
            shutdown,
        )
        .await
        .context("starting the ruler")?;
        Ok(RulerModule { ruler, ring_page })
    }

    /// The rules API, and `/ruler/ring` when sharding.
    pub(crate) fn routes(&self) -> Router {
        let routes = self.ruler.router();
        match &self.ring_page {
            Some(page) => routes.merge(page.clone()),
            None => routes,
        }
    }

    /// Finishes the ruler's shutdown (after the shutdown token fired).
    pub(crate) async fn stopped(self) {
        self.ruler.stopped().await;
    }
}
