//! The `ruler:` block, with Loki's key names and defaults.
//!
//! ```yaml
//! ruler:
//!   storage:
//!     type: local                 # local (read-only directory) | filesystem | s3 | gcs | azure
//!     local:
//!       directory: /etc/sluice/rules   # <tenant>/<namespace file>.yaml
//!   evaluation_interval: 1m
//!   poll_interval: 1m
//!   alertmanager_url: http://alertmanager:9093   # comma list; dns+ / dnssrv+ prefixes
//!   external_url: http://grafana:3000
//!   enable_sharding: false
//!   remote_write:
//!     enabled: true
//!     clients:
//!       prometheus:
//!         url: http://prometheus:9090/api/v1/write
//!   wal:
//!     dir: ruler-wal
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_common::server::humantime_serde_compat;
use sluice_ring::RingConfig;

/// Every setting of the ruler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulerConfig {
    /// Base URL of the alerts' `generatorURL` and of `$externalURL` in
    /// templates.
    pub external_url: String,
    /// How often a group without its own `interval` is evaluated.
    #[serde(with = "humantime_serde_compat")]
    pub evaluation_interval: Duration,
    /// How often the rule store is re-read (changes apply then).
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    /// Where rule groups are kept.
    pub storage: RuleStorageConfig,
    /// Loki's directory for temporary rule files; Sluice keeps rules in
    /// memory and does not write there (accepted for compatibility).
    pub rule_path: String,
    /// Comma-separated Alertmanager base URLs; a host may carry `dns+`
    /// (A/AAAA) or `dnssrv+` / `dnssrvnoa+` (SRV) to discover several.
    pub alertmanager_url: String,
    /// Resolve every Alertmanager URL's host as a DNS SRV name.
    pub enable_alertmanager_discovery: bool,
    /// How often DNS-discovered Alertmanagers are resolved again.
    #[serde(with = "humantime_serde_compat")]
    pub alertmanager_refresh_interval: Duration,
    /// Accepted for compatibility: Sluice always speaks Alertmanager's v2
    /// API (Alertmanager 0.27 removed v1).
    pub enable_alertmanager_v2: bool,
    /// Notifications waiting to be sent; the oldest are dropped past this.
    pub notification_queue_capacity: usize,
    /// Timeout of one POST to an Alertmanager.
    #[serde(with = "humantime_serde_compat")]
    pub notification_timeout: Duration,
    /// Accepted for compatibility; Sluice does not restore `for` state
    /// after a restart (an alert pending or firing starts pending again).
    #[serde(with = "humantime_serde_compat")]
    pub for_outage_tolerance: Duration,
    /// Accepted for compatibility (see `for_outage_tolerance`).
    #[serde(with = "humantime_serde_compat")]
    pub for_grace_period: Duration,
    /// Least time between two sends of the same firing alert.
    #[serde(with = "humantime_serde_compat")]
    pub resend_delay: Duration,
    /// Spread rule groups over the rulers of the ruler ring.
    pub enable_sharding: bool,
    /// The ruler ring (defaults to `common.ring` when absent).
    pub ring: Option<RingConfig>,
    /// Serve the rules API (`/loki/api/v1/rules`, `/prometheus/api/v1/…`).
    pub enable_api: bool,
    /// Where rule queries run.
    pub evaluation: EvaluationConfig,
    /// Where recording rules' samples go.
    pub remote_write: RemoteWriteConfig,
    /// The write-ahead log of recorded samples.
    pub wal: RulerWalConfig,
    /// Loki's cleaner of stale per-tenant WALs; accepted for compatibility
    /// (Sluice keeps one WAL, trimmed as samples are sent).
    pub wal_cleaner: WalCleanerConfig,
}

impl Default for RulerConfig {
    fn default() -> RulerConfig {
        RulerConfig {
            external_url: String::new(),
            evaluation_interval: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
            storage: RuleStorageConfig::default(),
            rule_path: "/rules".to_string(),
            alertmanager_url: String::new(),
            enable_alertmanager_discovery: false,
            alertmanager_refresh_interval: Duration::from_secs(60),
            enable_alertmanager_v2: false,
            notification_queue_capacity: 10_000,
            notification_timeout: Duration::from_secs(10),
            for_outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            resend_delay: Duration::from_secs(60),
            enable_sharding: false,
            ring: None,
            enable_api: true,
            evaluation: EvaluationConfig::default(),
            remote_write: RemoteWriteConfig::default(),
            wal: RulerWalConfig::default(),
            wal_cleaner: WalCleanerConfig::default(),
        }
    }
}

/// `ruler.storage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleStorageConfig {
    /// `local`: a read-only directory of rule files; `filesystem`, `s3`,
    /// `gcs`, `azure`: the object store of that name configured in
    /// `storage_config`, rules under `rules/`, writable through the API.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ruler.storage.local`.
    pub local: LocalStorageConfig,
}

