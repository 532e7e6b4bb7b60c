//! The rules HTTP API, in Loki's shapes:
//!
//! - `GET /loki/api/v1/rules[/{namespace}]`: YAML `{namespace: [groups]}`
//!   (404 `no rule groups found`);
//! - `GET /loki/api/v1/rules/{namespace}/{group}`: the group as YAML;
//! - `POST /loki/api/v1/rules/{namespace}`: a YAML group, validated, 202;
//! - `DELETE /loki/api/v1/rules/{namespace}[/{group}]`: 202;
//! - `GET /prometheus/api/v1/rules` and `/prometheus/api/v1/alerts`:
//!   Prometheus' JSON, as Grafana's alerting UI reads it, for the whole
//!   ring when sharding;
//!
//! and the legacy `/api/prom/rules…` aliases. `GET /ruler/internal/groups`
//! serves this ruler's own groups to the other rulers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat};
use serde_json::{json, Value};
use sluice_common::{HttpError, TenantId};

use crate::group::{GroupStatus, RuleStatus};
use crate::rulefmt::{self, RuleGroup};
use crate::ruler::Ruler;

/// The routes (only when `enable_api`, except the internal one).
pub(crate) fn router(ruler: Arc<Ruler>, enable_api: bool) -> Router {
    let mut router = Router::new().route("/ruler/internal/groups", get(internal_groups));
    if enable_api {
        for prefix in ["/loki/api/v1/rules", "/api/prom/rules"] {
            router = router
                .route(prefix, get(list_rules))
                .route(
                    &format!("{prefix}/{{namespace}}"),
                    get(list_namespace)
                        .post(create_group)
                        .delete(delete_namespace),
                )
                .route(
                    &format!("{prefix}/{{namespace}}/{{group}}"),
                    get(get_group).delete(delete_group),
                );
        }
        for prefix in ["/prometheus/api/v1", "/api/prom/api/v1"] {
            router = router
                .route(&format!("{prefix}/rules"), get(prometheus_rules))
                .route(&format!("{prefix}/alerts"), get(prometheus_alerts));
        }
    }
    router.with_state(ruler)
}

fn tenant(ruler: &Ruler, headers: &HeaderMap) -> Result<TenantId, HttpError> {
    Ok(TenantId::from_headers(headers, ruler.auth_enabled())?)
}

fn yaml_response<T: serde::Serialize>(value: &T) -> Response {
    match serde_norway::to_string(value) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/yaml")], text).into_response(),
        Err(err) => {
            HttpError::new(sluice_common::ErrorCode::Internal, err.to_string()).into_response()
        }
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"success","data":null,"errorType":"","error":""}"#,
    )
        .into_response()
}

async fn namespaces(
    ruler: &Ruler,
    tenant: &TenantId,
    only: Option<&str>,
) -> Result<BTreeMap<String, Vec<RuleGroup>>, HttpError> {
    let stored = ruler.store().list_tenant(tenant.as_str()).await?;
    let mut out = BTreeMap::new();
    for (namespace, groups) in stored {
        if only.is_some_and(|wanted| wanted != namespace) {
            continue;
        }
        let groups = groups.map_err(|err| HttpError::bad_request(err.0))?;
        if !groups.is_empty() {
            out.insert(namespace, groups);
        }
    }
    if out.is_empty() {
        return Err(HttpError::new(
            sluice_common::ErrorCode::NotFound,
            "no rule groups found",
        ));
    }
    Ok(out)
}

async fn list_rules(
    State(ruler): State<Arc<Ruler>>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    Ok(yaml_response(&namespaces(&ruler, &tenant, None).await?))
}

async fn list_namespace(
    State(ruler): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    Ok(yaml_response(
        &namespaces(&ruler, &tenant, Some(&namespace)).await?,
    ))
}

