//! `ingester_client` settings, with Loki's key names and defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How distributors and queriers talk to ingesters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterClientConfig {
    /// Deadline of one call to one ingester (a push, a label or series
    /// request, the start of a query stream).
    #[serde(with = "humantime_serde")]
    pub remote_timeout: Duration,
    /// The client pool.
    pub pool_config: PoolConfig,
    /// gRPC message limits.
    pub grpc_client_config: GrpcClientConfig,
}

/// The pool of one client per ingester.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Check every pooled client with the gRPC health protocol and drop the
    /// ones that fail (they reconnect on next use).
    pub health_check_ingesters: bool,
    /// How often clients are checked and clients of ingesters that left the
    /// ring are dropped.
    #[serde(with = "humantime_serde")]
    pub client_cleanup_period: Duration,
    /// Deadline of one health check.
    #[serde(with = "humantime_serde")]
    pub remote_timeout: Duration,
}

/// gRPC client limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcClientConfig {
    /// Largest message accepted from an ingester, bytes.
    pub max_recv_msg_size: usize,
    /// Largest message sent to an ingester, bytes.
    pub max_send_msg_size: usize,
}

impl Default for IngesterClientConfig {
    fn default() -> Self {
        IngesterClientConfig {
            remote_timeout: Duration::from_secs(5),
            pool_config: PoolConfig::default(),
            grpc_client_config: GrpcClientConfig::default(),
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            health_check_ingesters: true,
            client_cleanup_period: Duration::from_secs(15),
            remote_timeout: Duration::from_secs(1),
        }
    }
}

impl Default for GrpcClientConfig {
    fn default() -> Self {
        GrpcClientConfig {
            max_recv_msg_size: 100 << 20,
            max_send_msg_size: 100 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_keys_and_defaults() {
        let config: IngesterClientConfig = serde_norway::from_str(
            "remote_timeout: 2s\npool_config:\n  client_cleanup_period: 1s\n",
        )
        .expect("parse");
        assert_eq!(config.remote_timeout, Duration::from_secs(2));
        assert_eq!(
            config.pool_config.client_cleanup_period,
            Duration::from_secs(1)
        );
        assert!(config.pool_config.health_check_ingesters);
        assert_eq!(config.grpc_client_config.max_recv_msg_size, 104_857_600);
        assert!(serde_norway::from_str::<IngesterClientConfig>("remote_timout: 1s\n").is_err());
    }
}
