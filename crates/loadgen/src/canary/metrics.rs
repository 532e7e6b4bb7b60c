//! The canary's metrics, with Loki canary's names, so its dashboards and
//! alerts work unchanged.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Prometheus client_golang's default buckets (`DefBuckets`).
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric the canary exports.
#[derive(Debug, Clone)]
pub struct CanaryMetrics {
    /// `loki_canary_entries_total`.
    pub entries: Counter,
    /// `loki_canary_out_of_order_entries_total`.
    pub out_of_order: Counter,
    /// `loki_canary_websocket_missing_entries_total`.
    pub websocket_missing: Counter,
    /// `loki_canary_missing_entries_total`.
    pub missing: Counter,
    /// `loki_canary_spot_check_missing_entries_total`.
    pub spot_check_missing: Counter,
    /// `loki_canary_spot_check_entries_total`.
    pub spot_check_entries: Counter,
    /// `loki_canary_unexpected_entries_total`.
    pub unexpected: Counter,
    /// `loki_canary_duplicate_entries_total`.
    pub duplicate: Counter,
    /// `loki_canary_metric_test_expected`.
    pub metric_test_expected: Gauge<f64, AtomicU64>,
    /// `loki_canary_metric_test_actual`.
    pub metric_test_actual: Gauge<f64, AtomicU64>,
    /// `loki_canary_response_latency_seconds`.
    pub response_latency: Histogram,
    /// `loki_canary_metric_test_request_duration_seconds`.
    pub metric_test_duration: Histogram,
    /// `loki_canary_spot_check_request_duration_seconds`.
    pub spot_check_duration: Histogram,
    /// `loki_canary_ws_reconnects_total`.
    pub ws_reconnects: Counter,
    /// `loki_canary_ws_pings_total`.
    pub ws_pings: Counter,
    /// `loki_canary_push_errors_total` (Sluice addition): pushes that
    /// failed after every retry.
    pub push_errors: Counter,
    /// `loki_canary_outstanding_entries` (Sluice addition): lines written
    /// and neither received nor reported missing yet, as of the scrape.
    pub outstanding: Gauge,
}

impl CanaryMetrics {
    /// Creates the metrics and registers them in `registry`;
    /// `latency_buckets` is the canary's `-buckets` flag.
    pub fn new(registry: &mut Registry, latency_buckets: u16) -> CanaryMetrics {
        let metrics = CanaryMetrics {
            entries: Counter::default(),
            out_of_order: Counter::default(),
            websocket_missing: Counter::default(),
            missing: Counter::default(),
            spot_check_missing: Counter::default(),
            spot_check_entries: Counter::default(),
            unexpected: Counter::default(),
            duplicate: Counter::default(),
            metric_test_expected: Gauge::default(),
            metric_test_actual: Gauge::default(),
            response_latency: Histogram::new(exponential_buckets(0.5, 2.0, latency_buckets)),
            metric_test_duration: Histogram::new(DEFAULT_BUCKETS),
            spot_check_duration: Histogram::new(DEFAULT_BUCKETS),
            ws_reconnects: Counter::default(),
            ws_pings: Counter::default(),
            push_errors: Counter::default(),
            outstanding: Gauge::default(),
        };
        // prometheus-client appends `_total` to counters.
        let counters = [
            ("loki_canary_entries", "counts log entries written", &metrics.entries),
            (
                "loki_canary_out_of_order_entries",
                "counts log entries received with a timestamp more recent than the others in the queue",
                &metrics.out_of_order,
            ),
            (
                "loki_canary_websocket_missing_entries",
                "counts log entries not received within the wait duration via the receive path (websocket or query polling)",
                &metrics.websocket_missing,
            ),
            (
                "loki_canary_missing_entries",
                "counts log entries not received within the max-wait duration via both the receive path and direct query",
                &metrics.missing,
            ),
            (
                "loki_canary_spot_check_missing_entries",
                "counts log entries not received when directly queried as part of spot checking",
                &metrics.spot_check_missing,
            ),
            (
                "loki_canary_spot_check_entries",
                "total count of entries spot checked",
                &metrics.spot_check_entries,
            ),
            (
                "loki_canary_unexpected_entries",
                "counts a log entry received which was not expected (e.g. received after reported missing)",
                &metrics.unexpected,
            ),
            (
                "loki_canary_duplicate_entries",
                "counts a log entry received more than one time",
                &metrics.duplicate,
            ),
            (
                "loki_canary_ws_reconnects",
                "counts every time the websocket connection has to reconnect",
                &metrics.ws_reconnects,
            ),
            (
                "loki_canary_ws_pings",
                "counts every time the websocket receives a ping message",
                &metrics.ws_pings,
            ),
            (
                "loki_canary_push_errors",
                "counts pushes that failed after every retry",
                &metrics.push_errors,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "loki_canary_metric_test_expected",
            "How many counts were expected by the metric test query",
            metrics.metric_test_expected.clone(),
        );
        registry.register(
            "loki_canary_metric_test_actual",
            "How many counts were actually received by the metric test query",
            metrics.metric_test_actual.clone(),
        );
        registry.register(
            "loki_canary_outstanding_entries",
            "log entries written and neither received nor reported missing yet",
            metrics.outstanding.clone(),
        );
        registry.register(
            "loki_canary_response_latency_seconds",
            "is how long it takes for log lines to be returned from Loki in seconds.",
            metrics.response_latency.clone(),
        );
        registry.register(
            "loki_canary_metric_test_request_duration_seconds",
            "how long the metric test query execution took in seconds.",
            metrics.metric_test_duration.clone(),
        );
        registry.register(
            "loki_canary_spot_check_request_duration_seconds",
            "how long the spot check test query execution took in seconds.",
            metrics.spot_check_duration.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_loki_canary_names() {
        let mut registry = Registry::default();
        let metrics = CanaryMetrics::new(&mut registry, 10);
        metrics.entries.inc();
        metrics.response_latency.observe(0.7);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            "loki_canary_entries_total 1",
            "loki_canary_missing_entries_total 0",
            "loki_canary_duplicate_entries_total 0",
            "loki_canary_out_of_order_entries_total 0",
            "loki_canary_websocket_missing_entries_total 0",
            "loki_canary_spot_check_entries_total 0",
            "loki_canary_spot_check_missing_entries_total 0",
            "loki_canary_ws_reconnects_total 0",
            "loki_canary_outstanding_entries 0",
            "loki_canary_response_latency_seconds_count 1",
            "loki_canary_response_latency_seconds_bucket{le=\"1.0\"} 1",
            "loki_canary_response_latency_seconds_bucket{le=\"256.0\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