async fn get_group(
    State(ruler): State<Arc<Ruler>>,
    Path((namespace, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    let stored = ruler.store().list_tenant(tenant.as_str()).await?;
    let not_found = || HttpError::new(sluice_common::ErrorCode::NotFound, "group does not exist");
    let groups = stored
        .get(&namespace)
        .ok_or_else(not_found)?
        .as_ref()
        .map_err(|err| HttpError::bad_request(err.0.clone()))?;
    let found = groups
        .iter()
        .find(|candidate| candidate.name == group)
        .ok_or_else(not_found)?;
    Ok(yaml_response(found))
}

async fn create_group(
    State(ruler): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| HttpError::bad_request("unable to decoded rule group: body is not UTF-8"))?;
    let group =
        rulefmt::parse_group(&namespace, text).map_err(|err| HttpError::bad_request(err.0))?;
    ruler
        .store()
        .set_group(tenant.as_str(), &namespace, &group)
        .await?;
    tracing::info!(tenant = %tenant, %namespace, group = %group.name, "rule group stored");
    ruler.sync_soon();
    Ok(accepted())
}

async fn delete_namespace(
    State(ruler): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    ruler
        .store()
        .delete_namespace(tenant.as_str(), &namespace)
        .await?;
    ruler.sync_soon();
    Ok(accepted())
}

async fn delete_group(
    State(ruler): State<Arc<Ruler>>,
    Path((namespace, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    ruler
        .store()
        .delete_group(tenant.as_str(), &namespace, &group)
        .await?;
    ruler.sync_soon();
    Ok(accepted())
}

async fn internal_groups(
    State(ruler): State<Arc<Ruler>>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let tenant = tenant(&ruler, &headers)?;
    Ok(axum::Json(ruler.local_groups(tenant.as_str())).into_response())
}

/// Prometheus' error envelope (Loki answers 500 for a failed lookup).
fn prometheus_error(message: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "error", "data": null, "errorType": "server", "error": message})
            .to_string(),
    )
        .into_response()
}

fn success(data: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data, "errorType": "", "error": ""}).to_string(),
    )
        .into_response()
}

/// Go's `time.Time` JSON: RFC 3339 with trailing zeros of the fraction
/// trimmed; the zero time when never.
fn go_time(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".to_string();
    };
    let text = DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    match text.split_once('.') {
        Some((seconds, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{digits}Z")
            }
        }
        None => text,
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn go_exponent(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

fn alerts_json(rule: &RuleStatus) -> Vec<Value> {
    rule.alerts
        .iter()
        .map(|alert| {
            json!({
                "labels": alert.labels,
                "annotations": alert.annotations,
                "state": alert.state,
                "activeAt": go_time(Some(alert.active_at_ms)),
                "value": go_exponent(alert.value),
            })
        })
        .collect()
}

fn rule_json(rule: &RuleStatus) -> Value {
    if rule.rule.is_alert() {
        json!({
            "state": rule.state.clone().unwrap_or_else(|| "inactive".into()),
            "name": rule.rule.name(),
            "query": rule.query,
            "duration": rule.rule.for_duration.unwrap_or_default().as_secs_f64(),
            "labels": rule.rule.labels,
            "annotations": rule.rule.annotations,
            "alerts": alerts_json(rule),
            "health": rule.health,
            "lastError": rule.last_error,
            "type": "alerting",
            "lastEvaluation": go_time(rule.last_evaluation_ms),
            "evaluationTime": rule.evaluation_seconds,
        })
    } else {
        json!({
            "name": rule.rule.name(),
            "query": rule.query,
            "labels": rule.rule.labels,
            "health": rule.health,
            "lastError": rule.last_error,
            "type": "recording",
            "lastEvaluation": go_time(rule.last_evaluation_ms),
            "evaluationTime": rule.evaluation_seconds,
        })
    }
}

/// Filters of `/prometheus/api/v1/rules`: `type`, `rule_name[]`,
/// `rule_group[]`, `file[]`.
#[derive(Default)]
struct RuleFilter {
    kind: Option<String>,
    names: Vec<String>,
    groups: Vec<String>,
    files: Vec<String>,
}

impl RuleFilter {
    fn parse(query: Option<&str>) -> Result<RuleFilter, HttpError> {
        let mut filter = RuleFilter::default();
        for (key, value) in form_urlencoded_pairs(query.unwrap_or_default()) {
            match key.as_str() {
                "type" if !value.is_empty() => {
                    if value != "alert" && value != "record" {
                        return Err(HttpError::bad_request(format!(
                            "unsupported rule type {value:?}: use alert or record"
                        )));
                    }
                    filter.kind = Some(value);
                }
                "rule_name[]" => filter.names.push(value),
                "rule_group[]" => filter.groups.push(value),
                "file[]" => filter.files.push(value),
                _ => {}
            }
        }
        Ok(filter)
    }

    fn keeps_group(&self, group: &GroupStatus) -> bool {
        (self.groups.is_empty() || self.groups.contains(&group.key.name))
            && (self.files.is_empty() || self.files.contains(&group.key.namespace))
    }

    fn keeps_rule(&self, rule: &RuleStatus) -> bool {
        let kind_ok = match self.kind.as_deref() {
            Some("alert") => rule.rule.is_alert(),
            Some("record") => !rule.rule.is_alert(),
            _ => true,
        };
        kind_ok && (self.names.is_empty() || self.names.iter().any(|name| name == rule.rule.name()))
    }
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(&text.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(key), decode(value))
        })
        .collect()
}

