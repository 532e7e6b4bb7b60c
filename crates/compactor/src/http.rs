//! Loki's delete API: `POST|PUT /loki/api/v1/delete` adds a request, `GET`
//! lists the tenant's requests, `DELETE` cancels one. Parameters come from
//! the query string or a form body; errors are Loki's plain-text messages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sluice_common::duration::{format_go_duration, parse_go_duration};
use sluice_common::time::format_unix_seconds;
use sluice_common::{ErrorCode, HttpError, TenantId};

use crate::clock::nanos;
use crate::compactor::Compactor;
use crate::delete_requests::{parse_query, DeleteRequestStatus};
use crate::metrics::CompactorMetrics;

const NS_PER_MS: i64 = 1_000_000;
/// Largest request body read for form parameters.
const MAX_FORM_BYTES: usize = 1 << 20;

#[derive(Clone)]
struct ApiState {
    compactor: Arc<Compactor>,
    auth_enabled: bool,
}

impl Compactor {
    /// Returns the delete API routes. `auth_enabled` as in the top-level
    /// config: when false every request is tenant `fake`.
    pub fn router(self: &Arc<Self>, auth_enabled: bool) -> Router {
        Router::new()
            .route(
                "/loki/api/v1/delete",
                get(list).post(add).put(add).delete(cancel),
            )
            .with_state(ApiState {
                compactor: Arc::clone(self),
                auth_enabled,
            })
    }
}

/// The parameters of a call: query string first, then a form body.
struct Params(Vec<(String, String)>);

