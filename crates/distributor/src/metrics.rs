//! The distributor's metrics, with Loki's names and labels.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct BytesLabels {
    pub(crate) tenant: String,
    pub(crate) retention_hours: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct IngesterLabel {
    pub(crate) ingester: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DistributorMetrics {
    pub(crate) lines_received: Family<TenantLabel, Counter>,
    pub(crate) bytes_received: Family<BytesLabels, Counter>,
    pub(crate) ingester_appends: Family<IngesterLabel, Counter>,
    pub(crate) ingester_append_failures: Family<IngesterLabel, Counter>,
}

impl DistributorMetrics {
    pub(crate) fn new(registry: &mut Registry) -> DistributorMetrics {
        let metrics = DistributorMetrics::default();
        registry.register(
            "loki_distributor_lines_received",
            "The total number of lines received per tenant.",
            metrics.lines_received.clone(),
        );
        registry.register(
            "loki_distributor_bytes_received",
            "The total number of uncompressed bytes received per tenant.",
            metrics.bytes_received.clone(),
        );
        registry.register(
            "loki_distributor_ingester_appends",
            "The total number of batch appends sent to ingesters.",
            metrics.ingester_appends.clone(),
        );
        registry.register(
            "loki_distributor_ingester_append_failures",
            "The total number of failed batch appends sent to ingesters.",
            metrics.ingester_append_failures.clone(),
        );
        metrics
    }
}
