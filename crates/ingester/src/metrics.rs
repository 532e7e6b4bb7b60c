//! The ingester's metrics, with Loki's names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A `tenant` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

/// Counters and gauges of one ingester.
#[derive(Debug, Clone, Default)]
pub(crate) struct IngesterMetrics {
    pub(crate) memory_streams: Family<TenantLabel, Gauge>,
    pub(crate) streams_created: Family<TenantLabel, Counter>,
    pub(crate) memory_chunks: Gauge,
    pub(crate) chunks_created: Counter,
}

impl IngesterMetrics {
    pub(crate) fn new(registry: &mut Registry) -> IngesterMetrics {
        let metrics = IngesterMetrics::default();
        registry.register(
            "loki_ingester_memory_streams",
            "The total number of streams in memory per tenant.",
            metrics.memory_streams.clone(),
        );
        registry.register(
            "loki_ingester_streams_created",
            "The total number of streams created per tenant.",
            metrics.streams_created.clone(),
        );
        registry.register(
            "loki_ingester_memory_chunks",
            "The total number of chunks in memory.",
            metrics.memory_chunks.clone(),
        );
        registry.register(
            "loki_ingester_chunks_created",
            "The total number of chunks created in memory.",
            metrics.chunks_created.clone(),
        );
        metrics
    }
}