impl Default for RuleStorageConfig {
    fn default() -> RuleStorageConfig {
        RuleStorageConfig {
            kind: "local".to_string(),
            local: LocalStorageConfig::default(),
        }
    }
}

/// `ruler.storage.local`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalStorageConfig {
    /// Directory holding `<tenant>/<namespace>.yaml`; empty: no rules.
    pub directory: String,
}

/// `ruler.evaluation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    /// `local`: queries run in this process on a querier reading the
    /// ingesters and the store; `remote`: they are sent to a query
    /// frontend's HTTP API.
    pub mode: EvaluationMode,
    /// Used in `remote` mode.
    pub query_frontend: QueryFrontendConfig,
}

/// How rule queries are evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationMode {
    /// In process.
    #[default]
    Local,
    /// Through a query frontend.
    Remote,
}

/// `ruler.evaluation.query_frontend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryFrontendConfig {
    /// Base HTTP URL of the query frontend, e.g.
    /// `http://sluice-query-frontend:3100` (Loki takes a gRPC address here).
    pub address: String,
    /// Timeout of one query.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

impl Default for QueryFrontendConfig {
    fn default() -> QueryFrontendConfig {
        QueryFrontendConfig {
            address: String::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// `ruler.remote_write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Send recording rules' results; when false they are only evaluated.
    pub enabled: bool,
    /// Destinations by name.
    pub clients: BTreeMap<String, RemoteWriteClientConfig>,
    /// Loki's single-client form (deprecated there); merged into `clients`
    /// under the name `default`.
    pub client: Option<RemoteWriteClientConfig>,
    /// Send the tenant as `X-Scope-OrgID`.
    pub add_org_id_header: bool,
    /// Accepted for compatibility; clients are fixed at startup.
    #[serde(with = "humantime_serde_compat")]
    pub config_refresh_period: Duration,
}

impl Default for RemoteWriteConfig {
    fn default() -> RemoteWriteConfig {
        RemoteWriteConfig {
            enabled: false,
            clients: BTreeMap::new(),
            client: None,
            add_org_id_header: true,
            config_refresh_period: Duration::from_secs(10),
        }
    }
}

impl RemoteWriteConfig {
    /// Every client: `clients` plus `client` as `default`.
    pub fn all_clients(&self) -> BTreeMap<String, RemoteWriteClientConfig> {
        let mut clients = self.clients.clone();
        if let Some(client) = &self.client {
            clients
                .entry("default".to_string())
                .or_insert_with(|| client.clone());
        }
        clients
    }
}

/// One remote-write destination (the subset of Prometheus'
/// `remote_write` entry Sluice honours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteClientConfig {
    /// Receiver URL, e.g. `http://prometheus:9090/api/v1/write`.
    pub url: String,
    /// Name in logs and metrics (default: the map key).
    pub name: String,
    /// Timeout of one request.
    #[serde(with = "humantime_serde_compat")]
    pub remote_timeout: Duration,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication.
    pub basic_auth: Option<BasicAuth>,
    /// Batching and retries.
    pub queue_config: QueueConfig,
}

impl Default for RemoteWriteClientConfig {
    fn default() -> RemoteWriteClientConfig {
        RemoteWriteClientConfig {
            url: String::new(),
            name: String::new(),
            remote_timeout: Duration::from_secs(30),
            headers: BTreeMap::new(),
            basic_auth: None,
            queue_config: QueueConfig::default(),
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `queue_config`, with Prometheus' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Samples held in memory for sending; past it the oldest batches wait
    /// in the WAL only until sent (they are re-read from memory, so this
    /// bounds nothing on disk).
    pub capacity: usize,
    /// Largest number of samples in one request.
    pub max_samples_per_send: usize,
    /// Longest a partial batch waits before it is sent.
    #[serde(with = "humantime_serde_compat")]
    pub batch_send_deadline: Duration,
    /// First retry delay; doubles on each failure.
    #[serde(with = "humantime_serde_compat")]
    pub min_backoff: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde_compat")]
    pub max_backoff: Duration,
    /// Retry on 429 as on 5xx (otherwise the batch is dropped).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        QueueConfig {
            capacity: 10_000,
            max_samples_per_send: 2_000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
        }
    }
}

/// `ruler.wal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulerWalConfig {
    /// Directory of the WAL; a relative path is under `common.path_prefix`.
    pub dir: String,
    /// How often sent samples are trimmed from the WAL (a checkpoint of the
    /// unsent ones replaces the segments).
    #[serde(with = "humantime_serde_compat")]
    pub truncate_frequency: Duration,
    /// Accepted for compatibility.
    #[serde(with = "humantime_serde_compat")]
    pub min_age: Duration,
    /// Unsent samples older than this are dropped (the receiver would
    /// refuse them anyway).
    #[serde(with = "humantime_serde_compat")]
    pub max_age: Duration,
}

