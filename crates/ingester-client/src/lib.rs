//! How distributors and queriers reach the ingesters: a live view of the
//! ingester ring and a pool of gRPC clients, one per ingester, health
//! checked as Loki's ingester client pool is.
//!
//! [`Ingesters::write_set`] names the replicas of a stream (for a push),
//! [`Ingesters::read_set`] the ingesters a query must ask and how many of
//! them may fail; [`Ingesters::pusher`] and [`Ingesters::querier`] return
//! clients. The ingester of this process, if any, is reached in process.

mod config;
mod pool;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sluice_proto::logproto::pusher_client::PusherClient;
use sluice_proto::logproto::querier_client::QuerierClient;
use sluice_proto::GrpcChannel;
use sluice_ring::lifecycler::now_ms;
use sluice_ring::{ReplicationSet, Ring, RingError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use config::{GrpcClientConfig, IngesterClientConfig, PoolConfig};
pub use pool::LocalIngester;

use pool::ClientPool;

/// The ingester ring as seen from a distributor or querier, plus clients.
pub struct Ingesters {
    ring: watch::Receiver<Arc<Ring>>,
    replication_factor: usize,
    heartbeat_timeout: Duration,
    config: IngesterClientConfig,
    pool: ClientPool,
    clients_gauge: Gauge,
}

impl std::fmt::Debug for Ingesters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingesters")
            .field("replication_factor", &self.replication_factor)
            .field("members", &self.ring.borrow().members().len())
            .finish_non_exhaustive()
    }
}

impl Ingesters {
    /// Follows `ring` (from a lifecycler or watcher). Registers the pool
    /// size gauge `{prefix}_ingester_clients` (Loki's
    /// `loki_distributor_ingester_clients` / `loki_querier_ingester_clients`).
    pub fn new(
        ring: watch::Receiver<Arc<Ring>>,
        replication_factor: usize,
        heartbeat_timeout: Duration,
        config: IngesterClientConfig,
        local: Option<LocalIngester>,
        metric_prefix: &str,
        registry: &mut Registry,
    ) -> Arc<Ingesters> {
        let clients_gauge = Gauge::default();
        registry.register(
            format!("{metric_prefix}_ingester_clients"),
            "The current number of ingester clients.",
            clients_gauge.clone(),
        );
        Arc::new(Ingesters {
            ring,
            replication_factor,
            heartbeat_timeout,
            pool: ClientPool::new(config.clone(), local),
            config,
            clients_gauge,
        })
    }

    /// Returns the current ring snapshot.
    pub fn ring(&self) -> Arc<Ring> {
        self.ring.borrow().clone()
    }

    /// Returns the replication factor writes use.
    pub fn replication_factor(&self) -> usize {
        self.replication_factor
    }

    /// Returns the replicas of the stream with ring token `token` in
    /// `ring` (take one snapshot per request with [`Ingesters::ring`]).
    pub fn write_set(&self, ring: &Ring, token: u32) -> Result<ReplicationSet, RingError> {
        ring.get(
            token,
            self.replication_factor,
            now_ms(),
            self.heartbeat_timeout,
        )
    }

    /// Returns the ingesters a read must ask and how many may fail.
    pub fn read_set(&self) -> Result<ReplicationSet, RingError> {
        self.ring()
            .read_set(self.replication_factor, now_ms(), self.heartbeat_timeout)
    }

    /// Returns the deadline of one call to one ingester.
    pub fn remote_timeout(&self) -> Duration {
        self.config.remote_timeout
    }

    /// Returns a Pusher client for the ingester at `addr`.
    pub fn pusher(&self, addr: &str) -> Result<PusherClient<GrpcChannel>, tonic::Status> {
        let limits = &self.config.grpc_client_config;
        Ok(PusherClient::new(self.pool.channel(addr)?)
            .max_decoding_message_size(limits.max_recv_msg_size)
            .max_encoding_message_size(limits.max_send_msg_size))
    }

    /// Returns a bare gRPC client for the ingester at `addr`, with the same
    /// message size limits, for calls that bring their own codec (the
    /// distributor sends pushes it encoded once for every replica).
    pub fn grpc(&self, addr: &str) -> Result<tonic::client::Grpc<GrpcChannel>, tonic::Status> {
        let limits = &self.config.grpc_client_config;
        Ok(tonic::client::Grpc::new(self.pool.channel(addr)?)
            .max_decoding_message_size(limits.max_recv_msg_size)
            .max_encoding_message_size(limits.max_send_msg_size))
    }

    /// Returns a Querier client for the ingester at `addr`.
    pub fn querier(&self, addr: &str) -> Result<QuerierClient<GrpcChannel>, tonic::Status> {
        let limits = &self.config.grpc_client_config;
        Ok(QuerierClient::new(self.pool.channel(addr)?)
            .max_decoding_message_size(limits.max_recv_msg_size)
            .max_encoding_message_size(limits.max_send_msg_size))
    }

    /// Every `client_cleanup_period`, drops clients of ingesters that left
    /// the ring or fail their health check, until `shutdown`.
    pub async fn run_pool_maintenance(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.pool_config.client_cleanup_period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let addrs: HashSet<String> = self
                        .ring()
                        .members()
                        .iter()
                        .map(|member| member.addr.clone())
                        .collect();
                    self.pool.clean_up(&addrs).await;
                    self.clients_gauge
                        .set(i64::try_from(self.pool.len()).unwrap_or(i64::MAX));
                }
            }
        }
    }
}
