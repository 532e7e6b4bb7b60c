//! The live-tail receive path: a WebSocket on `/loki/api/v1/tail`, read as
//! Loki's canary reads it (frames of `{"streams":[…],"dropped_entries":[…]}`),
//! reconnecting after errors, silence or a closed connection.
//!
//! Unlike Loki's canary, every connection names its `start`: the first one
//! the canary's start (lines of an earlier run are not this canary's), a
//! reconnection just after the newest entry received. The server's
//! backfill then brings the entries written while the tail was down, not
//! copies of those already received, which would count as duplicates.

use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::metrics::CanaryMetrics;
use super::reader::parse_canary_line;

/// Where and how to tail.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// `ws://host:port` (or `wss://`), without a path.
    pub base_url: String,
    /// LogQL selector to tail.
    pub selector: String,
    /// `X-Scope-OrgID`, unless basic auth is used.
    pub tenant: Option<String>,
    /// User and password for basic auth.
    pub basic_auth: Option<(String, String)>,
    /// The canary's write interval: silence for 10 intervals means the
    /// tail is stuck and is reconnected.
    pub interval: Duration,
    /// Pause before reconnecting (Loki's canary waits 10 s).
    pub reconnect_delay: Duration,
    /// When the canary started (ns): the first connection's `start`.
    pub since: i64,
}

/// One tail frame, decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TailFrame {
    /// Canary timestamps of the entries in the frame.
    pub timestamps: Vec<i64>,
    /// Lines that were not canary lines.
    pub invalid: Vec<String>,
    /// Entries the server reported as dropped.
    pub dropped: usize,
}

#[derive(Deserialize)]
struct TailResponse {
    #[serde(default)]
    streams: Vec<TailStream>,
    #[serde(default)]
    dropped_entries: Option<Vec<serde_json::Value>>,
}

#[derive(Deserialize)]
struct TailStream {
    values: Vec<(String, String)>,
}

/// Decodes a tail frame's JSON text.
pub fn parse_tail_frame(text: &str) -> Result<TailFrame, String> {
    let response: TailResponse =
        serde_json::from_str(text).map_err(|err| format!("invalid tail frame: {err}"))?;
    let mut frame = TailFrame {
        dropped: response.dropped_entries.map_or(0, |dropped| dropped.len()),
        ..TailFrame::default()
    };
    for stream in response.streams {
        for (_, line) in stream.values {
            match parse_canary_line(&line) {
                Ok(ts) => frame.timestamps.push(ts),
                Err(err) => frame.invalid.push(err),
            }
        }
    }
    Ok(frame)
}

