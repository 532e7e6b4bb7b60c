//! Traces of HTTP requests: a server span per request, child of the W3C
//! trace context the client sent (`traceparent`), and the trace id in the
//! `X-Trace-Id` response header so a user can look up the trace of a slow
//! query. Stage spans inside the services use [`stage_span!`]. Everything
//! here is a no-op when the process exports no traces (spans disabled).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue};
use tracing::Instrument;

pub use sluice_proto::trace_context::{inject, set_parent_from, trace_id, SPAN_TARGET};

/// The response header carrying the request's trace id (32 hex digits),
/// present when the request was traced and sampled.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Routes scraped or probed every few seconds: tracing them would bury
/// the traces anyone looks for.
const UNTRACED_ROUTES: &[&str] = &["/metrics", "/ready"];

/// The longest valid tenant id; a longer header is cut for the attribute.
const MAX_TENANT_CHARS: usize = 150;

/// A span for one stage of a request (`stage_span!("querier.store",
/// tenant = %tenant)`): exported as part of the trace when tracing is on,
/// free (disabled) when it is off.
#[macro_export]
macro_rules! stage_span {
    ($name:literal $($fields:tt)*) => {
        ::tracing::info_span!(target: $crate::telemetry::SPAN_TARGET, $name $($fields)*)
    };
}

/// axum middleware: traces one HTTP request.
pub async fn trace_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_default();
    if UNTRACED_ROUTES.contains(&route.as_str()) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_string();
    let tenant: String = request
        .headers()
        .get(crate::tenant::ORG_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.chars().take(MAX_TENANT_CHARS).collect())
        .unwrap_or_default();
    let span = stage_span!(
        "http.server",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        tenant = %ShowTenant(&tenant),
    );
    if span.is_disabled() {
        return next.run(request).await;
    }
    set_parent_from(&span, request.headers());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    if let Some(id) = trace_id(&span).and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(TRACE_ID_HEADER, id);
    }
    response
}

/// The tenant header as sent, or `-` when absent.
struct ShowTenant<'a>(&'a str);

impl std::fmt::Display for ShowTenant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(self.0)
        }
    }
}

/// Returns the headers (`traceparent`, `tracestate`) that carry `span`'s
/// trace context, for protocols that forward headers as data (the query
/// frontend's worker protocol).
pub fn context_headers(span: &tracing::Span) -> Vec<(String, String)> {
    let mut headers = HeaderMap::new();
    inject(span, &mut headers);
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// The trace id of the current span, for log lines (`-` when untraced).
pub fn current_trace_id() -> String {
    trace_id(&tracing::Span::current()).unwrap_or_else(|| "-".to_string())
}
