//! The distributor core: decode, validate, count, forward.

use std::sync::Arc;

use futures::FutureExt;
use prometheus_client::registry::Registry;
use sluice_common::{LimitsConfig, TenantId};
use sluice_ingester_client::Ingesters;

use crate::config::DistributorConfig;
use crate::decode::{decode_push, JsonShape};
use crate::error::PushError;
use crate::metrics::{BytesLabels, DistributorMetrics, TenantLabel};
use crate::validate::validate;

/// Accepts pushes and replicates them to the ingesters over gRPC.
#[derive(Debug)]
pub struct Distributor {
    config: DistributorConfig,
    limits: LimitsConfig,
    auth_enabled: bool,
    ingesters: Arc<Ingesters>,
    metrics: DistributorMetrics,
}

impl Distributor {
    /// Creates a distributor pushing to the ingesters of `ingesters`' ring
    /// and registers its metrics.
    pub fn new(
        config: DistributorConfig,
        limits: LimitsConfig,
        auth_enabled: bool,
        ingesters: Arc<Ingesters>,
        registry: &mut Registry,
    ) -> Arc<Distributor> {
        Arc::new(Distributor {
            config,
            limits,
            auth_enabled,
            ingesters,
            metrics: DistributorMetrics::new(registry),
        })
    }

    /// Returns the HTTP routes of the push API.
    pub fn router(self: &Arc<Distributor>) -> axum::Router {
        crate::http::router(Arc::clone(self))
    }

    pub(crate) fn max_body_size(&self) -> usize {
        self.config.max_recv_msg_size
    }

    /// Handles one push body: everything valid is stored; the reply carries
    /// the last validation error if any (Loki's partial success).
    pub(crate) async fn push(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        shape: JsonShape,
    ) -> Result<(), PushError> {
        let tenant = TenantId::from_headers(headers, self.auth_enabled)?;
        let request = decode_push(headers, body, shape, self.config.max_recv_msg_size)?;
        let validated = validate(request, &self.limits, sluice_common::time::now_nanos());
        if !validated.request.streams.is_empty() {
            self.forward(&tenant, validated.request).await?;
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

    async fn forward(
        &self,
        tenant: &TenantId,
        request: sluice_proto::logproto::PushRequest,
    ) -> Result<(), PushError> {
        crate::replicate::replicate(&self.ingesters, &self.metrics, tenant, request)
            .boxed()
            .await
    }
}
