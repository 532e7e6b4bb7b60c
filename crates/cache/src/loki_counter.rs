//! A counter exposed under its exact name. Loki's cache counters
//! (`loki_cache_hits`, `loki_cache_fetched_keys`) carry no `_total`
//! suffix, and dashboards query them by that name; prometheus-client
//! appends `_total` to every counter, so these are encoded as untyped
//! samples (OpenMetrics `unknown`) holding a monotonic count.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A monotonic counter whose samples keep the registered name.
#[derive(Debug, Clone, Default)]
pub(crate) struct UnsuffixedCounter(Counter);

impl UnsuffixedCounter {
    pub(crate) fn inc_by(&self, value: u64) {
        self.0.inc_by(value);
    }

    #[cfg(test)]
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
    }
}

impl TypedMetric for UnsuffixedCounter {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for UnsuffixedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.get())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn keeps_the_name_without_total() {
        let mut registry = Registry::default();
        let family = Family::<Vec<(String, String)>, UnsuffixedCounter>::default();
        registry.register("loki_cache_hits", "Hits.", family.clone());
        family
            .get_or_create(&vec![("name".to_string(), "chunks".to_string())])
            .inc_by(3);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE loki_cache_hits unknown"), "{text}");
        assert!(
            text.contains("loki_cache_hits{name=\"chunks\"} 3"),
            "{text}"
        );
        assert!(!text.contains("_total"), "{text}");
        assert_eq!(
            family
                .get_or_create(&vec![("name".to_string(), "chunks".to_string())])
                .get(),
            3
        );
    }
}
