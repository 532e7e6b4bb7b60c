//! The ingester core: tenants' instances and the operations the gRPC
//! services expose. Free of tonic so it is testable directly.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use sluice_common::TenantId;
use sluice_proto::logproto::{
    LabelRequest, LabelResponse, PushRequest, QueryRequest, QueryResponse, SeriesRequest,
    SeriesResponse,
};

use crate::config::IngesterConfig;
use crate::error::IngesterError;
use crate::instance::Instance;
use crate::metrics::IngesterMetrics;
use crate::query;

/// Holds every tenant's in-memory streams.
#[derive(Debug)]
pub struct Ingester {
    config: IngesterConfig,
    instances: RwLock<HashMap<TenantId, Arc<Instance>>>,
    metrics: IngesterMetrics,
}

impl Ingester {
    /// Creates an ingester and registers its metrics.
    pub fn new(config: IngesterConfig, registry: &mut Registry) -> Arc<Ingester> {
        Arc::new(Ingester {
            config,
            instances: RwLock::new(HashMap::new()),
            metrics: IngesterMetrics::new(registry),
        })
    }

    fn instance(&self, tenant: &TenantId) -> Arc<Instance> {
        if let Some(instance) = self.instances.read().get(tenant) {
            return Arc::clone(instance);
        }
        Arc::clone(
            self.instances
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Instance::new(tenant.clone()))),
        )
    }

    fn existing_instance(&self, tenant: &TenantId) -> Option<Arc<Instance>> {
        self.instances.read().get(tenant).cloned()
    }

    /// Appends a push to the tenant's streams.
    pub fn push(&self, tenant: &TenantId, request: &PushRequest) -> Result<(), IngesterError> {
        self.instance(tenant)
            .push(request, &self.config, &self.metrics)
    }

    /// Runs a log query, handing batches to `emit` until it returns false.
    pub fn query(
        &self,
        tenant: &TenantId,
        request: &QueryRequest,
        emit: impl FnMut(QueryResponse) -> bool,
    ) -> Result<(), IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::query(&instance, request, emit),
            // Still validate the query so a bad one fails the same way.
            None => query::parse_log_query(&request.selector).map(|_| ()),
        }
    }

    /// Answers a label names or label values request.
    pub fn label(
        &self,
        tenant: &TenantId,
        request: &LabelRequest,
    ) -> Result<LabelResponse, IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::label(&instance, request),
            None => Ok(LabelResponse::default()),
        }
    }

    /// Answers a series request.
    pub fn series(
        &self,
        tenant: &TenantId,
        request: &SeriesRequest,
    ) -> Result<SeriesResponse, IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::series(&instance, request),
            None => Ok(SeriesResponse::default()),
        }
    }
}
