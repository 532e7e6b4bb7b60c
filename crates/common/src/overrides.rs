//! Each tenant's effective limits: `limits_config` as defaults, replaced key
//! by key by the tenant's entry in the runtime config file, which is re-read
//! every `runtime_config.period`. Services look limits up per request with
//! [`Overrides::limits`]; a reload that fails keeps the previous values.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::limits::LimitsConfig;
use crate::runtime_config::{parse_overrides, RuntimeConfig, RuntimeConfigError};

/// How many healthy instances share a cluster-wide limit: distributors for
/// the global ingestion rate, ingesters for the global stream limit.
pub trait InstanceCount: Send + Sync + std::fmt::Debug {
    /// Returns the number of healthy instances (0 when unknown).
    fn healthy_instances(&self) -> usize;
}

/// A fixed count, for single-process setups and tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedCount(pub usize);

impl InstanceCount for FixedCount {
    fn healthy_instances(&self) -> usize {
        self.0
    }
}

/// Per-tenant limits: defaults plus runtime overrides.
#[derive(Debug)]
pub struct Overrides {
    defaults: Arc<LimitsConfig>,
    file: Option<PathBuf>,
    period: Duration,
    tenants: RwLock<Arc<HashMap<String, Arc<LimitsConfig>>>>,
    last_reload_successful: Gauge,
}

impl Overrides {
    /// Limits without a runtime config file: every tenant gets `defaults`.
    pub fn new(defaults: LimitsConfig) -> Arc<Overrides> {
        Arc::new(Overrides {
            defaults: Arc::new(defaults),
            file: None,
            period: Duration::from_secs(10),
            tenants: RwLock::new(Arc::new(HashMap::new())),
            last_reload_successful: Gauge::default(),
        })
    }

    /// Limits with the runtime config file of `runtime`, read once now; a
    /// file that cannot be read or parsed fails startup, as in Loki.
    pub async fn load(
        defaults: LimitsConfig,
        runtime: &RuntimeConfig,
    ) -> Result<Arc<Overrides>, RuntimeConfigError> {
        let file = (!runtime.file.trim().is_empty()).then(|| PathBuf::from(runtime.file.trim()));
        let overrides = Overrides {
            defaults: Arc::new(defaults),
            file,
            period: runtime.period,
            tenants: RwLock::new(Arc::new(HashMap::new())),
            last_reload_successful: Gauge::default(),
        };
        overrides.reload().await?;
        Ok(Arc::new(overrides))
    }

    /// Sets tenant overrides directly (tests and embedding; the file, if
    /// any, replaces them on its next reload).
    pub fn set_tenant(&self, tenant: &str, limits: LimitsConfig) {
        let mut tenants = self.tenants.write();
        let mut updated = HashMap::clone(&tenants);
        updated.insert(tenant.to_string(), Arc::new(limits));
        *tenants = Arc::new(updated);
    }

