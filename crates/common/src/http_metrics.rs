//! `loki_request_duration_seconds`: a histogram of every HTTP request by
//! method, route, status code and whether it was a WebSocket, with Loki's
//! route names (`loki_api_v1_query_range`, `loki_api_v1_label_name_values`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `loki_request_duration_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    method: String,
    route: String,
    status_code: String,
    ws: String,
}

/// HTTP request metrics, shared by every route of a process.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    request_duration: Family<RequestLabels, Histogram>,
}

impl HttpMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> HttpMetrics {
        let request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
            ])
        });
        registry.register(
            "loki_request_duration_seconds",
            "Time (in seconds) spent serving HTTP requests.",
            request_duration.clone(),
        );
        HttpMetrics { request_duration }
    }
}

/// Returns Loki's route name for a matched axum path.
pub fn route_name(matched_path: &str) -> String {
    let mut route = String::with_capacity(matched_path.len());
    for segment in matched_path
        .split('/')
        .filter(|segment| !segment.is_empty())
    {
        if !route.is_empty() {
            route.push('_');
        }
        let name = segment
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
            .map(|inner| inner.trim_start_matches('*'))
            .unwrap_or(segment);
        route.extend(
            name.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    if route.is_empty() {
        "root".to_string()
    } else {
        route
    }
}

/// axum middleware recording the request into [`HttpMetrics`].
pub async fn track(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| route_name(path.as_str()))
        .unwrap_or_else(|| "other".to_string());
    let websocket = request
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let response = next.run(request).await;
    metrics
        .request_duration
        .get_or_create(&RequestLabels {
            method,
            route,
            status_code: response.status().as_u16().to_string(),
            ws: websocket.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_follow_loki() {
        assert_eq!(route_name("/loki/api/v1/push"), "loki_api_v1_push");
        assert_eq!(
            route_name("/loki/api/v1/label/{name}/values"),
            "loki_api_v1_label_name_values"
        );
        assert_eq!(route_name("/api/prom/push"), "api_prom_push");
        assert_eq!(route_name("/ready"), "ready");
        assert_eq!(route_name("/"), "root");
    }
}
