//! Writing canary entries: one `<unix ns> ppp…` line per interval, pushed
//! through the push API (protobuf + snappy) with retries, or printed to
//! stdout for an agent to ship.

use std::time::Duration;

use prost::Message;
use sluice_proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::CanaryMetrics;

/// Entries sent in one push at most (when pushes fall behind).
const MAX_BATCH: usize = 1000;

/// Returns the canary line for `ts`: the timestamp, a space and `p`s up to
/// `size` bytes (longer when the timestamp alone exceeds it).
pub fn canary_line(ts: i64, size: usize) -> String {
    let mut line = ts.to_string();
    line.push(' ');
    let padding = size.saturating_sub(line.len()).max(1);
    line.extend(std::iter::repeat_n('p', padding));
    line
}

/// How to push entries and retry failed pushes.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// Base URL of the server.
    pub base_url: String,
    /// Label set, e.g. `{name="loki-canary", stream="stdout"}`.
    pub labels: String,
    /// `X-Scope-OrgID`, unless basic auth is used.
    pub tenant: Option<String>,
    /// User and password for basic auth.
    pub basic_auth: Option<(String, String)>,
    /// Timeout of one push.
    pub timeout: Duration,
    /// First retry delay, doubled per retry up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Retries before a batch is given up.
    pub max_retries: u32,
}

/// Where written entries go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// The push API.
    Push(PushTarget),
    /// Standard output (Loki canary's default, for an agent to ship).
    Stdout,
}

/// Pushes (or prints) entries from `entries` until the channel closes or
/// `shutdown` fires. Entries that queued up while a push was in flight go
/// out together in the next push.
pub async fn run_sink(
    sink: Sink,
    mut entries: mpsc::Receiver<(i64, String)>,
    metrics: CanaryMetrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let target = match sink {
        Sink::Stdout => {
            while let Some((_, line)) = entries.recv().await {
                println!("{line}");
            }
            return Ok(());
        }
        Sink::Push(target) => target,
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(target.timeout)
        .user_agent(concat!("sluice-canary/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let url = format!("{}/loki/api/v1/push", target.base_url.trim_end_matches('/'));
    loop {
        let first = tokio::select! {
            entry = entries.recv() => match entry {
                Some(entry) => entry,
                None => return Ok(()),
            },
            _ = shutdown.cancelled() => return Ok(()),
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match entries.try_recv() {
                Ok(entry) => batch.push(entry),
                Err(_) => break,
            }
        }
        let body = encode(&target.labels, &batch);
        if let Err(err) = push_with_retries(&client, &url, &target, body, &shutdown).await {
            metrics.push_errors.inc();
            eprintln!(
                "canary: giving up on {} entries after {} retries: {err}",
                batch.len(),
                target.max_retries
            );
        }
    }
}

fn encode(labels: &str, batch: &[(i64, String)]) -> Vec<u8> {
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.to_owned(),
            entries: batch
                .iter()
                .map(|(ts, line)| EntryAdapter {
                    timestamp: Some(sluice_proto::timestamp_from_nanos(*ts)),
                    line: line.clone(),
                    structured_metadata: Vec::new(),
                })
                .collect(),
            hash: 0,
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&request.encode_to_vec())
        .expect("snappy accepts any input below 4 GiB")
}

/// Pushes `body`, retrying transport errors, 429 and 5xx with exponential
/// backoff; other statuses are not retried (the request itself is wrong).
async fn push_with_retries(
    client: &reqwest::Client,
    url: &str,
    target: &PushTarget,
    body: Vec<u8>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut backoff = target.min_backoff;
    let mut attempt = 0;
    loop {
        let mut request = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .body(body.clone());
        if let Some((user, pass)) = &target.basic_auth {
            request = request.basic_auth(user, Some(pass));
        } else if let Some(tenant) = &target.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        let error = match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let message = response.text().await.unwrap_or_default();
                let error = format!("server returned {status}: {}", message.trim());
                if !(status.is_server_error() || status.as_u16() == 429) {
                    return Err(error);
                }
                error
            }
            Err(err) => format!("push failed: {err}"),
        };
        attempt += 1;
        if attempt > target.max_retries {
            return Err(error);
        }
        eprintln!("canary: {error}, retrying in {backoff:?}");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => return Err(error),
        }
        backoff = (backoff * 2).min(target.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_padded_to_size() {
        let line = canary_line(1_557_935_669_096_040_040, 100);
        assert_eq!(line.len(), 100);
        assert!(line.starts_with("1557935669096040040 ppp"));
        assert!(line[20..].bytes().all(|b| b == b'p'));
        assert_eq!(canary_line(5, 0), "5 p");
    }

    #[test]
    fn batches_encode_as_one_stream() {
        let body = encode(
            r#"{name="loki-canary", stream="stdout"}"#,
            &[(1, "1 p".to_owned()), (2, "2 p".to_owned())],
        );
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("snappy");
        let request = PushRequest::decode(raw.as_slice()).expect("protobuf");
        assert_eq!(request.streams.len(), 1);
        assert_eq!(request.streams[0].entries.len(), 2);
        assert_eq!(request.streams[0].entries[1].line, "2 p");
    }
}
