//! The per-tenant limits lookup the compactor takes retention and deletion
//! settings from. Today every tenant gets the global `limits_config`;
//! per-tenant overrides plug in by implementing [`TenantLimits`].

use std::sync::Arc;

use sluice_common::LimitsConfig;

/// Returns the limits that apply to a tenant.
pub trait TenantLimits: Send + Sync {
    /// Returns the tenant's limits.
    fn limits_for(&self, tenant: &str) -> Arc<LimitsConfig>;
}

impl TenantLimits for LimitsConfig {
    fn limits_for(&self, _tenant: &str) -> Arc<LimitsConfig> {
        Arc::new(self.clone())
    }
}

impl<F> TenantLimits for F
where
    F: Fn(&str) -> Arc<LimitsConfig> + Send + Sync,
{
    fn limits_for(&self, tenant: &str) -> Arc<LimitsConfig> {
        self(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_and_globals_are_lookups() {
        let global_limits: Arc<dyn TenantLimits> = Arc::new(LimitsConfig::default());
        assert_eq!(*global_limits.limits_for("a"), LimitsConfig::default());
        let per_tenant = |tenant: &str| {
            Arc::new(LimitsConfig {
                max_query_series: tenant.len(),
                ..LimitsConfig::default()
            })
        };
        assert_eq!(per_tenant.limits_for("abc").max_query_series, 3);
    }
}
