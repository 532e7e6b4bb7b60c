//! One gRPC channel per ingester address, created on first use and dropped
//! when the ingester fails a health check or leaves the ring.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;
use sluice_proto::GrpcChannel;
use tonic::transport::Endpoint;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::config::IngesterClientConfig;

/// The ingester living in this process, reached without the network.
#[derive(Clone)]
pub struct LocalIngester {
    /// Its ring address; calls to it use `channel`.
    pub addr: String,
    /// An in-process channel serving Pusher, Querier and Health.
    pub channel: GrpcChannel,
}

pub(crate) struct ClientPool {
    config: IngesterClientConfig,
    local: Option<LocalIngester>,
    clients: Mutex<HashMap<String, GrpcChannel>>,
}

impl ClientPool {
    pub(crate) fn new(config: IngesterClientConfig, local: Option<LocalIngester>) -> ClientPool {
        ClientPool {
            config,
            local,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the channel to `addr`, connecting lazily on first use.
    pub(crate) fn channel(&self, addr: &str) -> Result<GrpcChannel, tonic::Status> {
        if let Some(local) = self.local.as_ref().filter(|local| local.addr == addr) {
            return Ok(local.channel.clone());
        }
        if let Some(channel) = self.clients.lock().get(addr) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|err| {
                tonic::Status::unavailable(format!("ingester address {addr:?} is invalid: {err}"))
            })?
            .connect_timeout(self.config.remote_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(std::time::Duration::from_secs(10))
            .keep_alive_timeout(std::time::Duration::from_secs(5))
            .keep_alive_while_idle(true);
        let channel = sluice_proto::from_tonic(endpoint.connect_lazy());
        Ok(self
            .clients
            .lock()
            .entry(addr.to_string())
            .or_insert(channel)
            .clone())
    }

    /// Returns how many network clients are pooled.
    pub(crate) fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// Drops clients of addresses not in `ring_addrs` and, when health
    /// checks are on, clients whose ingester does not answer SERVING.
    pub(crate) async fn clean_up(&self, ring_addrs: &HashSet<String>) {
        let pooled: Vec<(String, GrpcChannel)> = {
            let mut clients = self.clients.lock();
            clients.retain(|addr, _| ring_addrs.contains(addr));
            clients
                .iter()
                .map(|(addr, channel)| (addr.clone(), channel.clone()))
                .collect()
        };
        if !self.config.pool_config.health_check_ingesters {
            return;
        }
        let timeout = self.config.pool_config.remote_timeout;
        let checks = pooled.into_iter().map(|(addr, channel)| async move {
            let mut client = HealthClient::new(channel);
            let check = client.check(HealthCheckRequest {
                service: String::new(),
            });
            let outcome = tokio::time::timeout(timeout, futures::FutureExt::boxed(check)).await;
            let healthy = matches!(
                &outcome,
                Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving
            );
            (addr, healthy, outcome.map(|result| result.map(|_| ())))
        });
        for (addr, healthy, outcome) in futures::future::join_all(checks).await {
            if !healthy {
                let reason = match outcome {
                    Err(_) => format!("no answer within {timeout:?}"),
                    Ok(Err(status)) => status.message().to_string(),
                    Ok(Ok(())) => "not serving".to_string(),
                };
                tracing::warn!(ingester = %addr, %reason, "ingester failed its health check, dropping its client");
                self.clients.lock().remove(&addr);
            }
        }
    }
}
