//! The whole configuration, layered: defaults in code < YAML file (with
//! optional `${VAR}` expansion) < `SLUICE_…` environment variables < flags.
//! Unknown keys and bad values fail startup with a message naming the key.

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::value::{Dict, Value};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sluice_common::runtime_config::RuntimeConfig;
use sluice_common::server::ServerConfig;
use sluice_common::LimitsConfig;
use sluice_compactor::CompactorConfig;
use sluice_distributor::DistributorConfig;
use sluice_ingester::IngesterConfig;
use sluice_ingester_client::IngesterClientConfig;
use sluice_querier::frontend::{FrontendConfig, FrontendWorkerConfig, QueryRangeConfig};
use sluice_querier::QuerierConfig;
use sluice_ring::RingConfig;
use sluice_ruler::RulerConfig;
use sluice_storage::{ChunkStoreConfig, SchemaConfig, StorageConfig};

use crate::cli::{Cli, FlagValue};
use crate::targets::Targets;
use crate::traces::TracingConfig;

/// Every setting of a Sluice process, with Loki's key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Modules to run (comma-separated): all, distributor, ingester,
    /// querier, query-frontend, compactor, ruler.
    pub(crate) target: String,
    /// Require `X-Scope-OrgID`; when false every request is tenant `fake`.
    pub(crate) auth_enabled: bool,
    pub(crate) server: ServerConfig,
    pub(crate) common: CommonConfig,
    pub(crate) distributor: DistributorConfig,
    pub(crate) ingester: IngesterConfig,
    pub(crate) ingester_client: IngesterClientConfig,
    pub(crate) querier: QuerierConfig,
    pub(crate) frontend: FrontendConfig,
    pub(crate) frontend_worker: FrontendWorkerConfig,
    pub(crate) query_range: QueryRangeConfig,
    pub(crate) compactor: CompactorConfig,
    pub(crate) ruler: RulerConfig,
    pub(crate) limits_config: LimitsConfig,
    /// Per-tenant overrides of `limits_config`, re-read at runtime.
    pub(crate) runtime_config: RuntimeConfig,
    pub(crate) storage_config: StorageConfig,
    pub(crate) chunk_store_config: ChunkStoreConfig,
    pub(crate) schema_config: SchemaConfig,
    /// Traces: OTLP export, sampling, service name.
    pub(crate) tracing: TracingConfig,
}

/// Settings shared by several modules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CommonConfig {
    /// Directory for on-disk state, created at startup.
    pub(crate) path_prefix: String,
    /// The ingester ring: membership store, heartbeats, replication, and
    /// this instance's id, address and zone.
    pub(crate) ring: RingConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            target: "all".to_string(),
            auth_enabled: true,
            server: ServerConfig::default(),
            common: CommonConfig::default(),
            distributor: DistributorConfig::default(),
            ingester: IngesterConfig::default(),
            ingester_client: IngesterClientConfig::default(),
            querier: QuerierConfig::default(),
            frontend: FrontendConfig::default(),
            frontend_worker: FrontendWorkerConfig::default(),
            query_range: QueryRangeConfig::default(),
            compactor: CompactorConfig::default(),
            ruler: RulerConfig::default(),
            limits_config: LimitsConfig::default(),
            runtime_config: RuntimeConfig::default(),
            storage_config: StorageConfig::default(),
            chunk_store_config: ChunkStoreConfig::default(),
            schema_config: SchemaConfig::default(),
            tracing: TracingConfig::default(),
        }
    }
}

