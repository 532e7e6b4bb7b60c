//! The querier's metrics, with Loki's names.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Live tail metrics (Loki's `loki_querier_tail_*`).
#[derive(Debug, Clone, Default)]
pub(crate) struct TailMetrics {
    /// Open tails.
    pub(crate) active: Gauge,
    /// Distinct streams the open tails have sent entries of.
    pub(crate) active_streams: Gauge,
    /// Line bytes sent to tail clients.
    pub(crate) bytes: Counter,
}

impl TailMetrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "loki_querier_tail_active",
            "Number of active tailers",
            self.active.clone(),
        );
        registry.register(
            "loki_querier_tail_active_streams",
            "Number of active streams being tailed",
            self.active_streams.clone(),
        );
        registry.register(
            "loki_querier_tail_bytes",
            "total bytes tailed",
            self.bytes.clone(),
        );
    }
}