impl Default for RulerWalConfig {
    fn default() -> RulerWalConfig {
        RulerWalConfig {
            dir: "ruler-wal".to_string(),
            truncate_frequency: Duration::from_secs(3600),
            min_age: Duration::from_secs(300),
            max_age: Duration::from_secs(4 * 3600),
        }
    }
}

/// `ruler.wal_cleaner`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalCleanerConfig {
    /// Accepted for compatibility.
    #[serde(with = "humantime_serde_compat")]
    pub min_age: Duration,
    /// Accepted for compatibility.
    #[serde(with = "humantime_serde_compat")]
    pub period: Duration,
}

impl Default for WalCleanerConfig {
    fn default() -> WalCleanerConfig {
        WalCleanerConfig {
            min_age: Duration::from_secs(12 * 3600),
            period: Duration::ZERO,
        }
    }
}

impl RulerConfig {
    /// Checks what serde cannot; messages name the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.evaluation_interval.is_zero() {
            return Err("ruler.evaluation_interval: must be positive".into());
        }
        if self.poll_interval.is_zero() {
            return Err("ruler.poll_interval: must be positive".into());
        }
        match self.storage.kind.as_str() {
            "local" | "filesystem" | "s3" | "gcs" | "azure" => {}
            other => {
                return Err(format!(
                    "ruler.storage.type: unknown rule storage {other:?}; choose one of local, filesystem, s3, gcs, azure"
                ))
            }
        }
        for url in crate::discovery::split_urls(&self.alertmanager_url) {
            crate::discovery::AlertmanagerSpec::parse(url, self.enable_alertmanager_discovery)
                .map_err(|err| format!("ruler.alertmanager_url: {err}"))?;
        }
        if self.notification_queue_capacity == 0 {
            return Err("ruler.notification_queue_capacity: must be positive".into());
        }
        if self.evaluation.mode == EvaluationMode::Remote {
            let address = self.evaluation.query_frontend.address.trim();
            if address.is_empty() {
                return Err(
                    "ruler.evaluation.query_frontend.address: must be set in remote mode".into(),
                );
            }
            reqwest::Url::parse(address).map_err(|err| {
                format!("ruler.evaluation.query_frontend.address: {address:?}: {err}")
            })?;
        }
        if self.remote_write.enabled {
            let clients = self.remote_write.all_clients();
            if clients.is_empty() {
                return Err("ruler.remote_write.clients: at least one client must be set when remote_write.enabled".into());
            }
            for (name, client) in &clients {
                reqwest::Url::parse(&client.url).map_err(|err| {
                    format!(
                        "ruler.remote_write.clients.{name}.url: {:?}: {err}",
                        client.url
                    )
                })?;
                if client.queue_config.max_samples_per_send == 0 {
                    return Err(format!(
                        "ruler.remote_write.clients.{name}.queue_config.max_samples_per_send: must be positive"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_lokis() {
        let config = RulerConfig::default();
        assert_eq!(config.evaluation_interval, Duration::from_secs(60));
        assert_eq!(config.poll_interval, Duration::from_secs(60));
        assert_eq!(config.notification_queue_capacity, 10_000);
        assert_eq!(config.notification_timeout, Duration::from_secs(10));
        assert_eq!(config.resend_delay, Duration::from_secs(60));
        assert_eq!(config.storage.kind, "local");
        assert_eq!(config.wal.dir, "ruler-wal");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn yaml_keys_and_unknown_keys() {
        let config: RulerConfig = serde_norway::from_str(
            "alertmanager_url: http://a:9093,http://b:9093\nevaluation_interval: 10s\nremote_write:\n  enabled: true\n  clients:\n    prom:\n      url: http://p:9090/api/v1/write\n      queue_config:\n        max_backoff: 1s\n",
        )
        .unwrap();
        assert_eq!(config.evaluation_interval, Duration::from_secs(10));
        assert_eq!(
            config.remote_write.clients["prom"].queue_config.max_backoff,
            Duration::from_secs(1)
        );
        config.validate().unwrap();
        let err = serde_norway::from_str::<RulerConfig>("alertmanager_urls: x\n").unwrap_err();
        assert!(err.to_string().contains("alertmanager_urls"), "{err}");
        let bad = RulerConfig {
            storage: RuleStorageConfig {
                kind: "configdb".into(),
                ..RuleStorageConfig::default()
            },
            ..RulerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("ruler.storage.type"));
        let bad = RulerConfig {
            remote_write: RemoteWriteConfig {
                enabled: true,
                ..RemoteWriteConfig::default()
            },
            ..RulerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("remote_write"));
    }
}
