//! The tenants a frontend request is for, and the limits that apply to it.
//! A request may name several tenants (`X-Scope-OrgID: a|b`); the frontend
//! queues, caches and forwards it under that whole value, and applies the
//! strictest of the tenants' query limits, as Loki does.

use std::fmt;
use std::time::Duration;

use axum::http::HeaderMap;
use sluice_common::{LimitsConfig, Overrides, TenantError, TenantId};

/// One or more tenants, as the `X-Scope-OrgID` value sent to queriers
/// (sorted, `|`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OrgId {
    value: String,
    tenants: Vec<TenantId>,
}

impl OrgId {
    pub(super) fn from_headers(
        headers: &HeaderMap,
        auth_enabled: bool,
    ) -> Result<OrgId, TenantError> {
        let tenants = TenantId::all_from_headers(headers, auth_enabled)?;
        Ok(OrgId::new(tenants))
    }

    /// `tenants` is non-empty.
    pub(super) fn new(tenants: Vec<TenantId>) -> OrgId {
        let value = tenants
            .iter()
            .map(TenantId::as_str)
            .collect::<Vec<_>>()
            .join("|");
        OrgId { value, tenants }
    }

    pub(super) fn as_str(&self) -> &str {
        &self.value
    }

    /// The query limits of the request: one tenant's own, or for several
    /// the smallest non-zero value of each limit (zero means unlimited).
    pub(super) fn limits(&self, overrides: &Overrides) -> LimitsConfig {
        let mut all = self
            .tenants
            .iter()
            .map(|tenant| overrides.limits(tenant.as_str()));
        let first = all
            .next()
            .map(|limits| (*limits).clone())
            .unwrap_or_else(|| overrides.defaults().clone());
        all.fold(first, |mut acc, limits| {
            acc.max_query_length = smallest_duration(acc.max_query_length, limits.max_query_length);
            acc.max_query_lookback =
                smallest_duration(acc.max_query_lookback, limits.max_query_lookback);
            acc.query_timeout = smallest_duration(acc.query_timeout, limits.query_timeout);
            acc.split_queries_by_interval = smallest_duration(
                acc.split_queries_by_interval,
                limits.split_queries_by_interval,
            );
            acc.max_cache_freshness_per_query = acc
                .max_cache_freshness_per_query
                .max(limits.max_cache_freshness_per_query);
            acc.max_query_parallelism =
                smallest_count(acc.max_query_parallelism, limits.max_query_parallelism);
            acc.max_entries_limit_per_query = smallest_count(
                acc.max_entries_limit_per_query,
                limits.max_entries_limit_per_query,
            );
            acc
        })
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

fn smallest_duration(a: Duration, b: Duration) -> Duration {
    match (a.is_zero(), b.is_zero()) {
        (true, _) => b,
        (_, true) => a,
        _ => a.min(b),
    }
}

fn smallest_count<T: Ord + Default + Copy>(a: T, b: T) -> T {
    let zero = T::default();
    match (a == zero, b == zero) {
        (true, _) => b,
        (_, true) => a,
        _ => a.min(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    #[test]
    fn several_tenants_get_the_strictest_limits() {
        let overrides = Overrides::new(LimitsConfig::default());
        overrides.set_tenant(
            "a",
            LimitsConfig {
                max_query_length: Duration::from_secs(3600),
                max_query_parallelism: 4,
                max_query_lookback: Duration::ZERO,
                ..LimitsConfig::default()
            },
        );
        overrides.set_tenant(
            "b",
            LimitsConfig {
                max_query_length: Duration::ZERO,
                max_query_parallelism: 8,
                max_query_lookback: Duration::from_secs(7200),
                max_cache_freshness_per_query: Duration::from_secs(600),
                ..LimitsConfig::default()
            },
        );
        let org = OrgId::new(vec![tenant("a"), tenant("b")]);
        assert_eq!(org.as_str(), "a|b");
        let limits = org.limits(&overrides);
        assert_eq!(limits.max_query_length, Duration::from_secs(3600));
        assert_eq!(limits.max_query_parallelism, 4);
        assert_eq!(limits.max_query_lookback, Duration::from_secs(7200));
        assert_eq!(
            limits.max_cache_freshness_per_query,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn one_tenant_gets_its_own_limits() {
        let overrides = Overrides::new(LimitsConfig::default());
        overrides.set_tenant(
            "a",
            LimitsConfig {
                split_queries_by_interval: Duration::from_secs(3600),
                ..LimitsConfig::default()
            },
        );
        let org = OrgId::new(vec![tenant("a")]);
        assert_eq!(
            org.limits(&overrides).split_queries_by_interval,
            Duration::from_secs(3600)
        );
        let other = OrgId::new(vec![tenant("z")]);
        assert_eq!(other.limits(&overrides), LimitsConfig::default());
    }
}
