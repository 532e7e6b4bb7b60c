//! Why data was refused, and Loki's counters of it:
//! `loki_discarded_samples_total` and `loki_discarded_bytes_total`, both by
//! `reason` and `tenant`. One [`DiscardMetrics`] is registered per process
//! and shared by the distributor and the ingester, as Loki's are global.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Why entries were dropped; the values are Loki's `reason` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiscardReason {
    /// The stream's labels do not parse.
    InvalidLabels,
    /// The stream has no labels.
    MissingLabels,
    /// More label names than `max_label_names_per_series`.
    MaxLabelNamesPerSeries,
    /// A label name longer than `max_label_name_length`.
    LabelNameTooLong,
    /// A label value longer than `max_label_value_length`.
    LabelValueTooLong,
    /// The same label name twice.
    DuplicateLabelNames,
    /// Older than `reject_old_samples_max_age`.
    GreaterThanMaxSampleAge,
    /// Newer than now + `creation_grace_period`.
    TooFarInFuture,
    /// Longer than `max_line_size`.
    LineTooLong,
    /// Over the tenant's ingestion rate.
    RateLimited,
    /// A new stream over the tenant's stream limit.
    StreamLimit,
    /// Over the stream's rate limit.
    PerStreamRateLimit,
    /// Older than the stream's newest entry with `unordered_writes: false`.
    OutOfOrder,
    /// Older than the stream's newest entry minus half `max_chunk_age`.
    TooFarBehind,
}

impl DiscardReason {
    /// Every reason, for docs and tests.
    pub const ALL: [DiscardReason; 14] = [
        DiscardReason::InvalidLabels,
        DiscardReason::MissingLabels,
        DiscardReason::MaxLabelNamesPerSeries,
        DiscardReason::LabelNameTooLong,
        DiscardReason::LabelValueTooLong,
        DiscardReason::DuplicateLabelNames,
        DiscardReason::GreaterThanMaxSampleAge,
        DiscardReason::TooFarInFuture,
        DiscardReason::LineTooLong,
        DiscardReason::RateLimited,
        DiscardReason::StreamLimit,
        DiscardReason::PerStreamRateLimit,
        DiscardReason::OutOfOrder,
        DiscardReason::TooFarBehind,
    ];

    /// Returns Loki's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::InvalidLabels => "invalid_labels",
            DiscardReason::MissingLabels => "missing_labels",
            DiscardReason::MaxLabelNamesPerSeries => "max_label_names_per_series",
            DiscardReason::LabelNameTooLong => "label_name_too_long",
            DiscardReason::LabelValueTooLong => "label_value_too_long",
            DiscardReason::DuplicateLabelNames => "duplicate_label_names",
            DiscardReason::GreaterThanMaxSampleAge => "greater_than_max_sample_age",
            DiscardReason::TooFarInFuture => "too_far_in_future",
            DiscardReason::LineTooLong => "line_too_long",
            DiscardReason::RateLimited => "rate_limited",
            DiscardReason::StreamLimit => "stream_limit",
            DiscardReason::PerStreamRateLimit => "per_stream_rate_limit",
            DiscardReason::OutOfOrder => "out_of_order",
            DiscardReason::TooFarBehind => "too_far_behind",
        }
    }
}

/// Labels of the discard counters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DiscardLabels {
    reason: &'static str,
    tenant: String,
}

/// The two discard counters (cheap to clone; clones share the counts).
#[derive(Debug, Clone, Default)]
pub struct DiscardMetrics {
    samples: Family<DiscardLabels, Counter>,
    bytes: Family<DiscardLabels, Counter>,
}

impl DiscardMetrics {
    /// Creates the counters and registers them.
    pub fn new(registry: &mut Registry) -> DiscardMetrics {
        let metrics = DiscardMetrics::default();
        registry.register(
            "loki_discarded_samples",
            "The total number of samples that were discarded.",
            metrics.samples.clone(),
        );
        registry.register(
            "loki_discarded_bytes",
            "The total number of bytes that were discarded.",
            metrics.bytes.clone(),
        );
        metrics
    }

    /// Counts `lines` entries totalling `bytes` line bytes dropped for
    /// `reason`.
    pub fn record(&self, reason: DiscardReason, tenant: &str, lines: u64, bytes: u64) {
        if lines == 0 && bytes == 0 {
            return;
        }
        let labels = DiscardLabels {
            reason: reason.as_str(),
            tenant: tenant.to_string(),
        };
        self.samples.get_or_create(&labels).inc_by(lines);
        self.bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// Returns the samples counted so far for `reason` and `tenant`.
    #[cfg(test)]
    fn samples(&self, reason: DiscardReason, tenant: &str) -> u64 {
        self.samples
            .get_or_create(&DiscardLabels {
                reason: reason.as_str(),
                tenant: tenant.to_string(),
            })
            .get()
    }

    /// Returns the bytes counted so far for `reason` and `tenant`.
    #[cfg(test)]
    fn bytes(&self, reason: DiscardReason, tenant: &str) -> u64 {
        self.bytes
            .get_or_create(&DiscardLabels {
                reason: reason.as_str(),
                tenant: tenant.to_string(),
            })
            .get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_tenant() {
        let mut registry = Registry::default();
        let metrics = DiscardMetrics::new(&mut registry);
        metrics.record(DiscardReason::LineTooLong, "a", 2, 300);
        metrics.record(DiscardReason::LineTooLong, "a", 1, 100);
        metrics.record(DiscardReason::RateLimited, "b", 5, 50);
        assert_eq!(metrics.samples(DiscardReason::LineTooLong, "a"), 3);
        assert_eq!(metrics.bytes(DiscardReason::LineTooLong, "a"), 400);
        assert_eq!(metrics.samples(DiscardReason::LineTooLong, "b"), 0);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("loki_discarded_samples_total{reason=\"rate_limited\",tenant=\"b\"} 5")
        );
        assert!(
            text.contains("loki_discarded_bytes_total{reason=\"line_too_long\",tenant=\"a\"} 400")
        );
    }

    #[test]
    fn reason_names_are_unique() {
        let names: std::collections::HashSet<_> = DiscardReason::ALL
            .iter()
            .map(|reason| reason.as_str())
            .collect();
        assert_eq!(names.len(), DiscardReason::ALL.len());
    }
}
