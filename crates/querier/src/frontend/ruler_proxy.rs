//! The rules and alerts API on a separate query frontend: Grafana's
//! alerting UI and rule editor call them on the data source's URL, which
//! in the microservices layout is the frontend. With
//! `frontend.ruler_proxy_url` set, the frontend forwards those requests
//! (method, path, query, tenant header, body) to a ruler and returns its
//! answer unchanged; any ruler answers for the whole ring.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use sluice_common::tenant::ORG_ID_HEADER;

use super::Frontend;

/// Largest rule-group body forwarded.
const MAX_BODY: usize = 4 << 20;

/// The ruler's API paths (Loki's and the Prometheus-compatible ones).
const PATHS: &[&str] = &[
    "/prometheus/api/v1/rules",
    "/prometheus/api/v1/alerts",
    "/loki/api/v1/rules",
    "/loki/api/v1/rules/{*rest}",
    "/api/prom/rules",
    "/api/prom/rules/{*rest}",
    "/api/prom/api/v1/rules",
    "/api/prom/api/v1/alerts",
];

/// The proxy's routes, forwarding to `base` (`http://ruler:3100`).
pub(super) fn router(frontend: Arc<Frontend>) -> Router {
    let mut router = Router::new();
    for path in PATHS {
        router = router.route(path, any(forward));
    }
    router.with_state(frontend)
}

async fn forward(State(frontend): State<Arc<Frontend>>, request: Request) -> Response {
    let base = frontend.config.ruler_proxy_url.trim_end_matches('/');
    let path = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(body) => body,
        Err(err) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("reading the request body: {err}\n"),
            )
                .into_response()
        }
    };
    let mut upstream = frontend
        .ruler_client
        .request(method, format!("{base}{path}"))
        .body(body);
    for name in [
        ORG_ID_HEADER,
        header::CONTENT_TYPE.as_str(),
        header::ACCEPT.as_str(),
    ] {
        for value in headers.get_all(name) {
            upstream = upstream.header(name, value.clone());
        }
    }
    // The ruler's spans join this request's trace.
    for (name, value) in sluice_common::telemetry::context_headers(&tracing::Span::current()) {
        upstream = upstream.header(name, value);
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("cannot reach the ruler at {base}: {err}\n"),
            )
                .into_response()
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let body: Bytes = match answer.bytes().await {
        Ok(body) => body,
        Err(err) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("reading the ruler's answer: {err}\n"),
            )
                .into_response()
        }
    };
    let mut response = (status, body).into_response();
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    } else {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}
