//! Command-line flags in Loki's style (`-config.file=x`, `-target all`,
//! `--flag` also accepted). Each setting flag maps onto a config key and
//! wins over the YAML file and the environment.

use std::collections::BTreeMap;

/// What the command line asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Cli {
    /// `-config.file`.
    pub(crate) config_file: Option<String>,
    /// `-config.expand-env`.
    pub(crate) expand_env: bool,
    /// `-config.verify`: load, validate, print, exit.
    pub(crate) verify: bool,
    /// `-version`.
    pub(crate) version: bool,
    /// `-help`.
    pub(crate) help: bool,
    /// Config overrides: dotted key path → value as typed.
    pub(crate) overrides: BTreeMap<String, FlagValue>,
}

/// A flag's value, typed for its config key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FlagValue {
    Text(String),
    Integer(i64),
    Boolean(bool),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Integer,
    Boolean,
    /// Comma-separated.
    List,
}

/// Setting flags: name, config key path, type, help.
const SETTINGS: &[(&str, &str, Kind, &str)] = &[
    (
        "target",
        "target",
        Kind::Text,
        "Comma-separated list of modules to run: all, distributor, ingester, querier, compactor.",
    ),
    (
        "auth.enabled",
        "auth_enabled",
        Kind::Boolean,
        "Require X-Scope-OrgID on every request.",
    ),
    (
        "server.http-listen-address",
        "server.http_listen_address",
        Kind::Text,
        "HTTP listen address.",
    ),
    (
        "server.http-listen-port",
        "server.http_listen_port",
        Kind::Integer,
        "HTTP listen port (3100).",
    ),
    (
        "server.grpc-listen-address",
        "server.grpc_listen_address",
        Kind::Text,
        "gRPC listen address.",
    ),
    (
        "server.grpc-listen-port",
        "server.grpc_listen_port",
        Kind::Integer,
        "gRPC listen port (9095).",
    ),
    (
        "server.grpc-max-recv-msg-size-bytes",
        "server.grpc_server_max_recv_msg_size",
        Kind::Integer,
        "Largest gRPC message received.",
    ),
    (
        "server.grpc-max-send-msg-size-bytes",
        "server.grpc_server_max_send_msg_size",
        Kind::Integer,
        "Largest gRPC message sent.",
    ),
    (
        "server.graceful-shutdown-timeout",
        "server.graceful_shutdown_timeout",
        Kind::Text,
        "Time to finish in-flight requests on shutdown.",
    ),
    (
        "log.level",
        "server.log_level",
        Kind::Text,
        "Log level: debug, info, warn, error.",
    ),
    (
        "log.format",
        "server.log_format",
        Kind::Text,
        "Log format: logfmt or json.",
    ),
    (
        "common.path-prefix",
        "common.path_prefix",
        Kind::Text,
        "Directory for Sluice's on-disk state.",
    ),
    (
        "ingester.chunk-encoding",
        "ingester.chunk_encoding",
        Kind::Text,
        "Chunk compression codec.",
    ),
    (
        "ingester.chunk-format",
        "ingester.chunk_format",
        Kind::Text,
        "Chunk format new chunks are written in: v2 (default) or v3 (templates and variables).",
    ),
    (
        "ingester.chunks-block-size",
        "ingester.chunk_block_size",
        Kind::Integer,
        "Uncompressed bytes per chunk block.",
    ),
    (
        "ingester.chunk-target-size",
        "ingester.chunk_target_size",
        Kind::Integer,
        "Compressed bytes per chunk.",
    ),
    (
        "distributor.max-recv-msg-size",
        "distributor.max_recv_msg_size",
        Kind::Integer,
        "Largest push body.",
    ),
    (
        "querier.engine.max-lookback-period",
        "querier.engine.max_look_back_period",
        Kind::Text,
        "Look-back of instant log queries.",
    ),
    (
        "validation.max-entries-limit",
        "limits_config.max_entries_limit_per_query",
        Kind::Integer,
        "Largest limit of a log query.",
    ),
    (
        "distributor.max-line-size",
        "limits_config.max_line_size",
        Kind::Integer,
        "Longest accepted log line in bytes (0 = unlimited).",
    ),
    (
        "server.http-read-timeout",
        "server.http_server_read_timeout",
        Kind::Text,
        "Longest time to read a request's headers and body.",
    ),
    (
        "server.http-write-timeout",
        "server.http_server_write_timeout",
        Kind::Text,
        "Longest time a response write may stall.",
    ),
    (
        "runtime-config.file",
        "runtime_config.file",
        Kind::Text,
        "File of per-tenant limit overrides, re-read at runtime.",
    ),
    (
        "runtime-config.reload-period",
        "runtime_config.period",
        Kind::Text,
        "How often the runtime config file is re-read.",
    ),
    (
        "querier.multi-tenant-queries-enabled",
        "querier.multi_tenant_queries_enabled",
        Kind::Boolean,
        "Allow X-Scope-OrgID: a|b on reads.",
    ),
    (
        "ingester.max-global-streams-per-user",
        "limits_config.max_global_streams_per_user",
        Kind::Integer,
        "Most streams a tenant may have in the cluster (0 = unlimited).",
    ),
    (
        "ring.store",
        "common.ring.kvstore.store",
        Kind::Text,
        "Ring membership store: inmemory or memcached.",
    ),
    (
        "ring.memcached.addresses",
        "common.ring.kvstore.memcached.addresses",
        Kind::List,
        "Comma-separated host:port of the memcached servers holding the ring.",
    ),
    (
        "ring.instance-id",
        "common.ring.instance_id",
        Kind::Text,
        "This instance's id in the ring (default: the hostname).",
    ),
    (
        "ring.instance-addr",
        "common.ring.instance_addr",
        Kind::Text,
        "host:port other services dial for this instance's gRPC.",
    ),
    (
        "ring.instance-availability-zone",
        "common.ring.instance_availability_zone",
        Kind::Text,
        "This instance's zone, for zone-aware replication.",
    ),
    (
        "ring.replication-factor",
        "common.ring.replication_factor",
        Kind::Integer,
        "Ingesters each stream is written to.",
    ),
    (
        "ring.heartbeat-period",
        "common.ring.heartbeat_period",
        Kind::Text,
        "How often ring members heartbeat.",
    ),
    (
        "ring.heartbeat-timeout",
        "common.ring.heartbeat_timeout",
        Kind::Text,
        "Members silent for longer are unhealthy.",
    ),
    (
        "compactor.working-directory",
        "compactor.working_directory",
        Kind::Text,
        "Compactor scratch directory.",
    ),
    (
        "compactor.compaction-interval",
        "compactor.compaction_interval",
        Kind::Text,
        "How often the compactor runs (10m).",
    ),
    (
        "compactor.retention-enabled",
        "compactor.retention_enabled",
        Kind::Boolean,
        "Apply retention and process delete requests.",
    ),
];

