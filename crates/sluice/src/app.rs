//! Wires the selected modules into one process: builds them, serves HTTP
//! and gRPC, reports readiness, and shuts down in order on cancellation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use prometheus_client::registry::Registry;
use sluice_common::http_metrics::{self, HttpMetrics};
use sluice_common::readiness::Readiness;
use sluice_distributor::Distributor;
use sluice_ingester::service::IngesterService;
use sluice_ingester::{Ingester, IngesterDeps};
use sluice_querier::Querier;
use sluice_storage::{ChunkStore, IndexCache};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::compactor_module::{self, CompactorModule};
use crate::config::Config;
use crate::ops::{self, OpsState};
use crate::targets::{Module, Targets};
use crate::telemetry::{register_build_info, RegistryHandle};

/// Runs the process until `shutdown` is cancelled, then stops gracefully.
pub(crate) async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let targets = Targets::parse(&config.target).map_err(anyhow::Error::msg)?;
    tokio::fs::create_dir_all(&config.common.path_prefix)
        .await
        .with_context(|| format!("creating common.path_prefix {}", config.common.path_prefix))?;

    let readiness = Readiness::default();
    for module in targets.modules() {
        readiness.register(module.name());
    }
    let mut registry = Registry::default();
    register_build_info(&mut registry);
    let request_metrics = HttpMetrics::new(&mut registry);

    let http_addr = config.server.http_addr().map_err(anyhow::Error::msg)?;
    let grpc_addr = config.server.grpc_addr().map_err(anyhow::Error::msg)?;
    let http_listener = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP listener on {http_addr}"))?;
    let grpc_listener = TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("binding gRPC listener on {grpc_addr}"))?;

    let max_recv = config.server.grpc_server_max_recv_msg_size;
    let max_send = config.server.grpc_server_max_send_msg_size;
    let path_prefix = PathBuf::from(&config.common.path_prefix);
    let store = Arc::new(
        ChunkStore::new(&config.storage_config, &config.schema_config, &path_prefix)
            .context("configuring object storage")?,
    );
    tracing::info!(backends = %store.describe(), "object storage ready");

    let mut http_routes = Router::new();
    let mut grpc_server = None;
    let mut ingester_task = None;
    let mut ingester_channel = None;
    let mut pusher_channel = None;
    if targets.has(Module::Ingester) {
        let wal_dir = if config.ingester.wal.dir.is_empty() {
            path_prefix.join("wal")
        } else {
            PathBuf::from(&config.ingester.wal.dir)
        };
        let deps = IngesterDeps {
            store: Some(Arc::clone(&store)),
            wal_dir,
            writer_id: writer_id(grpc_addr.port()),
        };
        let ingester = Ingester::open(config.ingester.clone(), deps, &mut registry)
            .await
            .context("starting the ingester")?;
        let service = IngesterService::new(Arc::clone(&ingester));
        http_routes = http_routes.merge(sluice_ingester::router(
            Arc::clone(&ingester),
            shutdown.clone(),
        ));
        pusher_channel = Some(sluice_proto::in_process(
            service.pusher_server(usize::MAX, usize::MAX),
        ));
        ingester_channel = Some(sluice_proto::in_process(
            service.querier_server(usize::MAX, usize::MAX),
        ));
        grpc_server = Some(
            tonic::transport::Server::builder()
                .add_service(service.pusher_server(max_recv, max_send))
                .add_service(service.querier_server(max_recv, max_send)),
        );
        ingester_task = Some(tokio::spawn(Arc::clone(&ingester).run(shutdown.clone())));
    }
    if targets.has(Module::Distributor) {
        let channel = pusher_channel
            .clone()
            .context("the distributor needs an ingester in this process")?;
        let distributor = Distributor::new(
            config.distributor.clone(),
            config.limits_config.clone(),
            config.auth_enabled,
            channel,
            &mut registry,
        );
        http_routes = http_routes.merge(distributor.router());
    }
    let compactor = if targets.has(Module::Compactor) {
        let module = CompactorModule::start(
            &config,
            &store,
            &path_prefix,
            writer_id(grpc_addr.port()),
            &mut registry,
            shutdown.clone(),
        )
        .await?;
        http_routes = http_routes.merge(module.routes(&config));
        Some(module)
    } else {
        None
    };
    if targets.has(Module::Querier) {
        let cache_dir = if config
            .storage_config
            .index_shipper
            .cache_location
            .is_empty()
        {
            path_prefix.join("index_cache")
        } else {
            PathBuf::from(&config.storage_config.index_shipper.cache_location)
        };
        let index = Arc::new(IndexCache::new(
            Arc::clone(&store),
            cache_dir,
            config.storage_config.index_shipper.resync_interval,
        ));
        let querier = Querier::new(
            config.querier.clone(),
            config.limits_config.clone(),
            config.auth_enabled,
            ingester_channel.clone(),
            Some(index),
        );
        if let Some(filters) =
            compactor_module::delete_filters(&config, &store, &path_prefix, compactor.as_ref())?
        {
            querier.hide_deleted_lines(filters);
        }
        http_routes = http_routes.merge(querier.router());
    }
    if grpc_server.is_none() {
        // Keep the gRPC port answering (health of the process) even when no
        // gRPC service runs here.
        grpc_server =
            Some(tonic::transport::Server::builder().add_routes(tonic::service::Routes::default()));
    }

    let ops_state = OpsState {
        readiness: readiness.clone(),
        registry: RegistryHandle::new(registry),
        config: Arc::clone(&config),
    };
    let app =
        http_routes
            .merge(ops::router(ops_state))
            .layer(axum::middleware::from_fn_with_state(
                request_metrics,
                http_metrics::track,
            ));

    let http_task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            axum::serve(http_listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        }
    });
    let grpc_task = grpc_server.map(|server| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            server
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                    shutdown.cancelled_owned(),
                )
                .await
        })
    });
    for module in targets.modules() {
        readiness.set_ready(module.name());
    }
    tracing::info!(%http_addr, %grpc_addr, target = %config.target, "sluice started");

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    for module in targets.modules() {
        readiness.set_not_ready(module.name());
    }
    let grace = config.server.graceful_shutdown_timeout;
    wait_for("HTTP server", http_task, grace).await;
    if let Some(task) = grpc_task {
        wait_for("gRPC server", task, grace).await;
    }
    if let Some(module) = compactor {
        module.stopped().await;
    }
    if let Some(task) = ingester_task {
        // The ingester flushes on shutdown; its own flush_op_timeout bounds it.
        if let Err(err) = task.await {
            tracing::error!(error = %err, "ingester task failed");
        }
    }
    tracing::info!("sluice stopped");
    Ok(())
}

/// Waits for a server task to drain, at most `grace`.
async fn wait_for<E: std::fmt::Display>(
    name: &str,
    task: tokio::task::JoinHandle<Result<(), E>>,
    grace: Duration,
) {
    match tokio::time::timeout(grace, task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => tracing::error!(server = name, error = %err, "server failed"),
        Ok(Err(join_error)) => {
            tracing::error!(server = name, error = %join_error, "server task panicked")
        }
        Err(_) => tracing::warn!(server = name, "graceful shutdown timed out"),
    }
}

/// Returns a name for index files unique to this ingester: host name and
/// gRPC port, reduced to the characters index file names allow.
fn writer_id(grpc_port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_else(|| "ingester".to_string());
    let cleaned: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!("{cleaned}_{grpc_port}")
}
