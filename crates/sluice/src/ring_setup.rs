//! Fills in the ring settings a process derives from its environment, and
//! builds the ring pieces each module needs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use sluice_common::overrides::InstanceCount;
use sluice_ring::{now_ms, AnyKv, KvStoreKind, Ring, RingConfig, RingWatcher};
use tokio::sync::watch;

/// Returns `config` with `instance_id` (default: the hostname, as Loki) and
/// `instance_addr` (default: this host's outbound IP, or 127.0.0.1, with
/// the gRPC port) filled in. An in-memory ring can only ever hold this
/// process, so its replication factor is 1.
pub(crate) fn resolve(config: &RingConfig, grpc_addr: SocketAddr) -> RingConfig {
    let mut resolved = config.clone();
    if resolved.instance_id.trim().is_empty() {
        resolved.instance_id = hostname();
    }
    if resolved.instance_addr.trim().is_empty() {
        let ip = if grpc_addr.ip().is_unspecified() {
            outbound_ip().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            grpc_addr.ip()
        };
        resolved.instance_addr = SocketAddr::new(ip, grpc_addr.port()).to_string();
    }
    if resolved.kvstore.store == KvStoreKind::Inmemory && resolved.replication_factor > 1 {
        tracing::info!(
            configured = resolved.replication_factor,
            "in-memory ring: one ingester, replication factor 1"
        );
        resolved.replication_factor = 1;
    }
    resolved
}

/// How often distributors and queriers re-read the ring: often enough to
/// stop writing to a LEAVING ingester within a second.
pub(crate) fn watch_interval(config: &RingConfig) -> Duration {
    config.heartbeat_period.min(Duration::from_secs(1))
}

/// Starts following the ring stored under `key`.
pub(crate) async fn watch(kv: &AnyKv, key: &'static str, config: &RingConfig) -> Arc<RingWatcher> {
    Arc::new(
        RingWatcher::start(
            kv.clone(),
            key,
            config.zone_awareness_enabled,
            watch_interval(config),
        )
        .await,
    )
}

/// Counts the healthy ACTIVE members of a ring, for limits shared among
/// them (distributors: the global ingestion rate; ingesters: the global
/// stream limit).
#[derive(Debug)]
pub(crate) struct HealthyMembers {
    ring: watch::Receiver<Arc<Ring>>,
    heartbeat_timeout: Duration,
}

impl HealthyMembers {
    pub(crate) fn new(ring: watch::Receiver<Arc<Ring>>, heartbeat_timeout: Duration) -> Self {
        HealthyMembers {
            ring,
            heartbeat_timeout,
        }
    }
}

impl InstanceCount for HealthyMembers {
    fn healthy_instances(&self) -> usize {
        self.ring
            .borrow()
            .healthy_active_count(now_ms(), self.heartbeat_timeout)
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sluice".to_string())
}

/// The address this host uses to reach the outside; no packet is sent.
fn outbound_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_id_and_addr_and_caps_inmemory_replication() {
        let grpc: SocketAddr = "127.0.0.1:9095".parse().unwrap();
        let resolved = resolve(&RingConfig::default(), grpc);
        assert_eq!(resolved.instance_id, hostname());
        assert_eq!(resolved.instance_addr, "127.0.0.1:9095");
        assert_eq!(resolved.replication_factor, 1);

        let mut memcached = RingConfig {
            instance_id: "ingester-1".into(),
            instance_addr: "10.0.0.7:9095".into(),
            ..RingConfig::default()
        };
        memcached.kvstore.store = KvStoreKind::Memcached;
        let resolved = resolve(&memcached, grpc);
        assert_eq!(resolved.instance_id, "ingester-1");
        assert_eq!(resolved.instance_addr, "10.0.0.7:9095");
        assert_eq!(resolved.replication_factor, 3);
    }
}
