//! The `runtime_config` block and the runtime config file it names: per
//! tenant overrides of `limits_config`, re-read every `period` without a
//! restart, in Loki's format:
//!
//! ```yaml
//! overrides:
//!   tenant-a:
//!     ingestion_rate_mb: 10
//!     max_global_streams_per_user: 20000
//! ```
//!
//! A tenant's limits are the defaults with its keys replaced; keys and
//! values are checked exactly as in `limits_config`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::limits::LimitsConfig;
use crate::server::humantime_serde_compat;
use crate::tenant::TenantId;

/// `runtime_config`: where the overrides file is and how often it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The runtime config file; empty means no per-tenant overrides.
    pub file: String,
    /// How often the file is re-read.
    #[serde(with = "humantime_serde_compat")]
    pub period: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            file: String::new(),
            period: Duration::from_secs(10),
        }
    }
}

impl RuntimeConfig {
    /// Checks values serde cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.file.is_empty() && self.period.is_zero() {
            return Err("runtime_config.period: must be greater than 0".to_string());
        }
        Ok(())
    }
}

/// Why the runtime config file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeConfigError {
    /// The file cannot be read.
    #[error("reading runtime config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("runtime config file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RuntimeFile {
    overrides: Option<serde_norway::Mapping>,
}

/// Parses the file's text into each tenant's full limits.
pub(crate) fn parse_overrides(
    path: &std::path::Path,
    text: &str,
    defaults: &LimitsConfig,
) -> Result<HashMap<String, Arc<LimitsConfig>>, RuntimeConfigError> {
    let invalid = |message: String| RuntimeConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    if text.trim().is_empty() {
        return Ok(HashMap::new());
    }
    let file: Option<RuntimeFile> =
        serde_norway::from_str(text).map_err(|err| invalid(err.to_string()))?;
    let Some(file) = file else {
        return Ok(HashMap::new());
    };
    let base = serde_json::to_value(defaults)
        .map_err(|err| invalid(format!("rendering the defaults: {err}")))?;
    let overrides = file.overrides.unwrap_or_default();
    let mut tenants = HashMap::with_capacity(overrides.len());
    for (key, value) in overrides {
        // YAML reads `123:` as a number; a tenant id is its text.
        let tenant = match key {
            serde_norway::Value::String(text) => text,
            serde_norway::Value::Number(number) => number.to_string(),
            serde_norway::Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(invalid(format!(
                    "overrides: tenant id {other:?} is not a string"
                )))
            }
        };
        let value = serde_json::to_value(&value)
            .map_err(|err| invalid(format!("overrides.{tenant}: {err}")))?;
        TenantId::new(&tenant).map_err(|err| invalid(format!("overrides.{tenant}: {err}")))?;
        let mut merged = base.clone();
        match (value, &mut merged) {
            (serde_json::Value::Object(keys), serde_json::Value::Object(target)) => {
                for (key, value) in keys {
                    target.insert(key, value);
                }
            }
            (serde_json::Value::Null, _) => {}
            (other, _) => {
                return Err(invalid(format!(
                    "overrides.{tenant}: expected a map of limits, got {other}"
                )))
            }
        }
        let limits: LimitsConfig = serde_json::from_value(merged)
            .map_err(|err| invalid(format!("overrides.{tenant}: {err}")))?;
        limits
            .validate()
            .map_err(|message| invalid(format!("overrides.{tenant}.{message}")))?;
        tenants.insert(tenant, Arc::new(limits));
    }
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HashMap<String, Arc<LimitsConfig>>, RuntimeConfigError> {
        parse_overrides(
            std::path::Path::new("runtime.yaml"),
            text,
            &LimitsConfig::default(),
        )
    }

    #[test]
    fn tenant_keys_replace_defaults() {
        let tenants = parse(
            "overrides:\n  a:\n    ingestion_rate_mb: 10\n    per_stream_rate_limit: 1MB\n  b: {}\n",
        )
        .unwrap();
        let a = &tenants["a"];
        assert_eq!(a.ingestion_rate_mb, 10.0);
        assert_eq!(a.per_stream_rate_limit, 1 << 20);
        assert_eq!(a.max_label_names_per_series, 30);
        assert_eq!(*tenants["b"].as_ref(), LimitsConfig::default());
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# nothing yet\n").unwrap().is_empty());
        assert!(parse("overrides:\n").unwrap().is_empty());
        assert!(
            parse("overrides:\n  123:\n    max_streams_per_user: 7\n").unwrap()["123"]
                .max_streams_per_user
                == 7
        );
    }

    #[test]
    fn errors_name_tenant_and_key() {
        let err = parse("overrides:\n  a:\n    ingestion_rate_mbb: 1\n").unwrap_err();
        assert!(err.to_string().contains("overrides.a"), "{err}");
        assert!(err.to_string().contains("ingestion_rate_mbb"), "{err}");
        let err = parse("overrides:\n  a:\n    ingestion_rate_mb: lots\n").unwrap_err();
        assert!(err.to_string().contains("overrides.a"), "{err}");
        let err = parse("overrides:\n  a/b:\n    ingestion_rate_mb: 1\n").unwrap_err();
        assert!(err.to_string().contains("unsupported character"), "{err}");
        let err = parse("limits:\n  a: {}\n").unwrap_err();
        assert!(err.to_string().contains("limits"), "{err}");
        let err = parse("overrides:\n  a:\n    ingestion_rate_mb: -1\n").unwrap_err();
        assert!(err.to_string().contains("ingestion_rate_mb"), "{err}");
    }
}
