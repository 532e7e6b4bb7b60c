//! Sends alerts to Alertmanager through its v2 API (`POST
//! <url>/api/v2/alerts`), as Prometheus' notifier does: a bounded queue
//! (the oldest alerts are dropped when full), batches of up to 64 alerts
//! per tenant (with `X-Scope-OrgID`, as Loki sends them) posted to every
//! Alertmanager, DNS-discovered Alertmanagers refreshed periodically.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};
use parking_lot::{Mutex, RwLock};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::alerting::Alert;
use crate::config::RulerConfig;
use crate::discovery::{self, AlertmanagerSpec};
use crate::metrics::RulerMetrics;

/// Prometheus' batch size.
const MAX_BATCH: usize = 64;

/// An alert as Alertmanager's v2 API takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    /// Labels (identity).
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// RFC 3339.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    /// Link back to the query.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

impl PostableAlert {
    /// Converts a rule's alert; `expr` is the rule's query.
    pub fn from_alert(alert: &Alert, external_url: &str, expr: &str) -> PostableAlert {
        PostableAlert {
            labels: alert.labels.iter().cloned().collect(),
            annotations: alert.annotations.iter().cloned().collect(),
            starts_at: rfc3339_ms(alert.starts_at_ms()),
            ends_at: rfc3339_ms(alert.ends_at_ms()),
            generator_url: generator_url(external_url, expr),
        }
    }
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Go's `url.QueryEscape` set: everything but `A-Za-z0-9-_.~`.
const QUERY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Prometheus' link to a query: `<external_url>/graph?g0.expr=…&g0.tab=1`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    let escaped = utf8_percent_encode(expr, QUERY_ESCAPE)
        .to_string()
        .replace("%20", "+");
    format!(
        "{}/graph?g0.expr={escaped}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

/// The Alertmanager notifier.
#[derive(Debug)]
pub struct Notifier {
    specs: Vec<AlertmanagerSpec>,
    alertmanagers: RwLock<Vec<String>>,
    queue: Mutex<VecDeque<(String, PostableAlert)>>,
    capacity: usize,
    wake: Notify,
    client: reqwest::Client,
    refresh_interval: Duration,
    metrics: RulerMetrics,
}

impl Notifier {
    /// Builds the notifier from `ruler.*`; `None` when no Alertmanager is
    /// configured.
    pub fn new(
        config: &RulerConfig,
        metrics: RulerMetrics,
    ) -> Result<Option<Arc<Notifier>>, String> {
        let specs = discovery::split_urls(&config.alertmanager_url)
            .map(|url| AlertmanagerSpec::parse(url, config.enable_alertmanager_discovery))
            .collect::<Result<Vec<_>, _>>()?;
        if specs.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(config.notification_timeout)
            .build()
            .map_err(|err| format!("building the Alertmanager client: {err}"))?;
        Ok(Some(Arc::new(Notifier {
            specs,
            alertmanagers: RwLock::new(Vec::new()),
            queue: Mutex::new(VecDeque::new()),
            capacity: config.notification_queue_capacity,
            wake: Notify::new(),
            client,
            refresh_interval: config.alertmanager_refresh_interval,
            metrics,
        })))
    }

    /// Queues alerts of `tenant` for sending.
    pub fn send(&self, tenant: &str, alerts: Vec<PostableAlert>) {
        if alerts.is_empty() {
            return;
        }
        let mut dropped = 0;
        {
            let mut queue = self.queue.lock();
            for alert in alerts {
                if queue.len() >= self.capacity {
                    queue.pop_front();
                    dropped += 1;
                }
                queue.push_back((tenant.to_string(), alert));
            }
            self.metrics
                .notification_queue_length
                .set(queue.len() as i64);
        }
        if dropped > 0 {
            tracing::warn!(%tenant, dropped, "alert queue full, dropped the oldest alerts");
            self.metrics.notifications_dropped(tenant).inc_by(dropped);
        }
        self.wake.notify_one();
    }

    /// The Alertmanagers alerts currently go to.
    pub fn alertmanagers(&self) -> Vec<String> {
        self.alertmanagers.read().clone()
    }

    async fn refresh(&self, resolver: &Option<hickory_resolver::TokioResolver>) {
        let mut urls = Vec::new();
        for spec in &self.specs {
            match spec.resolve(resolver.as_ref()).await {
                Ok(found) => urls.extend(found),
                Err(error) => {
                    tracing::warn!(%error, "cannot discover Alertmanagers, keeping the last ones");
                    return;
                }
            }
        }
        urls.sort();
        urls.dedup();
        self.metrics.alertmanagers_discovered.set(urls.len() as i64);
        *self.alertmanagers.write() = urls;
    }

    /// Sends queued alerts until `shutdown`; also refreshes discovered
    /// Alertmanagers.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let resolver = match discovery::system_resolver() {
            Ok(resolver) => Some(resolver),
            Err(error) => {
                tracing::warn!(%error, "no DNS resolver: dnssrv+ Alertmanagers cannot be found");
                None
            }
        };
        self.refresh(&resolver).await;
        let dynamic = self.specs.iter().any(AlertmanagerSpec::is_dynamic);
        let mut refresh = tokio::time::interval(self.refresh_interval.max(Duration::from_secs(1)));
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = refresh.tick(), if dynamic => self.refresh(&resolver).await,
                () = self.wake.notified() => {}
            }
            loop {
                let batch = self.next_batch();
                if batch.is_empty() {
                    break;
                }
                self.post(batch).await;
            }
        }
        // One last attempt for what is queued (resolved alerts, mostly).
        loop {
            let batch = self.next_batch();
            if batch.is_empty() {
                break;
            }
            self.post(batch).await;
        }
    }

    /// Takes up to 64 queued alerts of one tenant.
    fn next_batch(&self) -> Vec<(String, PostableAlert)> {
        let mut queue = self.queue.lock();
        let Some((tenant, _)) = queue.front() else {
            return Vec::new();
        };
        let tenant = tenant.clone();
        let mut batch = Vec::new();
        let mut rest = VecDeque::with_capacity(queue.len());
        while let Some(item) = queue.pop_front() {
            if item.0 == tenant && batch.len() < MAX_BATCH {
                batch.push(item);
            } else {
                rest.push_back(item);
            }
        }
        *queue = rest;
        self.metrics
            .notification_queue_length
            .set(queue.len() as i64);
        batch
    }

    async fn post(&self, batch: Vec<(String, PostableAlert)>) {
        let tenant = batch[0].0.clone();
        let alerts: Vec<PostableAlert> = batch.into_iter().map(|(_, alert)| alert).collect();
        let body = match serde_json::to_vec(&alerts) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "cannot encode alerts");
                return;
            }
        };
        let targets = self.alertmanagers();
        if targets.is_empty() {
            tracing::warn!(%tenant, alerts = alerts.len(), "no Alertmanager to send alerts to");
            self.metrics
                .notifications_dropped(&tenant)
                .inc_by(alerts.len() as u64);
            return;
        }
        let sends = targets.iter().map(|base| {
            let request = self
                .client
                .post(format!("{base}/api/v2/alerts"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("X-Scope-OrgID", &tenant)
                .body(body.clone());
            async move {
                match request.send().await {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        Err(format!("{base}: {status}: {}", text.trim()))
                    }
                    Err(err) => Err(format!("{base}: {err}")),
                }
            }
        });
        let results = futures::future::join_all(sends).await;
        for result in results {
            match result {
                Ok(()) => {
                    self.metrics
                        .notifications_sent(&tenant)
                        .inc_by(alerts.len() as u64);
                }
                Err(error) => {
                    tracing::warn!(%tenant, %error, "error sending alerts to Alertmanager");
                    self.metrics
                        .notifications_errors(&tenant)
                        .inc_by(alerts.len() as u64);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_url_escapes_like_go() {
        assert_eq!(
            generator_url("http://sluice:3100/", "rate({level=\"error\"}[5m]) > 10"),
            "http://sluice:3100/graph?g0.expr=rate%28%7Blevel%3D%22error%22%7D%5B5m%5D%29+%3E+10&g0.tab=1"
        );
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
