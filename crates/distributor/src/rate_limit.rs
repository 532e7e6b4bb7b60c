//! The per-tenant ingestion rate limits of one distributor: bytes
//! (`limits_config.ingestion_rate_mb`, burst `ingestion_burst_size_mb`) and
//! lines (`distributor.rate_limit`, burst `rate_limit_burst`). With the
//! `global` strategy a tenant's rate is divided among the healthy
//! distributors of the distributor ring; the burst stays per distributor,
//! as in Loki. A push is charged its valid bytes and lines only if both
//! limits allow it; a refused push takes nothing. A rate of 0 is no limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sluice_common::limits::RateStrategy;
use sluice_common::overrides::InstanceCount;
use sluice_common::token_bucket::TokenBucket;
use sluice_common::LimitsConfig;

use crate::config::DistributorConfig;

/// A tenant's two buckets.
#[derive(Debug)]
struct TenantBuckets {
    bytes: TokenBucket,
    lines: TokenBucket,
}

/// Which limit refused a push, and its per-distributor rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Refusal {
    /// Bytes per second.
    Bytes(f64),
    /// Lines per second.
    Lines(f64),
}

/// The limiter of one distributor.
#[derive(Debug)]
pub(crate) struct IngestionLimiter {
    tenants: Mutex<HashMap<String, TenantBuckets>>,
    distributors: Arc<dyn InstanceCount>,
    line_rate: f64,
    line_burst: f64,
}

impl IngestionLimiter {
    pub(crate) fn new(
        config: &DistributorConfig,
        distributors: Arc<dyn InstanceCount>,
    ) -> IngestionLimiter {
        IngestionLimiter {
            tenants: Mutex::new(HashMap::new()),
            distributors,
            line_rate: config.rate_limit,
            line_burst: config.rate_limit_burst,
        }
    }

    /// Returns how many ways a shared rate is divided.
    fn share(&self, strategy: RateStrategy) -> f64 {
        match strategy {
            RateStrategy::Local => 1.0,
            RateStrategy::Global => self.distributors.healthy_instances().max(1) as f64,
        }
    }

    /// Charges a push of `lines` lines and `bytes` line bytes to `tenant`,
    /// or says which limit refuses it. `strategy` is the process-wide
    /// `ingestion_rate_strategy` (not overridable per tenant).
    pub(crate) fn admit(
        &self,
        tenant: &str,
        limits: &LimitsConfig,
        strategy: RateStrategy,
        lines: u64,
        bytes: u64,
        now: Instant,
    ) -> Result<(), Refusal> {
        let share = self.share(strategy);
        // A rate of 0 means no limit (Go's limiter would refuse everything
        // past the first burst, which nobody configures on purpose).
        let byte_rate = if limits.ingestion_rate_mb > 0.0 {
            limits.ingestion_rate_bytes() / share
        } else {
            f64::INFINITY
        };
        let byte_burst = limits.ingestion_burst_bytes();
        let lines_limited = self.line_rate > 0.0;
        let line_rate = if lines_limited {
            self.line_rate / share
        } else {
            f64::INFINITY
        };
        let line_burst = self.line_burst;
        let mut tenants = self.tenants.lock();
        let buckets = tenants
            .entry(tenant.to_string())
            .or_insert_with(|| TenantBuckets {
                bytes: TokenBucket::new(byte_burst, now),
                lines: TokenBucket::new(line_burst, now),
            });
        if !buckets
            .bytes
            .can_take(bytes as f64, byte_rate, byte_burst, now)
        {
            return Err(Refusal::Bytes(byte_rate));
        }
        if !buckets
            .lines
            .can_take(lines as f64, line_rate, line_burst, now)
        {
            return Err(Refusal::Lines(line_rate));
        }
        buckets.bytes.take(bytes as f64, byte_rate, byte_burst, now);
        buckets.lines.take(lines as f64, line_rate, line_burst, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_common::overrides::FixedCount;

    use super::*;

    fn limits(rate_mb: f64, burst_mb: f64) -> LimitsConfig {
        LimitsConfig {
            ingestion_rate_mb: rate_mb,
            ingestion_burst_size_mb: burst_mb,
            ..LimitsConfig::default()
        }
    }

    fn limiter(distributors: usize, line_rate: f64, line_burst: f64) -> IngestionLimiter {
        IngestionLimiter::new(
            &DistributorConfig {
                rate_limit: line_rate,
                rate_limit_burst: line_burst,
                ..DistributorConfig::default()
            },
            Arc::new(FixedCount(distributors)),
        )
    }

    #[test]
    fn global_rate_is_divided_among_distributors_local_is_not() {
        let start = Instant::now();
        let limits = limits(1.0, 1.0);
        let mib = 1024.0 * 1024.0;
        let limiter = limiter(4, 0.0, 0.0);
        let refused = limiter
            .admit("a", &limits, RateStrategy::Global, 1, 1 << 20, start)
            .and_then(|()| limiter.admit("a", &limits, RateStrategy::Global, 1, 1, start));
        assert_eq!(refused, Err(Refusal::Bytes(mib / 4.0)));
        let later = start + Duration::from_secs(1);
        assert!(limiter
            .admit("a", &limits, RateStrategy::Global, 1, 1 << 18, later)
            .is_ok());
        assert!(limiter
            .admit("a", &limits, RateStrategy::Global, 1, 1, later)
            .is_err());
        let local = self::limiter(4, 0.0, 0.0);
        assert!(local
            .admit("a", &limits, RateStrategy::Local, 1, 1 << 20, start)
            .is_ok());
        assert_eq!(
            local.admit("a", &limits, RateStrategy::Local, 1, 1, start),
            Err(Refusal::Bytes(mib))
        );
    }

    #[test]
    fn zero_rates_are_no_limit() {
        let start = Instant::now();
        let limiter = limiter(1, 0.0, 0.0);
        assert!(limiter
            .admit(
                "a",
                &limits(0.0, 0.0),
                RateStrategy::Global,
                1 << 20,
                1 << 30,
                start
            )
            .is_ok());
    }

    #[test]
    fn tenants_do_not_share_buckets() {
        let start = Instant::now();
        let limits = limits(1.0, 1.0);
        let limiter = limiter(1, 0.0, 0.0);
        assert!(limiter
            .admit("a", &limits, RateStrategy::Global, 1, 1 << 20, start)
            .is_ok());
        assert!(limiter
            .admit("a", &limits, RateStrategy::Global, 1, 1, start)
            .is_err());
        assert!(limiter
            .admit("b", &limits, RateStrategy::Global, 1, 1 << 20, start)
            .is_ok());
    }

    #[test]
    fn line_limit_refuses_without_charging_bytes() {
        let start = Instant::now();
        let limits = limits(1.0, 1.0);
        let limiter = limiter(1, 10.0, 10.0);
        assert_eq!(
            limiter.admit("a", &limits, RateStrategy::Global, 11, 100, start),
            Err(Refusal::Lines(10.0))
        );
        // The refused push took no bytes: the whole burst is still there.
        assert!(limiter
            .admit("a", &limits, RateStrategy::Global, 10, 1 << 20, start)
            .is_ok());
        assert_eq!(
            limiter.admit("a", &limits, RateStrategy::Global, 1, 1, start),
            Err(Refusal::Bytes(1024.0 * 1024.0))
        );
    }
}
