//! The distributor core: decode, validate, rate-limit, count, forward.

use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use prometheus_client::registry::Registry;
use sluice_common::overrides::InstanceCount;
use sluice_common::{stage_span, DiscardMetrics, DiscardReason, Overrides, TenantId};
use sluice_ingester_client::Ingesters;
use tracing::Instrument;

use crate::config::DistributorConfig;
use crate::decode::{decode_push, JsonShape};
use crate::error::PushError;
use crate::metrics::{BytesLabels, DistributorMetrics, TenantLabel};
use crate::rate_limit::{IngestionLimiter, Refusal};
use crate::validate::validate;

/// What a distributor works with besides its config.
#[derive(Debug)]
pub struct DistributorDeps {
    /// Each tenant's limits.
    pub overrides: Arc<Overrides>,
    /// The ingesters, on their ring.
    pub ingesters: Arc<Ingesters>,
    /// How many healthy distributors share a `global` ingestion rate.
    pub distributors: Arc<dyn InstanceCount>,
    /// The process's discard counters (shared with the ingester).
    pub discards: DiscardMetrics,
}

/// Accepts pushes and replicates them to the ingesters over gRPC.
#[derive(Debug)]
pub struct Distributor {
    config: DistributorConfig,
    overrides: Arc<Overrides>,
    auth_enabled: bool,
    ingesters: Arc<Ingesters>,
    limiter: IngestionLimiter,
    metrics: DistributorMetrics,
    discards: DiscardMetrics,
}

impl Distributor {
    /// Creates a distributor pushing to the ingesters of `deps.ingesters`'
    /// ring and registers its metrics.
    pub fn new(
        config: DistributorConfig,
        auth_enabled: bool,
        deps: DistributorDeps,
        registry: &mut Registry,
    ) -> Arc<Distributor> {
        Arc::new(Distributor {
            limiter: IngestionLimiter::new(&config, deps.distributors),
            config,
            overrides: deps.overrides,
            auth_enabled,
            ingesters: deps.ingesters,
            metrics: DistributorMetrics::new(registry),
            discards: deps.discards,
        })
    }

    /// Returns the HTTP routes of the push API.
    pub fn router(self: &Arc<Distributor>) -> axum::Router {
        crate::http::router(Arc::clone(self))
    }

    pub(crate) fn max_body_size(&self) -> usize {
        self.config.max_recv_msg_size
    }

    pub(crate) fn auth_enabled(&self) -> bool {
        self.auth_enabled
    }

    /// Handles one push body: everything valid is stored; the reply carries
    /// the last validation error if any (Loki's partial success). A push
    /// over the tenant's rate is refused whole (429).
    pub(crate) async fn push(
        &self,
        tenant: &TenantId,
        headers: &http::HeaderMap,
        body: &[u8],
        shape: JsonShape,
    ) -> Result<(), PushError> {
        let validation = stage_span!(
            "distributor.validate",
            tenant = %tenant,
            body_bytes = body.len(),
            streams = tracing::field::Empty,
            lines = tracing::field::Empty,
            bytes = tracing::field::Empty,
        );
        let validated = validation.in_scope(|| {
            let request = decode_push(headers, body, shape, self.config.max_recv_msg_size)?;
            let limits = self.overrides.limits(tenant.as_str());
            let validated = validate(request, &limits, sluice_common::time::now_nanos());
            validation.record("streams", validated.request.streams.len());
            validation.record("lines", validated.lines);
            validation.record("bytes", validated.bytes);
            Ok::<_, PushError>(validated)
        })?;
        drop(validation);
        let limits = self.overrides.limits(tenant.as_str());
        for (reason, lines, bytes) in &validated.discarded {
            self.discards
                .record(*reason, tenant.as_str(), *lines, *bytes);
        }
        if !validated.request.streams.is_empty() {
            self.observe_lag(tenant, &validated.request);
            let admitted = self.limiter.admit(
                tenant.as_str(),
                &limits,
                self.overrides.defaults().ingestion_rate_strategy,
                validated.lines,
                validated.bytes,
                Instant::now(),
            );
            if let Err(refusal) = admitted {
                self.discards.record(
                    DiscardReason::RateLimited,
                    tenant.as_str(),
                    validated.lines,
                    validated.bytes,
                );
                return Err(PushError::RateLimited(rate_limited_message(
                    tenant,
                    refusal,
                    validated.lines,
                    validated.bytes,
                )));
            }
            self.forward(tenant, validated.request).await?;
            self.metrics
                .lines_received
                .get_or_create(&TenantLabel {
                    tenant: tenant.to_string(),
                })
                .inc_by(validated.lines);
            self.metrics
                .bytes_received
                .get_or_create(&BytesLabels {
                    tenant: tenant.to_string(),
                    retention_hours: "0".to_string(),
                })
                .inc_by(validated.bytes);
        }
        match validated.last_error {
            Some(message) => Err(PushError::Invalid(message)),
            None => Ok(()),
        }
    }

    /// Records how old the push's newest entry is.
    fn observe_lag(&self, tenant: &TenantId, request: &sluice_proto::logproto::PushRequest) {
        let newest = request
            .streams
            .iter()
            .flat_map(|stream| &stream.entries)
            .map(|entry| sluice_proto::timestamp_to_nanos(entry.timestamp.as_ref()))
            .max();
        if let Some(newest) = newest {
            let lag_ns = (sluice_common::time::now_nanos() - newest).max(0);
            self.metrics
                .ingestion_lag
                .get_or_create(&TenantLabel {
                    tenant: tenant.to_string(),
                })
                .observe(lag_ns as f64 / 1e9);
        }
    }

    async fn forward(
        &self,
        tenant: &TenantId,
        request: sluice_proto::logproto::PushRequest,
    ) -> Result<(), PushError> {
        let span = stage_span!(
            "distributor.replicate",
            tenant = %tenant,
            streams = request.streams.len(),
        );
        crate::replicate::replicate(&self.ingesters, &self.metrics, tenant, request)
            .instrument(span)
            .boxed()
            .await
    }
}

/// Loki's 429 text; the line limit is Sluice's, worded the same way.
fn rate_limited_message(tenant: &TenantId, refusal: Refusal, lines: u64, bytes: u64) -> String {
    let (limit, unit) = match refusal {
        Refusal::Bytes(limit) => (limit, "bytes"),
        Refusal::Lines(limit) => (limit, "lines"),
    };
    format!(
        "Ingestion rate limit exceeded for user {tenant} (limit: {} {unit}/sec) while attempting to ingest '{lines}' lines totaling '{bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased",
        limit as i64
    )
}
