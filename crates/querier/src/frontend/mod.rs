//! The query frontend (`-target=query-frontend`): the HTTP query API that
//! Grafana talks to, in front of the queriers. Range queries are split at
//! `split_queries_by_interval` boundaries and the pieces run in parallel
//! on the queriers; metric results are cached per piece; every request
//! waits in a per-tenant fair queue that queriers pull from.
//!
//! Modules: [`config`] (keys), [`queue`] (fair queue), [`split`] (where to
//! cut), [`results`] (decode, merge, write), [`cache`] (results cache),
//! [`transport`] (the worker protocol).

mod cache;
mod config;
mod handler;
mod org;
mod queue;
mod results;
mod ruler_proxy;
mod shard;
mod split;
mod tail_proxy;
mod transport;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use sluice_cache::{Cache, CacheMetrics};
use sluice_common::{stage_span, ErrorCode, HttpError, Overrides};
use sluice_proto::frontend::frontend_server::FrontendServer;
use sluice_proto::frontend::{Header, HttpRequest, HttpResponse};
use tokio::sync::oneshot;
use tracing::Instrument;

pub use config::{FrontendConfig, FrontendWorkerConfig, QueryRangeConfig, ResultsCacheConfig};
pub use transport::spawn_workers;

use queue::{Job, Queue};
use transport::FrontendGrpc;

/// The query frontend.
pub struct Frontend {
    config: FrontendConfig,
    query_range: QueryRangeConfig,
    overrides: Arc<Overrides>,
    auth_enabled: bool,
    queue: Arc<Queue>,
    /// Forwards the rules API to `config.ruler_proxy_url`.
    ruler_client: reqwest::Client,
    results_cache: Option<Cache>,
    split_queries: Counter,
}

impl std::fmt::Debug for Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend").finish_non_exhaustive()
    }
}

impl Frontend {
    /// Builds the frontend and registers its metrics.
    pub fn new(
        config: FrontendConfig,
        query_range: QueryRangeConfig,
        overrides: Arc<Overrides>,
        auth_enabled: bool,
        cache_metrics: &CacheMetrics,
        registry: &mut Registry,
    ) -> Arc<Frontend> {
        let queue = Arc::new(Queue::new(config.max_outstanding_per_tenant, registry));
        let results_cache = if query_range.cache_results {
            Cache::from_config(
                "frontend.results-cache",
                &query_range.results_cache.cache,
                cache_metrics,
            )
        } else {
            None
        };
        let split_queries = Counter::default();
        registry.register(
            "loki_query_frontend_split_queries",
            "Sub-queries the frontend sent to queriers after splitting.",
            split_queries.clone(),
        );
        Arc::new(Frontend {
            config,
            query_range,
            overrides,
            auth_enabled,
            queue,
            ruler_client: reqwest::Client::new(),
            results_cache,
            split_queries,
        })
    }

    /// The HTTP routes Grafana calls.
    pub fn router(self: &Arc<Frontend>) -> axum::Router {
        let router = handler::router(Arc::clone(self));
        if self.config.ruler_proxy_url.is_empty() {
            router
        } else {
            router.merge(ruler_proxy::router(Arc::clone(self)))
        }
    }

    /// The gRPC service queriers pull work from.
    pub fn grpc_server(
        self: &Arc<Frontend>,
        max_recv: usize,
        max_send: usize,
    ) -> FrontendServer<impl sluice_proto::frontend::frontend_server::Frontend> {
        FrontendGrpc {
            queue: Arc::clone(&self.queue),
        }
        .server(max_recv, max_send)
    }

    /// Queues `request` for a querier and waits for its answer, retrying
    /// 5xx answers other than 503 up to `max_retries` times.
    pub(crate) async fn run(
        &self,
        tenant: &str,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let span = stage_span!(
            "frontend.subquery",
            tenant = %tenant,
            url = %request.url,
            status_code = tracing::field::Empty,
        );
        // The querier continues the trace from these headers.
        let mut request = request;
        request.headers.extend(
            sluice_common::telemetry::context_headers(&span)
                .into_iter()
                .map(|(key, value)| Header {
                    key,
                    values: vec![value],
                }),
        );
        let mut attempt = 0;
        loop {
            let (reply, answer) = oneshot::channel();
            self.queue
                .enqueue(Job {
                    tenant: tenant.to_string(),
                    request: request.clone(),
                    reply,
                    enqueued: Instant::now(),
                })
                .map_err(|_| {
                    HttpError::new(ErrorCode::RateLimited, "too many outstanding requests")
                })?;
            let response = answer.instrument(span.clone()).await.map_err(|_| {
                HttpError::new(
                    ErrorCode::Internal,
                    "the query frontend dropped the request",
                )
            })?;
            span.record("status_code", response.code);
            // 503 means a dependency (the store, the ingesters) is down:
            // retrying at once only multiplies the wait for the same answer.
            let retryable = response.code >= 500 && response.code != 503;
            if !retryable || attempt >= self.query_range.max_retries {
                return Ok(response);
            }
            attempt += 1;
            tracing::warn!(%tenant, code = response.code, attempt, "sub-query failed, retrying");
        }
    }
}
