//! A blocking WebSocket client for `GET /loki/api/v1/tail`, as Grafana's
//! live tail and `logcli --tail` use it.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::{Labels, SluiceProcess, Value};

/// How long one read waits before the client checks its deadline again.
const READ_SLICE: Duration = Duration::from_millis(200);

/// One received tail entry: stream labels, timestamp, line.
pub type TailEntry = (Labels, i64, String);

/// How a tail session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Close code (1011 for Loki's errors), if a close frame came.
    pub code: Option<u16>,
    /// Close reason text.
    pub reason: String,
}

/// An open tail.
pub struct TailClient {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Every frame received, as JSON.
    pub frames: Vec<Value>,
    /// Pings received.
    pub pings: usize,
    /// Set once the server closed the socket.
    pub closed: Option<Closed>,
}

impl TailClient {
    /// Connects to `p`'s tail endpoint with these query parameters.
    pub fn connect(p: &SluiceProcess, params: &[(&str, &str)]) -> TailClient {
        TailClient::connect_as(p, None, params)
    }

    /// [`TailClient::connect`] with `X-Scope-OrgID: tenant` when given.
    pub fn connect_as(
        p: &SluiceProcess,
        tenant: Option<&str>,
        params: &[(&str, &str)],
    ) -> TailClient {
        let headers: Vec<(&str, &str)> = tenant
            .map(|tenant| ("X-Scope-OrgID", tenant))
            .into_iter()
            .collect();
        TailClient::connect_with_headers(p, &headers, params)
    }

    /// [`TailClient::connect`] sending these request headers too.
    pub fn connect_with_headers(
        p: &SluiceProcess,
        headers: &[(&str, &str)],
        params: &[(&str, &str)],
    ) -> TailClient {
        let query: String = params
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("ws://127.0.0.1:{}/loki/api/v1/tail?{query}", p.http_port());
        let mut request = url
            .as_str()
            .into_client_request()
            .unwrap_or_else(|err| panic!("tail URL {url}: {err}"));
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        let (socket, response) =
            tungstenite::connect(request).unwrap_or_else(|err| panic!("tail connect {url}: {err}"));
        assert_eq!(response.status().as_u16(), 101, "upgrade to WebSocket");
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream
                .set_read_timeout(Some(READ_SLICE))
                .expect("set read timeout");
        }
        TailClient {
            socket,
            frames: Vec::new(),
            pings: 0,
            closed: None,
        }
    }

    /// Reads until `done(received entries)` holds, the socket closes, or
    /// `timeout` passes; returns every entry received so far.
    pub fn read_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&[TailEntry]) -> bool,
    ) -> Vec<TailEntry> {
        let deadline = Instant::now() + timeout;
        loop {
            let entries = self.entries();
            if done(&entries) || self.closed.is_some() || Instant::now() >= deadline {
                return entries;
            }
            self.read_once();
        }
    }

    /// Reads one message, if one comes within the read slice.
    fn read_once(&mut self) {
        match self.socket.read() {
            Ok(Message::Text(text)) => {
                let frame: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|err| panic!("tail frame is not JSON ({err}): {text}"));
                self.frames.push(frame);
            }
            Ok(Message::Ping(_)) => self.pings += 1,
            Ok(Message::Close(frame)) => {
                self.closed = Some(Closed {
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                });
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_)
                | tungstenite::Error::Io(_),
            ) => {
                if self.closed.is_none() {
                    self.closed = Some(Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
            }
            Err(err) => panic!("tail read failed: {err}"),
        }
    }

    /// Waits (≤ `timeout`) for the server to close the socket.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<Closed> {
        self.read_until(timeout, |_| false);
        self.closed.clone()
    }

    /// Every entry of every frame so far, in arrival order. Panics if a
    /// frame is not Loki's shape: `streams` (each `stream` + `values` of
    /// `["<ns>","<line>"]`) and, only when non-empty, `dropped_entries`.
    pub fn entries(&self) -> Vec<TailEntry> {
        let mut out = Vec::new();
        for frame in &self.frames {
            let object = frame.as_object().expect("frame is an object");
            let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            assert!(
                keys == BTreeSet::from(["streams"])
                    || keys == BTreeSet::from(["streams", "dropped_entries"]),
                "frame keys {keys:?}: {frame}"
            );
            if let Some(dropped) = object.get("dropped_entries") {
                assert!(
                    dropped.as_array().is_some_and(|d| !d.is_empty()),
                    "dropped_entries present only when non-empty: {frame}"
                );
            }
            for stream in object["streams"].as_array().expect("streams array") {
                let labels_map: Labels = stream["stream"]
                    .as_object()
                    .expect("stream labels object")
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_string()))
                    .collect();
                for value in stream["values"].as_array().expect("values array") {
                    let ts: i64 = value[0]
                        .as_str()
                        .expect("timestamp string")
                        .parse()
                        .expect("timestamp integer");
                    let line = value[1].as_str().expect("line string").to_string();
                    out.push((labels_map.clone(), ts, line));
                }
            }
        }
        out
    }

    /// Number of dropped entries reported so far.
    pub fn dropped(&self) -> usize {
        self.frames
            .iter()
            .filter_map(|frame| frame.get("dropped_entries"))
            .filter_map(Value::as_array)
            .map(Vec::len)
            .sum()
    }

    /// Closes the socket (normal closure).
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