    /// Registers `loki_runtime_config_last_reload_successful`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "loki_runtime_config_last_reload_successful",
            "Whether the last runtime config reload attempt was successful.",
            self.last_reload_successful.clone(),
        );
    }

    /// Returns the limits of `tenant`.
    pub fn limits(&self, tenant: &str) -> Arc<LimitsConfig> {
        self.tenants
            .read()
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| Arc::clone(&self.defaults))
    }

    /// Returns the defaults (`limits_config`).
    pub fn defaults(&self) -> &LimitsConfig {
        &self.defaults
    }

    /// Returns every tenant with overrides and its effective limits, sorted
    /// by tenant.
    pub fn tenant_limits(&self) -> Vec<(String, Arc<LimitsConfig>)> {
        let tenants = Arc::clone(&self.tenants.read());
        let mut all: Vec<_> = tenants
            .iter()
            .map(|(tenant, limits)| (tenant.clone(), Arc::clone(limits)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Re-reads the runtime config file; on error the previous overrides
    /// stay in force. Returns whether anything changed.
    pub async fn reload(&self) -> Result<bool, RuntimeConfigError> {
        let Some(path) = &self.file else {
            self.last_reload_successful.set(1);
            return Ok(false);
        };
        let result = match tokio::fs::read_to_string(path).await {
            Ok(text) => parse_overrides(path, &text, &self.defaults),
            Err(source) => Err(RuntimeConfigError::Read {
                path: path.clone(),
                source,
            }),
        };
        match result {
            Ok(parsed) => {
                self.last_reload_successful.set(1);
                let mut tenants = self.tenants.write();
                let changed = **tenants != parsed;
                if changed {
                    *tenants = Arc::new(parsed);
                }
                Ok(changed)
            }
            Err(err) => {
                self.last_reload_successful.set(0);
                Err(err)
            }
        }
    }

    /// Re-reads the file every `runtime_config.period` until `shutdown`.
    /// Returns at once when there is no file.
    pub async fn run_reloads(self: Arc<Overrides>, shutdown: CancellationToken) {
        if self.file.is_none() {
            return;
        }
        let mut ticker = tokio::time::interval(self.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => match self.reload().await {
                    Ok(true) => tracing::info!("runtime config reloaded; tenant limits changed"),
                    Ok(false) => {}
                    Err(error) => tracing::error!(%error, "runtime config reload failed; keeping the previous limits"),
                },
            }
        }
    }

    /// Renders the overrides as `/runtime_config` shows them: every tenant's
    /// effective limits, or with `diff` only the keys that differ from the
    /// defaults.
    pub fn render_yaml(&self, diff: bool) -> String {
        let defaults = serde_json::to_value(&*self.defaults).unwrap_or_default();
        let mut overrides = serde_json::Map::new();
        for (tenant, limits) in self.tenant_limits() {
            let value = serde_json::to_value(&*limits).unwrap_or_default();
            let shown = match (diff, value, &defaults) {
                (true, serde_json::Value::Object(keys), serde_json::Value::Object(base)) => {
                    serde_json::Value::Object(
                        keys.into_iter()
                            .filter(|(key, value)| base.get(key) != Some(value))
                            .collect(),
                    )
                }
                (_, value, _) => value,
            };
            overrides.insert(tenant, shown);
        }
        let document = serde_json::json!({ "overrides": overrides });
        serde_norway::to_string(&document)
            .unwrap_or_else(|err| format!("# cannot render runtime config: {err}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reload_swaps_and_keeps_old_values_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime.yaml");
        std::fs::write(&path, "overrides:\n  a:\n    ingestion_rate_mb: 1\n").unwrap();
        let runtime = RuntimeConfig {
            file: path.display().to_string(),
            period: Duration::from_millis(10),
        };
        let overrides = Overrides::load(LimitsConfig::default(), &runtime)
            .await
            .unwrap();
        assert_eq!(overrides.limits("a").ingestion_rate_mb, 1.0);
        assert_eq!(overrides.limits("b").ingestion_rate_mb, 4.0);

        std::fs::write(&path, "overrides:\n  a:\n    ingestion_rate_mb: 2\n").unwrap();
        assert!(overrides.reload().await.unwrap());
        assert_eq!(overrides.limits("a").ingestion_rate_mb, 2.0);
        assert!(!overrides.reload().await.unwrap());

        std::fs::write(&path, "overrides:\n  a:\n    nope: 2\n").unwrap();
        assert!(overrides.reload().await.is_err());
        assert_eq!(overrides.limits("a").ingestion_rate_mb, 2.0);
        assert_eq!(overrides.last_reload_successful.get(), 0);

        let diff = overrides.render_yaml(true);
        assert_eq!(diff, "overrides:\n  a:\n    ingestion_rate_mb: 2.0\n");
        let full = overrides.render_yaml(false);
        assert!(full.contains("max_label_names_per_series: 30"), "{full}");
    }

    #[tokio::test]
    async fn missing_file_fails_startup() {
        let runtime = RuntimeConfig {
            file: "/nonexistent/sluice-runtime.yaml".to_string(),
            period: Duration::from_secs(1),
        };
        let err = Overrides::load(LimitsConfig::default(), &runtime)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("sluice-runtime.yaml"), "{err}");
    }
}