impl Default for CommonConfig {
    fn default() -> CommonConfig {
        CommonConfig {
            path_prefix: "./data".to_string(),
            ring: RingConfig {
                // Filled in at startup (hostname, gRPC port) when left empty.
                instance_addr: String::new(),
                ..RingConfig::default()
            },
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Expand { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The top-level keys; environment variables naming anything else are not
/// Sluice settings and are ignored.
const TOP_LEVEL_KEYS: &[&str] = &[
    "target",
    "auth_enabled",
    "server",
    "common",
    "distributor",
    "ingester",
    "ingester_client",
    "querier",
    "frontend",
    "frontend_worker",
    "query_range",
    "compactor",
    "ruler",
    "limits_config",
    "runtime_config",
    "storage_config",
    "chunk_store_config",
    "schema_config",
    "tracing",
];

impl Config {
    /// Loads the layered configuration for a command line, reading the
    /// environment through `env` (a function so tests stay hermetic).
    pub(crate) fn load(
        cli: &Cli,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &cli.config_file {
            let mut text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            if cli.expand_env {
                text = expand_env(&text, &env).map_err(|message| ConfigError::Expand {
                    path: path.clone(),
                    message,
                })?;
            }
            if !text.trim().is_empty() {
                figment = figment.merge(Yaml::string(&text));
            }
        }
        figment = figment
            .merge(Env::prefixed("SLUICE_").split("__").filter(|key| {
                let top = key.as_str().split('.').next().unwrap_or_default();
                TOP_LEVEL_KEYS
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(top))
            }))
            .merge(Serialized::defaults(flag_overrides(cli)));
        let config: Config = figment.extract().map_err(|err| {
            let messages: Vec<String> = err.into_iter().map(|error| describe(&error)).collect();
            ConfigError::Invalid(messages.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot; messages name the key.
    fn validate(&self) -> Result<(), ConfigError> {
        self.server.http_addr().map_err(ConfigError::Invalid)?;
        self.server.grpc_addr().map_err(ConfigError::Invalid)?;
        self.ingester.validate().map_err(ConfigError::Invalid)?;
        self.compactor.validate().map_err(ConfigError::Invalid)?;
        self.ruler.validate().map_err(ConfigError::Invalid)?;
        sluice_compactor::validate_limits(&self.limits_config).map_err(ConfigError::Invalid)?;
        self.distributor.validate().map_err(ConfigError::Invalid)?;
        self.limits_config
            .validate()
            .map_err(|message| ConfigError::Invalid(format!("limits_config.{message}")))?;
        self.runtime_config
            .validate()
            .map_err(ConfigError::Invalid)?;
        self.tracing.validate().map_err(ConfigError::Invalid)?;
        Targets::parse(&self.target)
            .map_err(|err| ConfigError::Invalid(format!("target: {err}")))?;
        if self.common.path_prefix.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "common.path_prefix: must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// Returns the config as YAML, as `/config` shows it.
    pub(crate) fn to_yaml(&self) -> String {
        serde_norway::to_string(self)
            .unwrap_or_else(|err| format!("# cannot render config: {err}\n"))
    }
}

/// Words a figment error with the full key path, without figment's profile
/// prefix (`default.`).
fn describe(error: &figment::Error) -> String {
    let path: Vec<&str> = error
        .path
        .iter()
        .map(String::as_str)
        .filter(|segment| *segment != "default")
        .collect();
    let mut message = error.kind.to_string();
    if let figment::error::Kind::UnknownField(field, _) = &error.kind {
        let mut full: Vec<&str> = path.clone();
        if full.last() != Some(&field.as_str()) {
            full.push(field);
        }
        return format!("unknown key `{}`: {message}", full.join("."));
    }
    if !path.is_empty() {
        message = format!("key `{}`: {message}", path.join("."));
    }
    message
}

/// Turns flag overrides into a nested dictionary for figment.
fn flag_overrides(cli: &Cli) -> Dict {
    let mut root = Dict::new();
    for (key, value) in &cli.overrides {
        let value = match value {
            FlagValue::Text(text) => Value::from(text.clone()),
            FlagValue::Integer(number) => Value::from(*number),
            FlagValue::Boolean(flag) => Value::from(*flag),
            FlagValue::List(items) => Value::from(items.clone()),
        };
        insert_path(&mut root, key, value);
    }
    root
}

fn insert_path(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = dict
                .entry(head.to_string())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, child) = entry {
                insert_path(child, rest, value);
            }
        }
    }
}

/// Expands `${VAR}`, `${VAR:-default}` (default when unset or empty) and
/// `${VAR-default}` (default when unset); `$$` is a literal `$`. An unset
/// variable without default expands to the empty string, as in Loki.
pub(crate) fn expand_env(
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let after = &rest[position + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                format!(
                    "unterminated ${{ at byte {}",
                    text.len() - rest.len() + position
                )
            })?;
            let expression = &body[..end];
            out.push_str(&evaluate(expression, env)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn evaluate(expression: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_end = expression
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(expression.len());
    let name = &expression[..name_end];
    if name.is_empty() {
        return Err(format!("bad substitution ${{{expression}}}"));
    }
    let operator = &expression[name_end..];
    let value = env(name);
    if operator.is_empty() {
        Ok(value.unwrap_or_default())
    } else if let Some(default) = operator.strip_prefix(":-") {
        Ok(value
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| default.to_string()))
    } else if let Some(default) = operator.strip_prefix('-') {
        Ok(value.unwrap_or_else(|| default.to_string()))
    } else {
        Err(format!("bad substitution ${{{expression}}}"))
    }
}

#[cfg(test)]
// figment's Jail API returns its large error type by value; that is its design.
#[allow(clippy::result_large_err)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse(args.iter().map(|arg| arg.to_string())).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn layering_defaults_yaml_env_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sluice.yaml",
                "auth_enabled: false\nserver:\n  http_listen_port: 3200\n  grpc_listen_port: 9200\n",
            )?;
            let config = Config::load(&cli(&["-config.file=sluice.yaml"]), no_env).unwrap();
            assert_eq!(config.server.http_listen_port, 3200);
            assert!(!config.auth_enabled);
            assert_eq!(config.server.grpc_listen_port, 9200);
            jail.set_env("SLUICE_SERVER__HTTP_LISTEN_PORT", "3300");
            jail.set_env("SLUICE_BIN", "/not/a/setting");
            let config = Config::load(&cli(&["-config.file=sluice.yaml"]), no_env).unwrap();
            assert_eq!(config.server.http_listen_port, 3300);
            let config = Config::load(
                &cli(&["-config.file=sluice.yaml", "-server.http-listen-port=3400"]),
                no_env,
            )
            .unwrap();
            assert_eq!(config.server.http_listen_port, 3400);
            assert_eq!(config.server.grpc_listen_port, 9200);
            Ok(())
        });
    }

