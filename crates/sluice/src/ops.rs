//! Operational endpoints: `/ready`, `/metrics`, `/config`, `/services`,
//! `/loki/api/v1/status/buildinfo`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sluice_common::readiness::Readiness;

use crate::config::Config;
use crate::telemetry::RegistryHandle;

/// What the operational endpoints read.
#[derive(Clone)]
pub(crate) struct OpsState {
    pub(crate) readiness: Readiness,
    pub(crate) registry: RegistryHandle,
    pub(crate) config: Arc<Config>,
}

pub(crate) fn router(state: OpsState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .route("/services", get(services))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .with_state(state)
}

async fn ready(State(state): State<OpsState>) -> Response {
    match state.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn services(State(state): State<OpsState>) -> Response {
    let mut body = String::new();
    for (module, ready) in state.readiness.states() {
        let status = if ready { "Running" } else { "Starting" };
        body.push_str(&format!("{module} => {status}\n"));
    }
    body.into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    match state.registry.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {err}\n"),
        )
            .into_response(),
    }
}

/// `/config` (effective), `?mode=defaults`, `?mode=diff` (only what differs
/// from the defaults), as in Loki.
async fn config(State(state): State<OpsState>, RawQuery(raw_query): RawQuery) -> Response {
    let mode = raw_query
        .as_deref()
        .and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "mode")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    let body = match mode.as_str() {
        "" => state.config.to_yaml(),
        "defaults" => Config::default().to_yaml(),
        "diff" => {
            let effective = serde_json::to_value(&*state.config).unwrap_or_default();
            let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
            let diff = diff_values(&effective, &defaults).unwrap_or(serde_json::json!({}));
            serde_norway::to_string(&diff).unwrap_or_default()
        }
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown value for mode query parameter: {other:?}\n"),
            )
                .into_response()
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Returns the parts of `value` that differ from `base`.
fn diff_values(value: &serde_json::Value, base: &serde_json::Value) -> Option<serde_json::Value> {
    match (value, base) {
        (serde_json::Value::Object(map), serde_json::Value::Object(base_map)) => {
            let mut out = serde_json::Map::new();
            for (key, child) in map {
                let changed = match base_map.get(key) {
                    Some(base_child) => diff_values(child, base_child),
                    None => Some(child.clone()),
                };
                if let Some(changed) = changed {
                    out.insert(key.clone(), changed);
                }
            }
            (!out.is_empty()).then_some(serde_json::Value::Object(out))
        }
        _ => (value != base).then(|| value.clone()),
    }
}

async fn buildinfo() -> Response {
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": env!("SLUICE_REVISION"),
        "branch": env!("SLUICE_BRANCH"),
        "buildUser": env!("SLUICE_BUILD_USER"),
        "buildDate": env!("SLUICE_BUILD_DATE"),
        "goVersion": env!("SLUICE_RUSTC_VERSION"),
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_only_changes() {
        let base = serde_json::json!({"server": {"port": 1, "addr": "x"}, "auth": true});
        let value = serde_json::json!({"server": {"port": 2, "addr": "x"}, "auth": true});
        assert_eq!(
            diff_values(&value, &base),
            Some(serde_json::json!({"server": {"port": 2}}))
        );
        assert_eq!(diff_values(&base, &base), None);
    }
}
