//! Wires the selected modules into one process: builds them, serves HTTP
//! and gRPC, reports readiness, and shuts down in order on cancellation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use prometheus_client::registry::Registry;
use sluice_cache::{Cache, CacheMetrics};
use sluice_common::http_metrics::{self, HttpMetrics};
use sluice_common::readiness::Readiness;
use sluice_common::{DiscardMetrics, Overrides};
use sluice_distributor::{Distributor, DistributorDeps};
use sluice_ingester::service::IngesterService;
use sluice_ingester::{Ingester, IngesterDeps, IngesterLimits};
use sluice_ingester_client::{Ingesters, LocalIngester};
use sluice_querier::frontend::{spawn_workers, Frontend};
use sluice_querier::Querier;
use sluice_ring::{
    AnyKv, Lifecycler, MemberState, RingConfig, DISTRIBUTOR_RING_KEY, INGESTER_RING_KEY,
};
use sluice_storage::{ChunkStore, IndexCache};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::compactor_module::{self, CompactorModule};
use crate::config::Config;
use crate::ops::{self, OpsState};
use crate::ring_page::{self, RingPage};
use crate::ring_setup::{self, HealthyMembers};
use crate::ruler_module::RulerModule;
use crate::self_metrics;
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
    self_metrics::register_process_metrics(&mut registry);
    let request_metrics = HttpMetrics::new(&mut registry);
    // One set of discard counters, shared by distributor and ingester.
    let discards = DiscardMetrics::new(&mut registry);
    let overrides = Overrides::load(config.limits_config.clone(), &config.runtime_config)
        .await
        .context("runtime_config")?;
    overrides.register_metrics(&mut registry);

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
    let cache_metrics = CacheMetrics::new(&mut registry);
    let store = Arc::new(
        ChunkStore::new(&config.storage_config, &config.schema_config, &path_prefix)
            .context("configuring object storage")?
            .with_chunk_cache(Cache::from_config(
                "chunks",
                &config.chunk_store_config.chunk_cache_config,
                &cache_metrics,
            )),
    );
    tracing::info!(backends = %store.describe(), "object storage ready");
    if config
        .storage_config
        .index_queries_cache_config
        .is_configured()
    {
        tracing::warn!(
            "storage_config.index_queries_cache_config is not used: queriers answer index \
             lookups from the index files they download, faster than a cache round trip"
        );
    }

    let ring_config = ring_setup::resolve(&config.common.ring, grpc_addr);
    if targets.uses_ring() {
        ring_config.validate().context("common.ring")?;
    }
    let kv = AnyKv::from_config(&ring_config.kvstore).context("common.ring.kvstore")?;
    let stop_servers = CancellationToken::new();
    let mut background = Vec::new();
    background.push(tokio::spawn(
        Arc::clone(&overrides).run_reloads(stop_servers.clone()),
    ));

    let mut http_routes = Router::new();
    let mut grpc_routes = tonic::service::RoutesBuilder::default();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    grpc_routes.add_service(health_service.clone());
    let mut ingester_task = None;
    let mut ingester_lifecycler = None;
    let mut local_ingester = None;
    if targets.has(Module::Ingester) {
        let wal_dir = if config.ingester.wal.dir.is_empty() {
            path_prefix.join("wal")
        } else {
            PathBuf::from(&config.ingester.wal.dir)
        };
        // Join as JOINING first so the ring shows the instance while its
        // WAL replays; ACTIVE (taking writes) only once replay is done.
        let lifecycler = Arc::new(
            Lifecycler::new(kv.clone(), INGESTER_RING_KEY, ring_config.clone())
                .context("common.ring")?,
        );
        // A failed join is retried by the heartbeat loop.
        let _ = lifecycler.start().await;
        let deps = IngesterDeps {
            store: Some(Arc::clone(&store)),
            wal_dir,
            writer_id: writer_id(grpc_addr.port()),
            limits: IngesterLimits {
                overrides: Arc::clone(&overrides),
                ingesters: Arc::new(HealthyMembers::new(
                    lifecycler.subscribe(),
                    ring_config.heartbeat_timeout,
                )),
                replication_factor: ring_config.replication_factor,
                discards: discards.clone(),
            },
        };
        let ingester = Ingester::open(config.ingester.clone(), deps, &mut registry)
            .await
            .context("starting the ingester")?;
        if let Err(error) = lifecycler.set_state(MemberState::Active).await {
            tracing::warn!(%error, "cannot write ACTIVE to the ring yet; the next heartbeat will");
        }
        let service = IngesterService::new(Arc::clone(&ingester));
        http_routes = http_routes.merge(sluice_ingester::router(
            Arc::clone(&ingester),
            shutdown.clone(),
        ));
        local_ingester = Some(LocalIngester {
            addr: ring_config.instance_addr.clone(),
            channel: sluice_proto::in_process(
                tonic::service::Routes::new(service.pusher_server(usize::MAX, usize::MAX))
                    .add_service(service.querier_server(usize::MAX, usize::MAX))
                    .add_service(health_service)
                    .prepare(),
            ),
        });
        grpc_routes
            .add_service(service.pusher_server(max_recv, max_send))
            .add_service(service.querier_server(max_recv, max_send));
        ingester_task = Some(tokio::spawn(Arc::clone(&ingester).run(shutdown.clone())));
        ingester_lifecycler = Some(lifecycler);
    }
    let ingester_ring = if targets.uses_ring() {
        let watcher = ring_setup::watch(&kv, INGESTER_RING_KEY, &ring_config).await;
        self_metrics::register_ring_members(
            &mut registry,
            "ingester",
            watcher.subscribe(),
            ring_config.heartbeat_timeout,
        );
        http_routes = http_routes.merge(ring_page::router(
            RingPage {
                title: "Ingester ring",
                kv: kv.clone(),
                key: INGESTER_RING_KEY,
                watcher: Arc::clone(&watcher),
                heartbeat_timeout: ring_config.heartbeat_timeout,
            },
            &["/ring", "/ingester/ring"],
        ));
        Some(watcher)
    } else {
        None
    };
    let ingesters_for = |prefix: &str, registry: &mut Registry| {
        ingester_ring.as_ref().map(|watcher| {
            let ingesters = Ingesters::new(
                watcher.subscribe(),
                ring_config.replication_factor,
                ring_config.heartbeat_timeout,
                config.ingester_client.clone(),
                local_ingester.clone(),
                prefix,
                registry,
            );
            let maintenance =
                tokio::spawn(Arc::clone(&ingesters).run_pool_maintenance(stop_servers.clone()));
            (ingesters, maintenance)
        })
    };
    let mut distributor_lifecycler = None;
    if targets.has(Module::Distributor) {
        let (ingesters, maintenance) = ingesters_for("loki_distributor", &mut registry)
            .context("the distributor needs the ingester ring")?;
        background.push(maintenance);
        // Distributors register in their own ring (one token each) so that
        // limits shared among them know how many there are.
        let member = RingConfig {
            num_tokens: 1,
            ..ring_config.clone()
        };
        let lifecycler = Arc::new(
            Lifecycler::new(kv.clone(), DISTRIBUTOR_RING_KEY, member).context("common.ring")?,
        );
        let _ = lifecycler.start().await;
        if let Err(error) = lifecycler.set_state(MemberState::Active).await {
            tracing::warn!(%error, "cannot write ACTIVE to the distributor ring yet");
        }
        let distributor = Distributor::new(
            config.distributor.clone(),
            config.auth_enabled,
            DistributorDeps {
                overrides: Arc::clone(&overrides),
                ingesters,
                distributors: Arc::new(HealthyMembers::new(
                    lifecycler.subscribe(),
                    ring_config.heartbeat_timeout,
                )),
                discards: discards.clone(),
            },
            &mut registry,
        );
        http_routes = http_routes.merge(distributor.router());
        let watcher = ring_setup::watch(&kv, DISTRIBUTOR_RING_KEY, &ring_config).await;
        http_routes = http_routes.merge(ring_page::router(
            RingPage {
                title: "Distributor ring",
                kv: kv.clone(),
                key: DISTRIBUTOR_RING_KEY,
                watcher,
                heartbeat_timeout: ring_config.heartbeat_timeout,
            },
            &["/distributor/ring"],
        ));
        distributor_lifecycler = Some(lifecycler);
    }
    let compactor = if targets.has(Module::Compactor) {
        let module = CompactorModule::start(
            &config,
            &store,
            &path_prefix,
            writer_id(grpc_addr.port()),
            &overrides,
            &mut registry,
            shutdown.clone(),
        )
        .await?;
        http_routes = http_routes.merge(module.routes(&config));
        Some(module)
    } else {
        None
    };
    let mut querier_router = None;
    let mut rule_querier = None;
    if targets.has(Module::Querier) || targets.has(Module::Ruler) {
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
        let ingesters = match ingesters_for("loki_querier", &mut registry) {
            Some((ingesters, maintenance)) => {
                background.push(maintenance);
                Some(ingesters)
            }
            None => None,
        };
        let querier = Querier::new(
            config.querier.clone(),
            Arc::clone(&overrides),
            config.auth_enabled,
            ingesters,
            Some(index),
        );
        if let Some(filters) = compactor_module::delete_filters(
            &config,
            &store,
            &path_prefix,
            compactor.as_ref(),
            &overrides,
        )? {
            querier.hide_deleted_lines(filters);
        }
        querier.register_metrics(&mut registry);
        rule_querier = Some(Arc::clone(&querier));
        if targets.has(Module::Querier) {
            querier_router = Some((querier.router(), querier.tail_router()));
        }
    }
    let ruler = if targets.has(Module::Ruler) {
        let module = RulerModule::start(
            &config,
            rule_querier,
            &kv,
            http_addr,
            &path_prefix,
            &mut registry,
            shutdown.clone(),
        )
        .await?;
        http_routes = http_routes.merge(module.routes());
        Some(module)
    } else {
        None
    };
    let mut frontend_channel = None;
    if targets.has(Module::QueryFrontend) {
        let frontend = Frontend::new(
            config.frontend.clone(),
            config.query_range.clone(),
            Arc::clone(&overrides),
            config.auth_enabled,
            &cache_metrics,
            &mut registry,
        );
        http_routes = http_routes.merge(frontend.router());
        grpc_routes.add_service(frontend.grpc_server(max_recv, max_send));
        frontend_channel = Some(sluice_proto::in_process(
            frontend.grpc_server(usize::MAX, usize::MAX),
        ));
    }
    if let Some((router, tail_router)) = querier_router {
        // With a frontend in this process, the frontend owns the query
        // routes (but live tail, which the querier serves itself) and this
        // querier works for it; otherwise the querier serves them itself
        // and may also work for a remote frontend.
        let channel = match frontend_channel {
            Some(channel) => {
                http_routes = http_routes.merge(tail_router);
                Some(channel)
            }
            None => {
                http_routes = http_routes.merge(router.clone());
                frontend_worker_channel(&config.frontend_worker.frontend_address)?
            }
        };
        if let Some(channel) = channel {
            background.extend(spawn_workers(
                channel,
                router,
                config.querier.max_concurrent,
                ring_config.instance_id.clone(),
                stop_servers.clone(),
            ));
        }
    }
    let grpc_server = tonic::transport::Server::builder()
        .layer(sluice_proto::trace_context::GrpcTraceLayer)
        .add_routes(grpc_routes.routes());

    let ops_state = OpsState {
        readiness: readiness.clone(),
        registry: RegistryHandle::new(registry),
        config: Arc::clone(&config),
        overrides: Arc::clone(&overrides),
    };
    let app = http_routes
        .merge(ops::router(ops_state))
        .layer(axum::middleware::from_fn_with_state(
            request_metrics,
            http_metrics::track,
        ))
        .layer(axum::middleware::from_fn(
            sluice_common::telemetry::trace_http,
        ));

    let http_task = tokio::spawn(sluice_common::http_server::serve(
        http_listener,
        app,
        config.server.http_timeouts(),
        stop_servers.clone(),
    ));
    let grpc_task = tokio::spawn({
        let stop = stop_servers.clone();
        async move {
            grpc_server
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
                    stop.cancelled_owned(),
                )
                .await
        }
    });
    for module in targets.modules() {
        readiness.set_ready(module.name());
    }
    tracing::info!(
        %http_addr,
        %grpc_addr,
        target = %config.target,
        instance = %ring_config.instance_id,
        instance_addr = %ring_config.instance_addr,
        "sluice started"
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    for module in targets.modules() {
        readiness.set_not_ready(module.name());
    }
    if let Some(lifecycler) = &distributor_lifecycler {
        if let Err(error) = lifecycler.leave().await {
            tracing::warn!(%error, "cannot remove this distributor from the ring");
        }
    }
    if let Some(module) = ruler {
        module.stopped().await;
    }
    if let Some(module) = compactor {
        module.stopped().await;
    }
    if let Some(task) = ingester_task {
        // LEAVING: distributors stop writing here, queriers still read
        // while the ingester flushes (its flush_op_timeout bounds that);
        // then the instance leaves the ring. The servers keep running
        // meanwhile so in-flight reads finish.
        if let Some(lifecycler) = &ingester_lifecycler {
            if let Err(error) = lifecycler.set_state(MemberState::Leaving).await {
                tracing::warn!(%error, "cannot write LEAVING to the ring");
            }
        }
        if let Err(err) = task.await {
            tracing::error!(error = %err, "ingester task failed");
        }
        if let Some(lifecycler) = &ingester_lifecycler {
            if let Err(error) = lifecycler.leave().await {
                tracing::warn!(%error, "cannot remove this ingester from the ring");
            }
        }
    }
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    stop_servers.cancel();
    let grace = config.server.graceful_shutdown_timeout;
    wait_for("HTTP server", http_task, grace).await;
    wait_for("gRPC server", grpc_task, grace).await;
    for task in background {
        task.abort();
    }
    tracing::info!("sluice stopped");
    Ok(())
}

/// A lazily connecting channel to the frontend at `address` (`host:port`),
/// or `None` when no address is set.
fn frontend_worker_channel(address: &str) -> anyhow::Result<Option<sluice_proto::GrpcChannel>> {
    let address = address.trim();
    if address.is_empty() {
        return Ok(None);
    }
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .with_context(|| format!("frontend_worker.frontend_address {address:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    Ok(Some(sluice_proto::from_tonic(endpoint.connect_lazy())))
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
