//! Wiring of the compactor module (`-target=compactor`, part of `all`):
//! its object stores, its run loop, the delete API routes, and the delete
//! filters queriers apply to hide deleted lines.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;
use sluice_common::{HttpError, Overrides};
use sluice_compactor::{Compactor, CompactorDeps, DeleteRequestStore, SystemClock, TenantLimits};
use sluice_querier::{DeleteFilter, DeleteFilterSource};
use sluice_storage::{ChunkStore, ObjectStorage};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

const NS_PER_MS: i64 = 1_000_000;

/// Each tenant's limits: `limits_config` with the tenant's runtime
/// overrides, read anew on every lookup so a reload takes effect at the
/// next compaction run.
fn tenant_limits(overrides: &Arc<Overrides>) -> Arc<dyn TenantLimits> {
    let overrides = Arc::clone(overrides);
    Arc::new(move |tenant: &str| overrides.limits(tenant))
}

/// Returns the store holding the lease, marks and delete requests:
/// `compactor.delete_request_store`, else `compactor.shared_store`, else
/// the store of the schema period in force now.
fn control_store(
    config: &Config,
    store: &ChunkStore,
    path_prefix: &Path,
) -> anyhow::Result<ObjectStorage> {
    match config.compactor.control_store() {
        Some(name) => ObjectStorage::from_config(name, &config.storage_config, path_prefix)
            .with_context(|| format!("configuring compactor store {name:?}")),
        None => Ok(store.backend_at(sluice_common::time::now_nanos()).clone()),
    }
}

/// A running compactor.
pub(crate) struct CompactorModule {
    compactor: Arc<Compactor>,
    task: JoinHandle<()>,
}

impl CompactorModule {
    /// Builds the compactor and starts its run loop.
    pub(crate) async fn start(
        config: &Config,
        store: &Arc<ChunkStore>,
        path_prefix: &Path,
        instance_id: String,
        overrides: &Arc<Overrides>,
        registry: &mut Registry,
        shutdown: CancellationToken,
    ) -> anyhow::Result<CompactorModule> {
        let working_directory = if config.compactor.working_directory.is_empty() {
            path_prefix.join("compactor")
        } else {
            Path::new(&config.compactor.working_directory).to_path_buf()
        };
        tokio::fs::create_dir_all(&working_directory)
            .await
            .with_context(|| {
                format!(
                    "creating compactor.working_directory {}",
                    working_directory.display()
                )
            })?;
        if config.limits_config.allow_deletes {
            tracing::warn!("limits_config.allow_deletes is deprecated and ignored, as in Loki; use deletion_mode");
        }
        let compactor = Compactor::new(
            config.compactor.clone(),
            CompactorDeps {
                store: Arc::clone(store),
                control: control_store(config, store, path_prefix)?,
                limits: tenant_limits(overrides),
                clock: Arc::new(SystemClock),
                instance_id,
            },
            registry,
        )
        .context("starting the compactor")?;
        tracing::info!(
            retention_enabled = config.compactor.retention_enabled,
            compaction_interval = ?config.compactor.compaction_interval,
            "compactor started"
        );
        let task = tokio::spawn(Arc::clone(&compactor).run(shutdown));
        Ok(CompactorModule { compactor, task })
    }

    /// Returns the delete API routes; Loki serves them only when retention
    /// is enabled.
    pub(crate) fn routes(&self, config: &Config) -> Router {
        if config.compactor.retention_enabled {
            self.compactor.router(config.auth_enabled)
        } else {
            Router::new()
        }
    }

    /// Waits for the run loop to stop (it gives the lease up).
    pub(crate) async fn stopped(self) {
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "compactor task failed");
        }
    }
}

/// Returns what a querier uses to hide deleted lines, when deletes are
/// enabled (`compactor.retention_enabled`, as in Loki): the compactor's own
/// request store in this process, else one reading the same object store.
pub(crate) fn delete_filters(
    config: &Config,
    store: &ChunkStore,
    path_prefix: &Path,
    compactor: Option<&CompactorModule>,
    overrides: &Arc<Overrides>,
) -> anyhow::Result<Option<Arc<dyn DeleteFilterSource>>> {
    if !config.compactor.retention_enabled {
        return Ok(None);
    }
    let requests = match compactor {
        Some(module) => module.compactor.delete_requests(),
        None => Arc::new(DeleteRequestStore::new(control_store(
            config,
            store,
            path_prefix,
        )?)),
    };
    Ok(Some(Arc::new(StoredDeleteFilters {
        requests,
        limits: tenant_limits(overrides),
    })))
}

/// Delete filters read from the delete request store.
struct StoredDeleteFilters {
    requests: Arc<DeleteRequestStore>,
    limits: Arc<dyn TenantLimits>,
}

impl std::fmt::Debug for StoredDeleteFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDeleteFilters")
            .field("requests", &self.requests)
            .finish_non_exhaustive()
    }
}

impl DeleteFilterSource for StoredDeleteFilters {
    fn delete_filters<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeleteFilter>, HttpError>> {
        Box::pin(async move {
            if !self
                .limits
                .limits_for(tenant)
                .deletion_mode
                .allows_requests()
            {
                return Ok(Vec::new());
            }
            let requests = self
                .requests
                .list_cached(tenant)
                .await
                .map_err(HttpError::from)?;
            Ok(requests
                .into_iter()
                .map(|request| DeleteFilter {
                    query: request.query,
                    start_ns: request.start_ms.saturating_mul(NS_PER_MS),
                    end_ns: request.end_ms.saturating_mul(NS_PER_MS),
                })
                .collect())
        })
    }
}
