//! The distributor's metrics, with Loki's names and labels.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
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

/// Buckets of `loki_distributor_ingestion_lag_seconds`: from promptly
/// shipped (under a second) to a client catching up after an hour.
fn lag_histogram() -> Histogram {
    Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

#[derive(Debug, Clone)]
pub(crate) struct DistributorMetrics {
    pub(crate) lines_received: Family<TenantLabel, Counter>,
    /// Age of each push's newest entry on arrival: how far behind the
    /// clients (promtail) are.
    pub(crate) ingestion_lag: Family<TenantLabel, Histogram, fn() -> Histogram>,
    pub(crate) bytes_received: Family<BytesLabels, Counter>,
    pub(crate) ingester_appends: Family<IngesterLabel, Counter>,
    pub(crate) ingester_append_failures: Family<IngesterLabel, Counter>,
}

impl DistributorMetrics {
    pub(crate) fn new(registry: &mut Registry) -> DistributorMetrics {
        let metrics = DistributorMetrics {
            lines_received: Family::default(),
            ingestion_lag: Family::new_with_constructor(lag_histogram),
            bytes_received: Family::default(),
            ingester_appends: Family::default(),
            ingester_append_failures: Family::default(),
        };
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
            "loki_distributor_ingestion_lag_seconds",
            "Age of the newest entry of each push when the distributor received it, per tenant.",
            metrics.ingestion_lag.clone(),
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
