//! The `compactor` block of the config, with Loki's key names and defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_common::server::humantime_serde_compat;

/// Compactor settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactorConfig {
    /// Local scratch directory, created at startup (empty:
    /// `<common.path_prefix>/compactor`). Marks and delete requests live in
    /// object storage, so a compactor may move between machines without
    /// losing them.
    pub working_directory: String,
    /// Object store holding the compactor's own objects (lease, marks)
    /// when `delete_request_store` is empty: `filesystem`, `s3`, `gcs` or
    /// `azure`. Empty: the store of the schema period in force now.
    pub shared_store: String,
    /// How often index tables are compacted (and retention and delete
    /// requests applied).
    #[serde(with = "humantime_serde_compat")]
    pub compaction_interval: Duration,
    /// Apply `limits_config` retention and process delete requests.
    pub retention_enabled: bool,
    /// How long a chunk removed from the index stays in object storage
    /// before it is deleted.
    #[serde(with = "humantime_serde_compat")]
    pub retention_delete_delay: Duration,
    /// Chunk deletions run at once.
    pub retention_delete_worker_count: usize,
    /// Object store holding delete requests (and the lease and marks):
    /// `filesystem`, `s3`, `gcs` or `azure`. Empty: `shared_store`.
    pub delete_request_store: String,
    /// Most delete requests processed in one compaction run.
    pub delete_batch_size: usize,
    /// How long after it is received a delete request may still be
    /// cancelled; it is processed only after this period.
    #[serde(with = "humantime_serde_compat")]
    pub delete_request_cancel_period: Duration,
    /// Index tables compacted at once.
    pub max_compaction_parallelism: usize,
}

impl Default for CompactorConfig {
    fn default() -> CompactorConfig {
        CompactorConfig {
            working_directory: String::new(),
            shared_store: String::new(),
            compaction_interval: Duration::from_secs(10 * 60),
            retention_enabled: false,
            retention_delete_delay: Duration::from_secs(2 * 3600),
            retention_delete_worker_count: 150,
            delete_request_store: String::new(),
            delete_batch_size: 70,
            delete_request_cancel_period: Duration::from_secs(24 * 3600),
            max_compaction_parallelism: 1,
        }
    }
}

impl CompactorConfig {
    /// Checks what serde cannot; messages name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.compaction_interval.is_zero() {
            return Err("compactor.compaction_interval: must be positive".to_string());
        }
        if self.retention_delete_worker_count == 0 {
            return Err("compactor.retention_delete_worker_count: must be at least 1".to_string());
        }
        if self.delete_batch_size == 0 {
            return Err("compactor.delete_batch_size: must be at least 1".to_string());
        }
        if self.max_compaction_parallelism == 0 {
            return Err("compactor.max_compaction_parallelism: must be at least 1".to_string());
        }
        for (key, value) in [
            ("shared_store", &self.shared_store),
            ("delete_request_store", &self.delete_request_store),
        ] {
            if !matches!(
                value.as_str(),
                "" | "filesystem" | "s3" | "aws" | "gcs" | "azure"
            ) {
                return Err(format!(
                    "compactor.{key}: unknown object store {value:?}; use filesystem, s3, gcs or azure"
                ));
            }
        }
        Ok(())
    }

    /// Returns the object store named for the compactor's objects, if any.
    pub fn control_store(&self) -> Option<&str> {
        [&self.delete_request_store, &self.shared_store]
            .into_iter()
            .find(|name| !name.is_empty())
            .map(|name| if name == "aws" { "s3" } else { name.as_str() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_lokis() {
        let config = CompactorConfig::default();
        assert_eq!(config.compaction_interval, Duration::from_secs(600));
        assert_eq!(config.retention_delete_delay, Duration::from_secs(7200));
        assert_eq!(config.retention_delete_worker_count, 150);
        assert_eq!(
            config.delete_request_cancel_period,
            Duration::from_secs(86400)
        );
        assert!(!config.retention_enabled);
        assert!(config.validate().is_ok());
        assert_eq!(config.control_store(), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let config = CompactorConfig {
            delete_request_store: "floppy".to_string(),
            ..CompactorConfig::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .starts_with("compactor.delete_request_store"));
        let config = CompactorConfig {
            compaction_interval: Duration::ZERO,
            ..CompactorConfig::default()
        };
        assert!(config
            .validate()
            .unwrap_err()
            .starts_with("compactor.compaction_interval"));
        let config = CompactorConfig {
            shared_store: "aws".to_string(),
            ..CompactorConfig::default()
        };
        assert_eq!(config.control_store(), Some("s3"));
    }
}
