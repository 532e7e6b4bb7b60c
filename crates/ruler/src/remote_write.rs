//! Remote-write clients: each sends the WAL's batches, in order, to its
//! receiver as Prometheus' remote-write protocol 1.0 (protobuf
//! `WriteRequest`, snappy block compression), merging consecutive batches
//! of one tenant up to `max_samples_per_send`. Network errors, 5xx and
//! (with `retry_on_http_429`) 429 are retried with exponential backoff
//! from `min_backoff` to `max_backoff` until they succeed; other 4xx drop
//! the request, as Prometheus does.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::config::{RemoteWriteClientConfig, RulerConfig};
use crate::metrics::{ClientLabel, RulerMetrics};
use crate::prompb::{TimeSeries, WriteRequest};
use crate::sample_wal::{Batch, SampleWal};

/// One client's settings and HTTP client.
#[derive(Debug)]
pub struct RemoteWriteClient {
    name: String,
    config: RemoteWriteClientConfig,
    add_org_id_header: bool,
    http: reqwest::Client,
    max_age_ms: i64,
    metrics: RulerMetrics,
}

enum SendError {
    Retry(String),
    Drop(String),
}

impl RemoteWriteClient {
    /// Builds the clients of `ruler.remote_write` (none when disabled).
    pub fn all(
        config: &RulerConfig,
        metrics: &RulerMetrics,
    ) -> Result<Vec<RemoteWriteClient>, String> {
        if !config.remote_write.enabled {
            return Ok(Vec::new());
        }
        config
            .remote_write
            .all_clients()
            .into_iter()
            .map(|(key, client)| {
                let http = reqwest::Client::builder()
                    .timeout(client.remote_timeout)
                    .build()
                    .map_err(|err| format!("remote_write client {key}: {err}"))?;
                Ok(RemoteWriteClient {
                    name: if client.name.is_empty() {
                        key
                    } else {
                        client.name.clone()
                    },
                    config: client,
                    add_org_id_header: config.remote_write.add_org_id_header,
                    http,
                    max_age_ms: i64::try_from(config.wal.max_age.as_millis()).unwrap_or(i64::MAX),
                    metrics: metrics.clone(),
                })
            })
            .collect()
    }

    /// The client's name (its progress is kept under it in the WAL).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn label(&self) -> ClientLabel {
        ClientLabel {
            client: self.name.clone(),
        }
    }

    /// Sends batches from the WAL until `shutdown`.
    pub async fn run(self, wal: Arc<SampleWal>, shutdown: CancellationToken) {
        let mut cursor = wal.acked(&self.name);
        loop {
            // Register for the wake-up before looking, so an append between
            // the look and the wait is not missed.
            let appended = wal.appended().notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let batches = wal.batches_after(cursor, sluice_ring::now_ms(), self.max_age_ms);
            if batches.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = appended => continue,
                    // A periodic look also catches batches dropped for age.
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
            let (request, tenant, last_seq) = self.merge(&batches);
            let samples = request.sample_count() as u64;
            match self.send_with_retries(&request, &tenant, &shutdown).await {
                Some(Ok(())) => {
                    self.metrics
                        .samples_sent
                        .get_or_create(&self.label())
                        .inc_by(samples);
                }
                Some(Err(error)) => {
                    tracing::warn!(client = %self.name, %tenant, %error, samples, "remote write refused the samples, dropping them");
                    self.metrics
                        .samples_failed
                        .get_or_create(&self.label())
                        .inc_by(samples);
                }
                None => return,
            }
            cursor = last_seq;
            if let Err(error) = wal.ack(&self.name, last_seq) {
                tracing::warn!(client = %self.name, %error, "cannot record remote-write progress in the WAL");
            }
        }
    }

    /// Merges the leading batches of one tenant into one request.
    fn merge(&self, batches: &[Arc<Batch>]) -> (WriteRequest, String, u64) {
        let tenant = batches[0].tenant.clone();
        let limit = self.config.queue_config.max_samples_per_send;
        let mut timeseries: Vec<TimeSeries> = Vec::new();
        let mut samples = 0;
        let mut last_seq = batches[0].seq;
        for batch in batches {
            if batch.tenant != tenant || (samples > 0 && samples + batch.samples() > limit) {
                break;
            }
            samples += batch.samples();
            timeseries.extend(batch.timeseries.iter().cloned());
            last_seq = batch.seq;
        }
        (WriteRequest { timeseries }, tenant, last_seq)
    }

    /// Sends until success or a permanent failure; `None` on shutdown.
    async fn send_with_retries(
        &self,
        request: &WriteRequest,
        tenant: &str,
        shutdown: &CancellationToken,
    ) -> Option<Result<(), String>> {
        let body = match request.encode_snappy() {
            Ok(body) => body,
            Err(err) => return Some(Err(format!("snappy: {err}"))),
        };
        let queue = &self.config.queue_config;
        let mut backoff = queue.min_backoff.max(Duration::from_millis(1));
        loop {
            match self.send_once(&body, tenant).await {
                Ok(()) => return Some(Ok(())),
                Err(SendError::Drop(error)) => return Some(Err(error)),
                Err(SendError::Retry(error)) => {
                    tracing::debug!(client = %self.name, %error, ?backoff, "remote write failed, retrying");
                    self.metrics.send_retries.get_or_create(&self.label()).inc();
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(queue.max_backoff.max(queue.min_backoff));
                }
            }
        }
    }

    async fn send_once(&self, body: &[u8], tenant: &str) -> Result<(), SendError> {
        let mut request = self
            .http
            .post(&self.config.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::CONTENT_ENCODING, "snappy")
            .header(
                http::header::USER_AGENT,
                concat!("sluice/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        if self.add_org_id_header {
            request = request.header("X-Scope-OrgID", tenant);
        }
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        if let Some(auth) = &self.config.basic_auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let response = request
            .body(body.to_vec())
            .send()
            .await
            .map_err(|err| SendError::Retry(err.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let message = format!("{status}: {}", text.trim());
        if status.is_server_error()
            || (status == StatusCode::TOO_MANY_REQUESTS
                && self.config.queue_config.retry_on_http_429)
        {
            Err(SendError::Retry(message))
        } else {
            Err(SendError::Drop(message))
        }
    }
}
