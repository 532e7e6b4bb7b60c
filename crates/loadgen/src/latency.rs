//! Request latency recording and percentile summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Slowest latency kept exactly; slower requests are clamped to it.
const MAX_MICROS: u64 = 10 * 60 * 1_000_000;

/// Latencies in microseconds with 3 significant digits (hdrhistogram), so
/// percentiles are within 0.1% of the true value.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty recorder covering 1 µs to 10 minutes.
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    /// Records one request.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_MICROS)
            .clamp(1, MAX_MICROS);
        self.histogram.saturating_record(micros);
    }

    /// Adds another recorder's samples (one per worker, merged at the end).
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms share bounds");
    }

    /// How many requests were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The usual percentiles, in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if self.histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.histogram.len(),
            mean_ms: self.histogram.mean() / 1000.0,
            p50_ms: ms(self.histogram.value_at_quantile(0.50)),
            p90_ms: ms(self.histogram.value_at_quantile(0.90)),
            p99_ms: ms(self.histogram.value_at_quantile(0.99)),
            p999_ms: ms(self.histogram.value_at_quantile(0.999)),
            max_ms: ms(self.histogram.max()),
        }
    }
}

/// Percentiles of a [`Latencies`], in milliseconds (0 when empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Requests recorded.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms (mean {:.2} ms, n={})",
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms,
            self.mean_ms,
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut latencies = Latencies::new();
        for ms in 1..=1000 {
            latencies.record(Duration::from_millis(ms));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 1000);
        assert!(close(summary.p50_ms, 500.0), "{summary}");
        assert!(close(summary.p90_ms, 900.0), "{summary}");
        assert!(close(summary.p99_ms, 990.0), "{summary}");
        assert!(close(summary.p999_ms, 999.0), "{summary}");
        assert!(close(summary.max_ms, 1000.0), "{summary}");
        assert!(close(summary.mean_ms, 500.5), "{summary}");
    }

    #[test]
    fn a_slow_tail_shows_in_the_high_percentiles_only() {
        let mut fast = Latencies::new();
        for _ in 0..990 {
            fast.record(Duration::from_micros(2_000));
        }
        let mut slow = Latencies::new();
        for _ in 0..10 {
            slow.record(Duration::from_secs(3));
        }
        fast.merge(&slow);
        let summary = fast.summary();
        assert_eq!(summary.count, 1000);
        assert!(
            close(summary.p50_ms, 2.0) && close(summary.p99_ms, 2.0),
            "{summary}"
        );
        assert!(close(summary.p999_ms, 3000.0), "{summary}");
        assert!(close(summary.max_ms, 3000.0), "{summary}");
    }

    #[test]
    fn empty_and_out_of_range_values() {
        assert_eq!(Latencies::new().summary(), LatencySummary::default());
        let mut latencies = Latencies::new();
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(3600));
        let summary = latencies.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.p50_ms <= 0.002, "{summary}");
        assert!(close(summary.max_ms, 600_000.0), "{summary}");
    }
}