async fn prometheus_rules(
    State(ruler): State<Arc<Ruler>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let tenant = match tenant(&ruler, &headers) {
        Ok(tenant) => tenant,
        Err(err) => return err.into_response(),
    };
    let filter = match RuleFilter::parse(query.as_deref()) {
        Ok(filter) => filter,
        Err(err) => return err.into_response(),
    };
    let mut groups = match ruler.all_groups(tenant.as_str()).await {
        Ok(groups) => groups,
        Err(message) => return prometheus_error(&message),
    };
    groups.sort_by(|a, b| {
        a.key
            .namespace
            .cmp(&b.key.namespace)
            .then(a.key.name.cmp(&b.key.name))
    });
    let groups: Vec<Value> = groups
        .iter()
        .filter(|group| filter.keeps_group(group))
        .filter_map(|group| {
            let rules: Vec<Value> = group
                .rules
                .iter()
                .filter(|rule| filter.keeps_rule(rule))
                .map(rule_json)
                .collect();
            // Prometheus leaves out groups a rule filter emptied.
            if rules.is_empty() && (filter.kind.is_some() || !filter.names.is_empty()) {
                return None;
            }
            Some(json!({
                "name": group.key.name,
                "file": group.key.namespace,
                "rules": rules,
                "interval": group.interval_seconds,
                "lastEvaluation": go_time(group.last_evaluation_ms),
                "evaluationTime": group.evaluation_seconds,
            }))
        })
        .collect();
    success(json!({ "groups": groups }))
}

async fn prometheus_alerts(State(ruler): State<Arc<Ruler>>, headers: HeaderMap) -> Response {
    let tenant = match tenant(&ruler, &headers) {
        Ok(tenant) => tenant,
        Err(err) => return err.into_response(),
    };
    let groups = match ruler.all_groups(tenant.as_str()).await {
        Ok(groups) => groups,
        Err(message) => return prometheus_error(&message),
    };
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|group| group.rules.iter())
        .filter(|rule| rule.rule.is_alert())
        .flat_map(alerts_json)
        .collect();
    success(json!({ "alerts": alerts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_exponent(12.0), "1.2e+01");
        assert_eq!(go_exponent(0.5), "5e-01");
        assert_eq!(go_exponent(f64::INFINITY), "+Inf");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1_700_000_000_120)), "2023-11-14T22:13:20.12Z");
        assert_eq!(go_time(Some(1_700_000_000_000)), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn filters_parse() {
        let filter = RuleFilter::parse(Some("type=alert&rule_name[]=A&file%5B%5D=ns")).unwrap();
        assert_eq!(filter.kind.as_deref(), Some("alert"));
        assert_eq!(filter.names, ["A"]);
        assert_eq!(filter.files, ["ns"]);
        assert!(RuleFilter::parse(Some("type=bogus")).is_err());
    }
}
