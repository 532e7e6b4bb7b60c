//! The `server` block of the config: listen addresses, ports and logging,
//! with Loki's key names and defaults.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where Sluice listens and how it logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP API binds to.
    pub http_listen_address: String,
    /// Port of the HTTP API (Loki's default 3100).
    pub http_listen_port: u16,
    /// Address the gRPC API binds to.
    pub grpc_listen_address: String,
    /// Port of the gRPC API (Loki's default 9095).
    pub grpc_listen_port: u16,
    /// Longest time to receive a request's headers and body; also how
    /// long a keep-alive connection may wait for its next request (0: no
    /// limit).
    #[serde(with = "humantime_serde_compat")]
    pub http_server_read_timeout: Duration,
    /// Longest time writing a response may stall because the client does
    /// not read it; the connection is closed then (0: no limit).
    #[serde(with = "humantime_serde_compat")]
    pub http_server_write_timeout: Duration,
    /// Largest gRPC message accepted, in bytes.
    pub grpc_server_max_recv_msg_size: usize,
    /// Largest gRPC message sent, in bytes.
    pub grpc_server_max_send_msg_size: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "humantime_serde_compat")]
    pub graceful_shutdown_timeout: Duration,
    /// Minimum level of Sluice's own logs: debug, info, warn or error.
    pub log_level: LogLevel,
    /// Format of Sluice's own logs: logfmt or json.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            http_listen_address: "0.0.0.0".to_string(),
            http_listen_port: 3100,
            grpc_listen_address: "0.0.0.0".to_string(),
            grpc_listen_port: 9095,
            http_server_read_timeout: Duration::from_secs(30),
            http_server_write_timeout: Duration::from_secs(30),
            grpc_server_max_recv_msg_size: 4 * 1024 * 1024,
            grpc_server_max_send_msg_size: 4 * 1024 * 1024,
            graceful_shutdown_timeout: Duration::from_secs(30),
            log_level: LogLevel::Info,
            log_format: LogFormat::Logfmt,
        }
    }
}

impl ServerConfig {
    /// Returns the HTTP socket address, or a message naming the bad key.
    pub fn http_addr(&self) -> Result<SocketAddr, String> {
        socket_addr(&self.http_listen_address, self.http_listen_port)
            .map_err(|err| format!("server.http_listen_address: {err}"))
    }

    /// Returns the HTTP server's timeouts.
    pub fn http_timeouts(&self) -> crate::http_server::HttpTimeouts {
        crate::http_server::HttpTimeouts {
            read: self.http_server_read_timeout,
            write: self.http_server_write_timeout,
        }
    }

    /// Returns the gRPC socket address, or a message naming the bad key.
    pub fn grpc_addr(&self) -> Result<SocketAddr, String> {
        socket_addr(&self.grpc_listen_address, self.grpc_listen_port)
            .map_err(|err| format!("server.grpc_listen_address: {err}"))
    }
}

fn socket_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| format!("{host:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// Returns the level as a tracing filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Serde for durations in Go's notation (`30s`, `1h0m0s`, `250ms`), parsed
/// with Loki's rules so config values read the same as in Loki.
pub mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::duration::{format_go_duration, parse_duration};

    /// Writes a duration as Go would print it.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        let nanos = i64::try_from(value.as_nanos()).unwrap_or(i64::MAX);
        serializer.serialize_str(&format_go_duration(nanos))
    }

    /// Reads a duration in Prometheus or Go notation; a bare integer is
    /// seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(seconds) => Ok(Duration::from_secs(seconds)),
            Raw::Text(text) => {
                let nanos = parse_duration(text.trim()).map_err(serde::de::Error::custom)?;
                u64::try_from(nanos)
                    .map(Duration::from_nanos)
                    .map_err(|_| serde::de::Error::custom(format!("negative duration {text:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_lokis() {
        let config = ServerConfig::default();
        assert_eq!(config.http_addr().unwrap().port(), 3100);
        assert_eq!(config.grpc_addr().unwrap().port(), 9095);
    }

    #[test]
    fn bad_address_names_the_key() {
        let config = ServerConfig {
            http_listen_address: "nope".to_string(),
            ..ServerConfig::default()
        };
        assert!(config
            .http_addr()
            .unwrap_err()
            .starts_with("server.http_listen_address"));
    }
}
