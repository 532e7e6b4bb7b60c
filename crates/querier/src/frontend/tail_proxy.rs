//! `/loki/api/v1/tail` on a separate query frontend: a live tail is a
//! WebSocket, not a request the queue can hold, so the frontend proxies it
//! to a querier at `frontend.tail_proxy_url`, as Loki's frontend does. The
//! querier's handshake answer decides: a refusal (400 for a bad query, 401
//! without a tenant, 429 over the tail limit) reaches the client as that
//! HTTP answer; once both sides are upgraded every frame is relayed, close
//! frames included.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::{ErrorCode, HttpError};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, protocol::CloseFrame as UpstreamClose};

use super::Frontend;

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Returns the querier's WebSocket URL for `uri`'s query string.
fn upstream_url(base: &str, uri: &Uri) -> Result<String, HttpError> {
    let base = base.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_string()
    } else {
        return Err(HttpError::new(
            ErrorCode::Internal,
            format!("frontend.tail_proxy_url {base:?} must start with http:// or https://"),
        ));
    };
    Ok(match uri.query() {
        Some(query) => format!("{base}/loki/api/v1/tail?{query}"),
        None => format!("{base}/loki/api/v1/tail"),
    })
}

/// The handler: connects to a querier first, so that its refusal is the
/// client's answer, then upgrades and relays.
pub(super) async fn tail(
    State(frontend): State<Arc<Frontend>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let url = match upstream_url(&frontend.config.tail_proxy_url, request.uri()) {
        Ok(url) => url,
        Err(err) => return err.into_response(),
    };
    let mut upstream_request = match url.as_str().into_client_request() {
        Ok(upstream_request) => upstream_request,
        Err(err) => {
            return HttpError::new(ErrorCode::Internal, format!("tail proxy URL: {err}"))
                .into_response()
        }
    };
    for value in request.headers().get_all(ORG_ID_HEADER) {
        upstream_request
            .headers_mut()
            .append(ORG_ID_HEADER, value.clone());
    }
    // The querier's spans join this request's trace.
    for (name, value) in sluice_common::telemetry::context_headers(&tracing::Span::current()) {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(&value),
        ) {
            upstream_request.headers_mut().insert(name, value);
        }
    }
    let upstream = match tokio_tungstenite::connect_async(upstream_request).await {
        Ok((upstream, _)) => upstream,
        Err(tungstenite::Error::Http(answer)) => {
            let (parts, body) = answer.into_parts();
            let mut response = (parts.status, body.unwrap_or_default()).into_response();
            if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, content_type.clone());
            }
            return response;
        }
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("cannot reach a querier to tail: {err}\n"),
            )
                .into_response()
        }
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(move |client| relay(client, upstream))
}

/// Relays frames both ways until either side closes.
async fn relay(client: WebSocket, upstream: Upstream) {
    let (mut client_tx, mut client_rx) = client.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let down = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let closing = matches!(message, tungstenite::Message::Close(_));
            if let Some(message) = to_client(message) {
                if client_tx.send(message).await.is_err() {
                    break;
                }
            }
            if closing {
                break;
            }
        }
        let _ = client_tx.close().await;
    };
    let up = async {
        while let Some(Ok(message)) = client_rx.next().await {
            let closing = matches!(message, Message::Close(_));
            if upstream_tx.send(to_upstream(message)).await.is_err() || closing {
                break;
            }
        }
        let _ = upstream_tx.close().await;
    };
    // Whichever side ends first ends the session.
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}

fn to_client(message: tungstenite::Message) -> Option<Message> {
    Some(match message {
        tungstenite::Message::Text(text) => Message::Text(text.as_str().into()),
        tungstenite::Message::Binary(bytes) => Message::Binary(bytes),
        tungstenite::Message::Ping(bytes) => Message::Ping(bytes),
        tungstenite::Message::Pong(bytes) => Message::Pong(bytes),
        tungstenite::Message::Close(frame) => Message::Close(frame.map(|frame| CloseFrame {
            code: frame.code.into(),
            reason: frame.reason.as_str().into(),
        })),
        tungstenite::Message::Frame(_) => return None,
    })
}

fn to_upstream(message: Message) -> tungstenite::Message {
    match message {
        Message::Text(text) => tungstenite::Message::Text(text.as_str().into()),
        Message::Binary(bytes) => tungstenite::Message::Binary(bytes),
        Message::Ping(bytes) => tungstenite::Message::Ping(bytes),
        Message::Pong(bytes) => tungstenite::Message::Pong(bytes),
        Message::Close(frame) => tungstenite::Message::Close(frame.map(|frame| UpstreamClose {
            code: CloseCode::from(frame.code),
            reason: frame.reason.as_str().into(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_querier_url_keeps_the_query_string() {
        let uri: Uri = "/loki/api/v1/tail?query=%7Ba%3D%22b%22%7D&limit=5"
            .parse()
            .unwrap();
        assert_eq!(
            upstream_url("http://querier:3100/", &uri).unwrap(),
            "ws://querier:3100/loki/api/v1/tail?query=%7Ba%3D%22b%22%7D&limit=5"
        );
        assert_eq!(
            upstream_url("https://q.example", &uri).unwrap(),
            "wss://q.example/loki/api/v1/tail?query=%7Ba%3D%22b%22%7D&limit=5"
        );
        assert!(upstream_url("querier:3100", &uri).is_err());
    }
}