/// A command line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CliError {
    /// Go's `flag` wording.
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    /// A flag that needs a value got none.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A value of the wrong type.
    #[error("invalid value {value:?} for flag -{flag}: {reason}")]
    BadValue {
        /// The flag.
        flag: String,
        /// Its value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A positional argument.
    #[error("unexpected argument {0:?}")]
    Positional(String),
}

impl Cli {
    /// Parses arguments (without the program name).
    pub(crate) fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Cli, CliError> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                return Err(CliError::Positional(arg));
            };
            let (name, inline_value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (flag.to_string(), None),
            };
            match name.as_str() {
                "config.expand-env" => cli.expand_env = parse_bool(&name, inline_value.as_deref())?,
                "config.verify" => cli.verify = parse_bool(&name, inline_value.as_deref())?,
                "version" => cli.version = parse_bool(&name, inline_value.as_deref())?,
                "h" | "help" => cli.help = true,
                "config.file" => {
                    cli.config_file = Some(take_value(&name, inline_value, &mut args)?);
                }
                _ => {
                    let (_, key, kind, _) = SETTINGS
                        .iter()
                        .find(|(flag_name, ..)| *flag_name == name)
                        .ok_or_else(|| CliError::Unknown(name.clone()))?;
                    let value = match kind {
                        Kind::Boolean => {
                            FlagValue::Boolean(parse_bool(&name, inline_value.as_deref())?)
                        }
                        Kind::Text => FlagValue::Text(take_value(&name, inline_value, &mut args)?),
                        Kind::List => FlagValue::List(
                            take_value(&name, inline_value, &mut args)?
                                .split(',')
                                .map(str::trim)
                                .filter(|item| !item.is_empty())
                                .map(str::to_string)
                                .collect(),
                        ),
                        Kind::Integer => {
                            let text = take_value(&name, inline_value, &mut args)?;
                            let number = text.parse().map_err(|_| CliError::BadValue {
                                flag: name.clone(),
                                value: text.clone(),
                                reason: "not an integer",
                            })?;
                            FlagValue::Integer(number)
                        }
                    };
                    cli.overrides.insert((*key).to_string(), value);
                }
            }
        }
        Ok(cli)
    }

    /// Returns the help text listing every flag.
    pub(crate) fn usage() -> String {
        let mut text = String::from(
            "Usage: sluice [flags]\n\n  -config.file string\n\tYAML configuration file.\n  -config.expand-env\n\tExpand ${VAR} and ${VAR:-default} in the config file.\n  -config.verify\n\tLoad and validate the configuration, print the effective config, and exit.\n  -version\n\tPrint the version and exit.\n",
        );
        for (name, key, _, help) in SETTINGS {
            text.push_str(&format!("  -{name}\n\t{help} (config: {key})\n"));
        }
        text
    }
}

fn take_value(
    name: &str,
    inline_value: Option<String>,
    args: &mut impl Iterator<Item = String>,
) -> Result<String, CliError> {
    match inline_value {
        Some(value) => Ok(value),
        None => args
            .next()
            .ok_or_else(|| CliError::MissingValue(name.to_string())),
    }
}

/// Go's flag package: a bare boolean flag is true; `=value` must parse.
fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, CliError> {
    match value {
        None => Ok(true),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(CliError::BadValue {
            flag: name.to_string(),
            value: other.to_string(),
            reason: "not a boolean",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, CliError> {
        Cli::parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn loki_style_flags() {
        let cli = parse(&[
            "-config.file=config.yaml",
            "-target",
            "all",
            "--server.http-listen-port=3101",
            "-config.expand-env=true",
            "-auth.enabled",
        ])
        .unwrap();
        assert_eq!(cli.config_file.as_deref(), Some("config.yaml"));
        assert!(cli.expand_env);
        assert_eq!(cli.overrides["target"], FlagValue::Text("all".into()));
        assert_eq!(
            cli.overrides["server.http_listen_port"],
            FlagValue::Integer(3101)
        );
        assert_eq!(cli.overrides["auth_enabled"], FlagValue::Boolean(true));
    }

    #[test]
    fn errors_use_go_wording() {
        assert_eq!(
            parse(&["-nope=1"]).unwrap_err().to_string(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            parse(&["-config.file"]).unwrap_err().to_string(),
            "flag needs an argument: -config.file"
        );
        assert!(matches!(
            parse(&["-server.http-listen-port=abc"]).unwrap_err(),
            CliError::BadValue { .. }
        ));
        assert!(matches!(
            parse(&["stray"]).unwrap_err(),
            CliError::Positional(_)
        ));
    }
}