/// Tails until `shutdown`, sending every received canary timestamp to
/// `received`.
pub async fn run_tail(
    config: TailConfig,
    received: mpsc::Sender<i64>,
    metrics: CanaryMetrics,
    shutdown: CancellationToken,
) {
    let mut connected_before = false;
    let mut newest = None;
    loop {
        let start = newest.map_or(config.since, |newest: i64| newest + 1);
        let request = match tail_request(&config, start) {
            Ok(request) => request,
            Err(err) => {
                eprintln!("canary: cannot build the tail request: {err}");
                return;
            }
        };
        let connection = tokio::select! {
            connection = tokio_tungstenite::connect_async(request) => connection,
            _ = shutdown.cancelled() => return,
        };
        let reason = match connection {
            Ok((socket, _)) => {
                if connected_before {
                    metrics.ws_reconnects.inc();
                }
                connected_before = true;
                eprintln!("canary: tailing {} at {}", config.selector, config.base_url);
                let read =
                    read_frames(socket, &config, &received, &metrics, &shutdown, &mut newest);
                match read.await {
                    Some(reason) => reason,
                    None => return,
                }
            }
            Err(err) => format!("failed to connect to {}: {err}", config.base_url),
        };
        eprintln!(
            "canary: {reason}, will retry in {:?}",
            config.reconnect_delay
        );
        tokio::select! {
            _ = tokio::time::sleep(config.reconnect_delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn tail_request(
    config: &TailConfig,
    start: i64,
) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
    let mut url = reqwest::Url::parse(&format!(
        "{}/loki/api/v1/tail",
        config.base_url.trim_end_matches('/')
    ))
    .map_err(|err| err.to_string())?;
    url.query_pairs_mut()
        .append_pair("query", &config.selector)
        .append_pair("start", &start.to_string());
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| err.to_string())?;
    let header = if let Some((user, pass)) = &config.basic_auth {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        Some(("authorization", format!("Basic {token}")))
    } else {
        config
            .tenant
            .as_ref()
            .map(|tenant| ("x-scope-orgid", tenant.clone()))
    };
    if let Some((name, value)) = header {
        let value = HeaderValue::from_str(&value).map_err(|err| err.to_string())?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

/// Reads frames until something goes wrong (returns why) or `shutdown`
/// fires (returns `None`); `newest` tracks the newest entry received.
async fn read_frames<S>(
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    config: &TailConfig,
    received: &mpsc::Sender<i64>,
    metrics: &CanaryMetrics,
    shutdown: &CancellationToken,
    newest: &mut Option<i64>,
) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let silence_limit = config.interval * 10;
    let mut last_entries = Instant::now();
    loop {
        let message = tokio::select! {
            message = tokio::time::timeout(silence_limit, socket.next()) => message,
            _ = shutdown.cancelled() => {
                let _ = socket.close(None).await;
                return None;
            }
        };
        match message {
            Err(_) => {
                return Some(format!(
                    "timeout tailing new logs (timeout period: {:.2}s)",
                    silence_limit.as_secs_f64()
                ))
            }
            Ok(None) => return Some("the tail connection closed".to_owned()),
            Ok(Some(Err(err))) => return Some(format!("error reading websocket: {err}")),
            Ok(Some(Ok(Message::Text(text)))) => match parse_tail_frame(text.as_str()) {
                Ok(frame) => {
                    if !frame.timestamps.is_empty() {
                        last_entries = Instant::now();
                    }
                    for err in frame.invalid {
                        eprintln!("canary: {err}");
                    }
                    for ts in frame.timestamps {
                        *newest = Some(newest.map_or(ts, |newest| newest.max(ts)));
                        if received.send(ts).await.is_err() {
                            return None;
                        }
                    }
                }
                Err(err) => eprintln!("canary: {err}"),
            },
            Ok(Some(Ok(Message::Ping(_)))) => {
                metrics.ws_pings.inc();
                // tungstenite queued the pong; send it now.
                let _ = socket.flush().await;
            }
            Ok(Some(Ok(Message::Close(_)))) => {
                return Some("the server closed the tail connection".to_owned())
            }
            Ok(Some(Ok(_))) => {}
        }
        // Pings keep the socket alive; entries must keep coming too.
        if last_entries.elapsed() > silence_limit {
            return Some(format!(
                "have not received a canary message on the websocket in {silence_limit:?}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use prometheus_client::registry::Registry;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    use super::*;

    #[test]
    fn frames_in_lokis_format_decode() {
        let text = r#"{"streams":[{"stream":{"name":"loki-canary","stream":"stdout"},"values":[["1700000000000000001","1700000000000000001 pppp"],["1700000000000000002","1700000000000000002 pppp"]]}],"dropped_entries":[{"labels":{"name":"loki-canary"},"timestamp":"1700000000000000000"}]}"#;
        assert_eq!(
            parse_tail_frame(text),
            Ok(TailFrame {
                timestamps: vec![1_700_000_000_000_000_001, 1_700_000_000_000_000_002],
                invalid: vec![],
                dropped: 1,
            })
        );
        let frame = parse_tail_frame(r#"{"streams":[{"stream":{},"values":[["1","hello"]]}]}"#)
            .expect("valid frame");
        assert_eq!((frame.timestamps.len(), frame.invalid.len()), (0, 1));
        assert!(parse_tail_frame("{not json").is_err());
    }

    fn frame(timestamps: &[i64]) -> String {
        let values: Vec<serde_json::Value> = timestamps
            .iter()
            .map(|ts| serde_json::json!([ts.to_string(), format!("{ts} ppppp")]))
            .collect();
        serde_json::json!({
            "streams": [{"stream": {"name": "loki-canary", "stream": "stdout"}, "values": values}],
            "dropped_entries": null
        })
        .to_string()
    }

    /// A tail server: the first connection sends two frames and a ping,
    /// then drops; the second sends one more frame and stays open.
    #[tokio::test]
    // The handshake callback's signature (and its large error) is tungstenite's.
    #[allow(clippy::result_large_err)]
    async fn tails_reconnects_and_counts_pings() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let server = tokio::spawn(async move {
            for connection in 0..2 {
                let (stream, _) = listener.accept().await.expect("accept");
                let seen = seen.clone();
                let callback = move |request: &Request, response: Response| {
                    let tenant = request
                        .headers()
                        .get("x-scope-orgid")
                        .map(|value| value.to_str().expect("ascii").to_owned());
                    seen.lock()
                        .expect("lock")
                        .push((request.uri().to_string(), tenant));
                    Ok(response)
                };
                let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback)
                    .await
                    .expect("handshake");
                if connection == 0 {
                    socket
                        .send(Message::text(frame(&[10, 11])))
                        .await
                        .expect("send");
                    socket
                        .send(Message::Ping(vec![1].into()))
                        .await
                        .expect("ping");
                    socket
                        .send(Message::text(frame(&[12])))
                        .await
                        .expect("send");
                    // Wait for the pong, then drop the connection.
                    while let Some(Ok(message)) = socket.next().await {
                        if matches!(message, Message::Pong(_)) {
                            break;
                        }
                    }
                    drop(socket);
                } else {
                    socket
                        .send(Message::text(frame(&[13])))
                        .await
                        .expect("send");
                    // Keep the connection open until the client goes away.
                    while let Some(Ok(_)) = socket.next().await {}
                }
            }
        });

        let mut registry = Registry::default();
        let metrics = CanaryMetrics::new(&mut registry, 10);
        let (sender, mut receiver) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let config = TailConfig {
            base_url: format!("ws://{addr}"),
            selector: r#"{stream="stdout",name="loki-canary"}"#.to_owned(),
            tenant: Some("team-a".to_owned()),
            basic_auth: None,
            interval: Duration::from_secs(1),
            reconnect_delay: Duration::from_millis(10),
            since: 5,
        };
        let tail = tokio::spawn(run_tail(config, sender, metrics.clone(), shutdown.clone()));
        let mut got = Vec::new();
        while got.len() < 4 {
            let ts = tokio::time::timeout(Duration::from_secs(10), receiver.recv())
                .await
                .expect("entries arrive")
                .expect("tail running");
            got.push(ts);
        }
        assert_eq!(got, [10, 11, 12, 13]);
        assert_eq!(metrics.ws_pings.get(), 1);
        assert_eq!(metrics.ws_reconnects.get(), 1);
        shutdown.cancel();
        tail.await.expect("tail stops");
        server.await.expect("server done");
        let requests = requests.lock().expect("lock").clone();
        assert_eq!(requests.len(), 2);
        // The first connection starts at the canary's start, the second
        // just after the newest entry received (12).
        for ((uri, tenant), start) in requests.into_iter().zip([5, 13]) {
            assert_eq!(
                uri,
                format!("/loki/api/v1/tail?query=%7Bstream%3D%22stdout%22%2Cname%3D%22loki-canary%22%7D&start={start}")
            );
            assert_eq!(tenant.as_deref(), Some("team-a"));
        }
    }

    #[tokio::test]
    async fn silence_makes_the_tail_reconnect() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let mut sockets = Vec::new();
            for _ in 0..2 {
                let (stream, _) = listener.accept().await.expect("accept");
                // Accept and say nothing.
                sockets.push(
                    tokio_tungstenite::accept_async(stream)
                        .await
                        .expect("handshake"),
                );
            }
            sockets
        });
        let mut registry = Registry::default();
        let metrics = CanaryMetrics::new(&mut registry, 10);
        let (sender, _receiver) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let config = TailConfig {
            base_url: format!("ws://{addr}"),
            selector: "{a=\"b\"}".to_owned(),
            tenant: None,
            basic_auth: Some(("user".to_owned(), "pass".to_owned())),
            interval: Duration::from_millis(20),
            reconnect_delay: Duration::from_millis(10),
            since: 0,
        };
        let tail = tokio::spawn(run_tail(config, sender, metrics.clone(), shutdown.clone()));
        let sockets = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the client reconnects")
            .expect("server ok");
        assert_eq!(sockets.len(), 2);
        // The server sees the new connection before the client counts it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while metrics.ws_reconnects.get() < 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown.cancel();
        tail.await.expect("tail stops");
        assert!(metrics.ws_reconnects.get() >= 1);
    }

    #[test]
    fn basic_auth_wins_over_the_tenant_header() {
        let config = TailConfig {
            base_url: "ws://loki:3100".to_owned(),
            selector: "{a=\"b\"}".to_owned(),
            tenant: Some("t".to_owned()),
            basic_auth: Some(("user".to_owned(), "pass".to_owned())),
            interval: Duration::from_secs(1),
            reconnect_delay: Duration::from_secs(1),
            since: 0,
        };
        let request = tail_request(&config, 0).expect("request");
        assert_eq!(request.headers()["authorization"], "Basic dXNlcjpwYXNz");
        assert!(request.headers().get("x-scope-orgid").is_none());
        assert_eq!(request.uri().path(), "/loki/api/v1/tail");
    }
}