    #[test]
    fn unknown_key_and_bad_value_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.yaml", "server:\n  http_listen_prot: 1\n")?;
            let err = Config::load(&cli(&["-config.file=typo.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("server.http_listen_prot"), "{err}");
            jail.create_file("bad.yaml", "server:\n  http_listen_port: lots\n")?;
            let err = Config::load(&cli(&["-config.file=bad.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("server.http_listen_port"), "{err}");
            jail.create_file("codec.yaml", "ingester:\n  chunk_encoding: brotli\n")?;
            let err = Config::load(&cli(&["-config.file=codec.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("ingester.chunk_encoding"), "{err}");
            jail.create_file("format.yaml", "ingester:\n  chunk_format: v9\n")?;
            let err = Config::load(&cli(&["-config.file=format.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("ingester.chunk_format"), "{err}");
            assert!(err.to_string().contains("expected v1, v2 or v3"), "{err}");
            let config =
                Config::load(&cli(&["-ingester.chunk-format=v3"]), no_env).expect("a known format");
            assert_eq!(config.ingester.chunk_format.as_str(), "v3");
            Ok(())
        });
    }

    #[test]
    fn expand_env_forms() {
        let vars: HashMap<&str, &str> = HashMap::from([("PORT", "3500"), ("EMPTY", "")]);
        let env = |name: &str| vars.get(name).map(|value| value.to_string());
        assert_eq!(expand_env("p: ${PORT}", &env).unwrap(), "p: 3500");
        assert_eq!(expand_env("p: ${MISSING:-7}", &env).unwrap(), "p: 7");
        assert_eq!(expand_env("p: ${EMPTY:-7}", &env).unwrap(), "p: 7");
        assert_eq!(expand_env("p: ${EMPTY-7}", &env).unwrap(), "p: ");
        assert_eq!(expand_env("re: a$$ b$c", &env).unwrap(), "re: a$ b$c");
        assert!(expand_env("p: ${PORT", &env).is_err());
        assert!(expand_env("p: ${PORT:?x}", &env).is_err());
    }

    #[test]
    fn expanded_file_loads() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("env.yaml", "server:\n  http_listen_port: ${PORT:-3600}\n")?;
            let config = Config::load(
                &cli(&["-config.file=env.yaml", "-config.expand-env=true"]),
                no_env,
            )
            .unwrap();
            assert_eq!(config.server.http_listen_port, 3600);
            Ok(())
        });
    }

    #[test]
    fn ring_settings_from_yaml_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ring.yaml",
                "common:\n  ring:\n    kvstore:\n      store: memcached\n      memcached:\n        addresses: [sluice-memcached-ring:11211]\n    replication_factor: 3\n",
            )?;
            let config = Config::load(
                &cli(&[
                    "-config.file=ring.yaml",
                    "-ring.instance-addr=10.1.2.3:9095",
                    "-ring.instance-id=ingester-0",
                ]),
                no_env,
            )
            .unwrap();
            let ring = &config.common.ring;
            assert_eq!(ring.kvstore.store, sluice_ring::KvStoreKind::Memcached);
            assert_eq!(
                ring.kvstore.memcached.addresses,
                ["sluice-memcached-ring:11211"]
            );
            assert_eq!(ring.instance_addr, "10.1.2.3:9095");
            assert_eq!(ring.instance_id, "ingester-0");
            jail.create_file(
                "typo.yaml",
                "common:\n  ring:\n    kvstore:\n      stor: memcached\n",
            )?;
            let err = Config::load(&cli(&["-config.file=typo.yaml"]), no_env).unwrap_err();
            assert!(
                err.to_string().contains("common.ring.kvstore.stor"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn compactor_and_retention_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "retention.yaml",
                r#"
compactor:
  retention_enabled: true
  compaction_interval: 1m
  retention_delete_delay: 30m
limits_config:
  retention_period: 720h
  deletion_mode: filter-only
  retention_overrides:
    - selector: '{tier="debug"}'
      retention: 72h
  retention_stream:
    - selector: '{service="sigmalang"}'
      priority: 1
      period: 336h
"#,
            )?;
            let config = Config::load(&cli(&["-config.file=retention.yaml"]), no_env).unwrap();
            assert!(config.compactor.retention_enabled);
            assert_eq!(config.compactor.compaction_interval.as_secs(), 60);
            assert_eq!(config.limits_config.retention_period.as_secs(), 720 * 3600);
            assert_eq!(
                config.limits_config.retention_overrides[0]
                    .retention
                    .as_secs(),
                72 * 3600
            );
            assert_eq!(config.limits_config.retention_stream[0].priority, 1);
            assert_eq!(
                config.limits_config.deletion_mode,
                sluice_common::DeletionMode::FilterOnly
            );
            jail.create_file(
                "bad-selector.yaml",
                "limits_config:\n  retention_stream:\n    - selector: 'tier'\n      period: 48h\n",
            )?;
            let err = Config::load(&cli(&["-config.file=bad-selector.yaml"]), no_env).unwrap_err();
            assert!(
                err.to_string()
                    .contains("limits_config.retention_stream[0].selector"),
                "{err}"
            );
            jail.create_file("typo.yaml", "compactor:\n  retention_enable: true\n")?;
            let err = Config::load(&cli(&["-config.file=typo.yaml"]), no_env).unwrap_err();
            assert!(
                err.to_string().contains("compactor.retention_enable"),
                "{err}"
            );
            jail.create_file("mode.yaml", "limits_config:\n  deletion_mode: sometimes\n")?;
            let err = Config::load(&cli(&["-config.file=mode.yaml"]), no_env).unwrap_err();
            assert!(
                err.to_string().contains("limits_config.deletion_mode"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn ruler_keys() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ruler.yaml",
                "ruler:\n  alertmanager_url: http://am:9093\n  evaluation_interval: 30s\n  storage:\n    local:\n      directory: /rules\n",
            )?;
            let config = Config::load(&cli(&["-config.file=ruler.yaml"]), no_env).unwrap();
            assert_eq!(config.ruler.alertmanager_url, "http://am:9093");
            assert_eq!(config.ruler.evaluation_interval.as_secs(), 30);
            jail.create_file("typo.yaml", "ruler:\n  alertmanager_urls: x\n")?;
            let err = Config::load(&cli(&["-config.file=typo.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("ruler.alertmanager_urls"), "{err}");
            jail.create_file("bad.yaml", "ruler:\n  storage:\n    type: configdb\n")?;
            let err = Config::load(&cli(&["-config.file=bad.yaml"]), no_env).unwrap_err();
            assert!(err.to_string().contains("ruler.storage.type"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn yaml_round_trips() {
        let config = Config::default();
        let yaml = config.to_yaml();
        assert!(yaml.contains("http_listen_port: 3100"), "{yaml}");
        let parsed: Config = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(parsed, config);
    }
}
