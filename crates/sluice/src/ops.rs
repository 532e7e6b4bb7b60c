//! Operational endpoints: `/ready`, `/metrics`, `/config`,
//! `/runtime_config`, `/services`, `/loki/api/v1/status/buildinfo`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sluice_common::readiness::Readiness;
use sluice_common::Overrides;

use crate::config::Config;
use crate::telemetry::RegistryHandle;

/// What the operational endpoints read.
#[derive(Clone)]
pub(crate) struct OpsState {
    pub(crate) readiness: Readiness,
    pub(crate) registry: RegistryHandle,
    pub(crate) config: Arc<Config>,
    pub(crate) overrides: Arc<Overrides>,
}

pub(crate) fn router(state: OpsState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .route("/runtime_config", get(runtime_config))
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

/// Serves OpenMetrics when the scraper asks for it (Prometheus does), and
/// the classic Prometheus text format otherwise, as Loki does.
async fn metrics(State(state): State<OpsState>, headers: HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    match state.registry.encode() {
        Ok(text) if wants_openmetrics => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            openmetrics_to_prometheus_text(&text),
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {err}\n"),
        )
            .into_response(),
    }
}

/// Rewrites OpenMetrics text into the Prometheus 0.0.4 text format: counter
/// families are named with their `_total` suffix in HELP/TYPE, and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go.
fn openmetrics_to_prometheus_text(text: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_string());
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        // OpenMetrics' `unknown` is the 0.0.4 format's `untyped`.
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.strip_suffix(" unknown"))
        {
            out.push_str(&format!("# TYPE {name} untyped\n"));
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(line) => out.push_str(line.trim_end()),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
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

/// `/runtime_config`: every tenant's effective limits from the runtime
/// config file; `?mode=diff` only what differs from `limits_config`.
async fn runtime_config(State(state): State<OpsState>, RawQuery(raw_query): RawQuery) -> Response {
    let mode = raw_query
        .as_deref()
        .and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "mode")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    let diff = match mode.as_str() {
        "" => false,
        "diff" => true,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                format!("unknown value for mode query parameter: {other:?}\n"),
            )
                .into_response()
        }
    };
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.overrides.render_yaml(diff),
    )
        .into_response()
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
    fn prometheus_text_names_counters_with_total() {
        let openmetrics = "# HELP lines Lines.\n# TYPE lines counter\nlines_total{tenant=\"a\"} 3\n# HELP mem Memory.\n# TYPE mem gauge\n# UNIT mem bytes\nmem 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(openmetrics),
            "# HELP lines_total Lines.\n# TYPE lines_total counter\nlines_total{tenant=\"a\"} 3\n# HELP mem Memory.\n# TYPE mem gauge\nmem 1\n"
        );
        let unknown = "# HELP loki_cache_hits Hits.\n# TYPE loki_cache_hits unknown\nloki_cache_hits 2\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(unknown),
            "# HELP loki_cache_hits Hits.\n# TYPE loki_cache_hits untyped\nloki_cache_hits 2\n"
        );
    }

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
