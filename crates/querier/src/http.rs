//! HTTP routes of the query API and their JSON bodies.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sluice_common::{HttpError, TenantId};

use crate::json::{write_labels, write_string, write_string_array};
use crate::params::{Params, TimeRange};
use crate::querier::{Querier, ResultStream};

pub(crate) fn router(querier: Arc<Querier>) -> Router {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query_instant).post(query_instant))
        .route("/loki/api/v1/labels", get(label_names).post(label_names))
        .route("/loki/api/v1/label", get(label_names).post(label_names))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .with_state(querier)
}

/// Everything a handler needs from the request.
struct Call {
    tenant: TenantId,
    params: Params,
}

fn call(
    querier: &Querier,
    method: &Method,
    headers: &HeaderMap,
    raw_query: Option<String>,
    body: &Bytes,
) -> Result<Call, HttpError> {
    let tenant = TenantId::from_headers(headers, querier.auth_enabled)?;
    let form = (method == Method::POST).then_some(body.as_ref());
    Ok(Call {
        tenant,
        params: Params::parse(raw_query.as_deref(), form),
    })
}

fn json_response(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn respond(result: Result<String, HttpError>) -> Response {
    match result {
        Ok(body) => json_response(body),
        Err(err) => err.into_response(),
    }
}

async fn query_range(
    State(querier): State<Arc<Querier>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    respond(
        run_log_query(
            &querier,
            &method,
            &headers,
            raw_query,
            &body,
            QueryKind::Range,
        )
        .await,
    )
}

async fn query_instant(
    State(querier): State<Arc<Querier>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    respond(
        run_log_query(
            &querier,
            &method,
            &headers,
            raw_query,
            &body,
            QueryKind::Instant,
        )
        .await,
    )
}

#[derive(Clone, Copy)]
enum QueryKind {
    Range,
    Instant,
}

async fn run_log_query(
    querier: &Querier,
    method: &Method,
    headers: &HeaderMap,
    raw_query: Option<String>,
    body: &Bytes,
    kind: QueryKind,
) -> Result<String, HttpError> {
    let started = Instant::now();
    let Call { tenant, params } = call(querier, method, headers, raw_query, body)?;
    let query = params.query()?;
    let limit = params.limit(querier.limits.max_entries_limit_per_query)?;
    let direction = params.direction()?;
    let range = match kind {
        QueryKind::Range => params.range()?,
        QueryKind::Instant => {
            let time = params.time()?;
            let look_back = i64::try_from(querier.config.engine.max_look_back_period.as_nanos())
                .unwrap_or(i64::MAX);
            TimeRange {
                start: time.saturating_sub(look_back),
                end: time,
            }
        }
    };
    let streams = querier
        .select_logs(&tenant, query, range, limit, direction)
        .await?;
    Ok(streams_body(&streams, started.elapsed().as_secs_f64()))
}

/// `{"status":"success","data":{"resultType":"streams","result":[…],"stats":{…}}}`.
fn streams_body(streams: &[ResultStream], exec_seconds: f64) -> String {
    let entries: usize = streams.iter().map(|stream| stream.entries.len()).sum();
    let line_bytes: usize = streams
        .iter()
        .flat_map(|stream| stream.entries.iter().map(|(_, line)| line.len()))
        .sum();
    let mut out = String::with_capacity(128 + line_bytes + entries * 32);
    out.push_str("{\"status\":\"success\",\"data\":{\"resultType\":\"streams\",\"result\":[");
    for (stream_index, stream) in streams.iter().enumerate() {
        if stream_index > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":");
        write_labels(
            &mut out,
            stream
                .labels
                .iter()
                .map(|label| (label.name.as_str(), label.value.as_str())),
        );
        out.push_str(",\"values\":[");
        for (entry_index, (timestamp, line)) in stream.entries.iter().enumerate() {
            if entry_index > 0 {
                out.push(',');
            }
            let _ = write!(out, "[\"{timestamp}\",");
            write_string(&mut out, line);
            out.push(']');
        }
        out.push_str("]}");
    }
    let _ = write!(
        out,
        "],\"stats\":{{\"summary\":{{\"execTime\":{exec_seconds},\"queueTime\":0,\"subqueries\":0,\"totalEntriesReturned\":{entries},\"splits\":0,\"shards\":0}}}}}}}}"
    );
    out
}

/// `{"status":"success","data":[…]}`, with no `data` when empty (Loki).
fn labels_body(values: &[String]) -> String {
    if values.is_empty() {
        return "{\"status\":\"success\"}".to_string();
    }
    let mut out = String::from("{\"status\":\"success\",\"data\":");
    write_string_array(&mut out, values.iter().map(String::as_str));
    out.push('}');
    out
}

async fn label_names(
    State(querier): State<Arc<Querier>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    respond(label_lookup(&querier, &method, &headers, raw_query, &body, None).await)
}

async fn label_values(
    State(querier): State<Arc<Querier>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    respond(label_lookup(&querier, &method, &headers, raw_query, &body, Some(&name)).await)
}

async fn label_lookup(
    querier: &Querier,
    method: &Method,
    headers: &HeaderMap,
    raw_query: Option<String>,
    body: &Bytes,
    name: Option<&str>,
) -> Result<String, HttpError> {
    let Call { tenant, params } = call(querier, method, headers, raw_query, body)?;
    let range = params.range()?;
    let values = querier
        .labels(&tenant, name, range, params.get("query"))
        .await?;
    Ok(labels_body(&values))
}

async fn series(
    State(querier): State<Arc<Querier>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(raw_query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let Call { tenant, params } = call(&querier, &method, &headers, raw_query, &body)?;
        let range = params.range()?;
        let series = querier.series(&tenant, params.matches(), range).await?;
        let mut out = String::from("{\"status\":\"success\",\"data\":[");
        for (index, labels) in series.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_labels(
                &mut out,
                labels
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
        }
        out.push_str("]}");
        Ok(out)
    }
    .await;
    respond(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_shape_is_lokis() {
        let streams = vec![ResultStream {
            labels: sluice_chunk::Labels::from_pairs([("job", "app")]),
            entries: vec![(1_795_493_806_679_483_410, "l <b>".to_string())],
        }];
        let body = streams_body(&streams, 0.5);
        assert!(body.starts_with(
            "{\"status\":\"success\",\"data\":{\"resultType\":\"streams\",\"result\":[{\"stream\":{\"job\":\"app\"},\"values\":[[\"1795493806679483410\",\"l \\u003cb\\u003e\"]]}],\"stats\":{"
        ), "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["data"]["stats"]["summary"]["totalEntriesReturned"], 1);
        let empty: serde_json::Value = serde_json::from_str(&streams_body(&[], 0.0)).unwrap();
        assert_eq!(empty["data"]["result"], serde_json::json!([]));
    }

    #[test]
    fn labels_shape_omits_empty_data() {
        assert_eq!(labels_body(&[]), "{\"status\":\"success\"}");
        assert_eq!(
            labels_body(&["a".to_string(), "b".to_string()]),
            "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}"
        );
    }
}