impl Params {
    async fn read(request: Request) -> Result<(HeaderMap, Params), HttpError> {
        let headers = request.headers().clone();
        let mut pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        let has_body = matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::DELETE
        );
        if is_form && has_body {
            let body: Bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
                .await
                .map_err(|err| HttpError::bad_request(format!("reading request body: {err}")))?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok((headers, Params(pairs)))
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

/// Resolves the tenant and checks it may use the delete API.
fn tenant(state: &ApiState, headers: &HeaderMap) -> Result<TenantId, HttpError> {
    let tenant = TenantId::from_headers(headers, state.auth_enabled)?;
    let mode = state
        .compactor
        .limits()
        .limits_for(tenant.as_str())
        .deletion_mode;
    if !mode.allows_requests() {
        return Err(HttpError::new(
            ErrorCode::Forbidden,
            "deletion is not available for this tenant",
        ));
    }
    Ok(tenant)
}

/// Parses a delete API time: empty is now, RFC3339, or exactly 10 digits
/// of Unix seconds (Loki accepts nothing else here). Returns milliseconds.
fn parse_time(text: &str, now_ms: i64) -> Option<i64> {
    if text.is_empty() {
        return Some(now_ms);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    if text.len() != 10 {
        return None;
    }
    let seconds: f64 = text.parse().ok()?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

async fn add(State(state): State<ApiState>, request: Request) -> Result<Response, HttpError> {
    let (headers, params) = Params::read(request).await?;
    let tenant = tenant(&state, &headers)?;
    let query = params.get("query");
    if query.is_empty() {
        return Err(HttpError::bad_request("query not set"));
    }
    parse_query(query).map_err(HttpError::bad_request)?;
    let now_ms = state.compactor.clock().now_ns() / NS_PER_MS;
    let start_text = params.get("start");
    if start_text.is_empty() {
        return Err(HttpError::bad_request("start time not set"));
    }
    let start_ms = parse_time(start_text, now_ms).ok_or_else(|| {
        HttpError::bad_request("invalid start time: require unix seconds or RFC3339 format")
    })?;
    let end_ms = parse_time(params.get("end"), now_ms).ok_or_else(|| {
        HttpError::bad_request("invalid end time: require unix seconds or RFC3339 format")
    })?;
    if end_ms > now_ms {
        return Err(HttpError::bad_request(
            "deletes in the future are not allowed",
        ));
    }
    if start_ms > end_ms {
        return Err(HttpError::bad_request(
            "start time can't be greater than end time",
        ));
    }
    let max_interval = params.get("max_interval");
    if !max_interval.is_empty()
        && !parse_go_duration(max_interval).is_ok_and(|nanos| nanos >= 1_000_000_000)
    {
        return Err(HttpError::bad_request(
            "invalid max_interval: valid time units are 's', 'm', 'h'",
        ));
    }
    let added = state
        .compactor
        .delete_requests()
        .add(tenant.as_str(), query, start_ms, end_ms, now_ms)
        .await
        .map_err(|err| {
            tracing::error!(%tenant, error = %err, "cannot store delete request");
            HttpError::from(err)
        })?;
    state
        .compactor
        .metrics
        .delete_requests_received
        .get_or_create(&CompactorMetrics::user(tenant.as_str()))
        .inc();
    tracing::info!(
        %tenant,
        request_id = %added.request_id,
        query = %added.query,
        "delete request added"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(State(state): State<ApiState>, request: Request) -> Result<Response, HttpError> {
    let (headers, _) = Params::read(request).await?;
    let tenant = tenant(&state, &headers)?;
    let requests = state
        .compactor
        .delete_requests()
        .list(tenant.as_str())
        .await
        .map_err(|err| {
            tracing::error!(%tenant, error = %err, "cannot list delete requests");
            HttpError::from(err)
        })?;
    let mut body = String::from("[");
    for (index, request) in requests.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        let seconds = |ms: i64| format_unix_seconds(ms.saturating_mul(NS_PER_MS));
        body.push_str(&format!(
            "{{\"request_id\":{},\"start_time\":{},\"end_time\":{},\"query\":{},\"status\":\"{}\",\"created_at\":{}}}",
            serde_json::Value::from(request.request_id.as_str()),
            seconds(request.start_ms),
            seconds(request.end_ms),
            serde_json::Value::from(request.query.as_str()),
            request.status.as_str(),
            seconds(request.created_ms),
        ));
    }
    body.push_str("]\n");
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn cancel(State(state): State<ApiState>, request: Request) -> Result<Response, HttpError> {
    let (headers, params) = Params::read(request).await?;
    let tenant = tenant(&state, &headers)?;
    let store = state.compactor.delete_requests();
    let not_found = || {
        HttpError::new(
            ErrorCode::NotFound,
            "could not find delete request with given id",
        )
    };
    let Some(found) = store
        .get(tenant.as_str(), params.get("request_id"))
        .await
        .map_err(HttpError::from)?
    else {
        return Err(not_found());
    };
    if found.status == DeleteRequestStatus::Processed {
        return Err(HttpError::bad_request(
            "deletion of request which is in process or already processed is not allowed",
        ));
    }
    let cancel_period = state.compactor.config().delete_request_cancel_period;
    let now_ms = state.compactor.clock().now_ns() / NS_PER_MS;
    let deadline_ms = found
        .created_ms
        .saturating_add(nanos(cancel_period) / NS_PER_MS);
    if now_ms > deadline_ms && params.get("force") != "true" {
        return Err(HttpError::bad_request(format!(
            "Cancellation of partially completed delete request or delete request past the deadline of {} since its creation is not allowed. To force, use the ?force query parameter",
            format_go_duration(nanos(cancel_period))
        )));
    }
    store
        .remove(tenant.as_str(), &found.request_id)
        .await
        .map_err(HttpError::from)?;
    tracing::info!(%tenant, request_id = %found.request_id, "delete request cancelled");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_times() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("", now), Some(now));
        assert_eq!(parse_time("1600000000", now), Some(1_600_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", now),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5+00:00", now),
            Some(1_700_000_000_500)
        );
        assert_eq!(parse_time("1600000000000", now), None);
        assert_eq!(parse_time("yesterday", now), None);
    }
}
