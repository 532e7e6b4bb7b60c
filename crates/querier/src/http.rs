//! HTTP routes of the query API and their JSON bodies.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sluice_common::time::format_unix_seconds;
use sluice_common::{ErrorCode, HttpError, TenantError, TenantId};
use sluice_logql::{Expr, QueryParams, QueryValue};

use crate::json::{write_labels, write_string, write_string_array};
use crate::params::{Direction, Params, TimeRange};
use crate::querier::{Querier, ResultStream};
use crate::tenants::Tenants;

/// The live tail route alone (WebSocket; not something a query frontend
/// can queue).
pub(crate) fn tail_router(querier: Arc<Querier>) -> Router {
    Router::new()
        .route("/loki/api/v1/tail", get(crate::tail::tail))
        .with_state(querier)
}

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
        .route(
            "/loki/api/v1/format_query",
            get(format_query).post(format_query),
        )
        .route("/loki/api/v1/tail", get(crate::tail::tail))
        .route(
            "/loki/api/v1/index/stats",
            get(crate::stats::index_stats).post(crate::stats::index_stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(crate::volume::volume_instant).post(crate::volume::volume_instant),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(crate::volume::volume_range).post(crate::volume::volume_range),
        )
        .with_state(querier)
}

/// Everything a handler needs from the request: the tenants and the
/// parameters from the query string and, for POSTs, the form body.
pub(crate) struct Call {
    pub(crate) tenants: Tenants,
    pub(crate) params: Params,
}

impl FromRequest<Arc<Querier>> for Call {
    type Rejection = HttpError;

    async fn from_request(request: Request, querier: &Arc<Querier>) -> Result<Call, HttpError> {
        let tenants = TenantId::all_from_headers(request.headers(), querier.auth_enabled)?;
        if tenants.len() > 1 && !querier.config.multi_tenant_queries_enabled {
            return Err(TenantError::Multiple.into());
        }
        let raw_query = request.uri().query().map(str::to_string);
        let is_post = request.method() == Method::POST;
        let body = Bytes::from_request(request, querier)
            .await
            .map_err(|rejection| {
                let code = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorCode::PayloadTooLarge
                } else {
                    ErrorCode::BadRequest
                };
                HttpError::new(code, rejection.body_text())
            })?;
        let form = is_post.then_some(body.as_ref());
        let params = Params::parse(raw_query.as_deref(), form);
        let max_size = querier.config.max_query_expression_bytes;
        for key in ["query", "match[]", "match"] {
            if let Some(size) = params
                .all(key)
                .iter()
                .map(String::len)
                .find(|size| *size > max_size)
            {
                return Err(HttpError::bad_request(format!(
                    "query too large: {size} bytes exceeds the limit of {max_size} bytes"
                )));
            }
        }
        Ok(Call {
            tenants: Tenants::new(tenants),
            params,
        })
    }
}

/// A JSON body already in Loki's shape.
pub(crate) struct LokiJson(pub(crate) String);

impl IntoResponse for LokiJson {
    fn into_response(self) -> Response {
        json_response(self.0)
    }
}

fn json_response(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn query_range(
    State(querier): State<Arc<Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    run_log_query(&querier, call, QueryKind::Range)
        .await
        .map(LokiJson)
}

async fn query_instant(
    State(querier): State<Arc<Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    run_log_query(&querier, call, QueryKind::Instant)
        .await
        .map(LokiJson)
}

#[derive(Clone, Copy)]
enum QueryKind {
    Range,
    Instant,
}

async fn run_log_query(
    querier: &Querier,
    call: Call,
    kind: QueryKind,
) -> Result<String, HttpError> {
    let started = Instant::now();
    let Call { tenants, params } = call;
    let query = params.query()?;
    let expr =
        sluice_logql::parse_expr(query).map_err(|err| HttpError::bad_request(err.to_string()))?;
    let is_log = matches!(expr, Expr::Log(_));
    // As in Loki, the entries limit does not apply to metric queries.
    let max_entries = if is_log {
        querier.eval_limits(&tenants).max_entries_limit_per_query
    } else {
        0
    };
    let limit = params.limit(max_entries)?;
    let direction = params.direction()?;
    let range = match kind {
        QueryKind::Range => params.range()?,
        QueryKind::Instant if is_log => {
            let time = params.time()?;
            let look_back = i64::try_from(querier.config.engine.max_look_back_period.as_nanos())
                .unwrap_or(i64::MAX);
            TimeRange {
                start: time.saturating_sub(look_back),
                end: time,
            }
        }
        QueryKind::Instant => {
            let time = params.time()?;
            TimeRange {
                start: time,
                end: time,
            }
        }
    };
    // Log queries whose pipeline is only line filters take the fast path:
    // the limit is pushed down to every source.
    if let Expr::Log(log) = &expr {
        if log.has_only_line_filters() && params.interval()? == 0 {
            let streams = querier
                .select_logs(&tenants, query, range, limit, direction)
                .await?;
            return Ok(streams_body(&streams, started.elapsed().as_secs_f64()));
        }
    }
    let engine_params = QueryParams {
        start_ns: range.start,
        end_ns: range.end,
        step_ns: params.step()?,
        interval_ns: params.interval()?,
        limit,
        direction: match direction {
            Direction::Forward => sluice_logql::Direction::Forward,
            Direction::Backward => sluice_logql::Direction::Backward,
        },
        kind: match kind {
            QueryKind::Range => sluice_logql::QueryKind::Range,
            QueryKind::Instant => sluice_logql::QueryKind::Instant,
        },
    };
    let value = querier
        .evaluate(&tenants, expr, engine_params, params.shard()?)
        .await?;
    let exec = started.elapsed().as_secs_f64();
    Ok(match value {
        QueryValue::Streams(streams) => {
            let streams: Vec<ResultStream> = streams
                .into_iter()
                .map(|stream| ResultStream {
                    labels: stream.labels.to_pairs(),
                    entries: stream.entries,
                })
                .collect();
            streams_body(&streams, exec)
        }
        other => metric_body(&other, exec),
    })
}

pub(crate) fn stats_json(exec_seconds: f64, entries: usize) -> String {
    summary_stats(exec_seconds, entries, 0, 0, 0)
}

/// Loki's `stats` object with the summary Grafana reads.
pub(crate) fn summary_stats(
    exec_seconds: f64,
    entries: usize,
    splits: usize,
    subqueries: usize,
    shards: usize,
) -> String {
    format!(
        "{{\"summary\":{{\"execTime\":{exec_seconds},\"queueTime\":0,\"subqueries\":{subqueries},\"totalEntriesReturned\":{entries},\"splits\":{splits},\"shards\":{shards}}}}}"
    )
}

fn write_sample(out: &mut String, ts_ns: i64, value: f64) {
    let _ = write!(
        out,
        "[{},\"{}\"]",
        format_unix_seconds(ts_ns),
        sluice_logql::format_sample_value(value)
    );
}

/// Matrix, vector and scalar bodies in Loki's shapes.
fn metric_body(value: &QueryValue, exec_seconds: f64) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":{");
    match value {
        QueryValue::Matrix(series) => {
            out.push_str("\"resultType\":\"matrix\",\"result\":[");
            for (index, one) in series.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, one.labels.iter());
                out.push_str(",\"values\":[");
                for (point_index, (ts_ns, sample)) in one.points.iter().enumerate() {
                    if point_index > 0 {
                        out.push(',');
                    }
                    write_sample(&mut out, *ts_ns, *sample);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push_str("\"resultType\":\"vector\",\"result\":[");
            for (index, sample) in samples.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, sample.labels.iter());
                out.push_str(",\"value\":");
                write_sample(&mut out, sample.ts_ns, sample.value);
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Scalar { ts_ns, value } => {
            out.push_str("\"resultType\":\"scalar\",\"result\":");
            write_sample(&mut out, *ts_ns, *value);
        }
        QueryValue::Streams(_) => {
            out.push_str("\"resultType\":\"streams\",\"result\":[]");
        }
    }
    let _ = write!(out, ",\"stats\":{}}}}}", stats_json(exec_seconds, 0));
    out
}

/// `{"status":"success","data":{"resultType":"streams","result":[…],"stats":{…}}}`.
fn streams_body(streams: &[ResultStream], exec_seconds: f64) -> String {
    let entries: usize = streams.iter().map(|stream| stream.entries.len()).sum();
    streams_body_with_stats(streams, &stats_json(exec_seconds, entries))
}

/// [`streams_body`] with a given `stats` object.
pub(crate) fn streams_body_with_stats(streams: &[ResultStream], stats: &str) -> String {
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
                .map(|(name, value)| (name.as_str(), value.as_str())),
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
    let _ = write!(out, "],\"stats\":{stats}}}}}");
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

/// Pretty-prints a query: `{"status":"success","data":"…"}`, or 400
/// `{"status":"invalid-query","error":"…"}` (Loki 3.x's JSON form, which
/// Grafana's "format query" button reads).
async fn format_query(method: Method, RawQuery(raw_query): RawQuery, body: Bytes) -> Response {
    let form = (method == Method::POST).then_some(body.as_ref());
    let params = Params::parse(raw_query.as_deref(), form);
    let query = params.get("query").unwrap_or_default();
    match sluice_logql::format_query(query) {
        Ok(formatted) => {
            let mut out = String::from("{\"status\":\"success\",\"data\":");
            write_string(&mut out, &formatted);
            out.push('}');
            json_response(out)
        }
        Err(err) => {
            let mut out = String::from("{\"status\":\"invalid-query\",\"error\":");
            write_string(&mut out, &err.to_string());
            out.push('}');
            let mut response = json_response(out);
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            response
        }
    }
}

async fn label_names(
    State(querier): State<Arc<Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    label_lookup(&querier, call, None).await
}

async fn label_values(
    State(querier): State<Arc<Querier>>,
    Path(name): Path<String>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    label_lookup(&querier, call, Some(&name)).await
}

async fn label_lookup(
    querier: &Querier,
    call: Call,
    name: Option<&str>,
) -> Result<LokiJson, HttpError> {
    let Call { tenants, params } = call;
    let range = params.range()?;
    let values = querier
        .labels(&tenants, name, range, params.get("query"))
        .await?;
    Ok(LokiJson(labels_body(&values)))
}

async fn series(State(querier): State<Arc<Querier>>, call: Call) -> Result<LokiJson, HttpError> {
    let Call { tenants, params } = call;
    let range = params.range()?;
    let series = querier.series(&tenants, params.matches(), range).await?;
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
    Ok(LokiJson(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_shape_is_lokis() {
        let streams = vec![ResultStream {
            labels: vec![("job".to_string(), "app".to_string())],
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
    fn metric_shapes_are_lokis() {
        use sluice_logql::{LabelSet, Sample, Series};
        let labels = LabelSet::new(vec![("env".to_string(), "dev".to_string())]);
        let matrix = QueryValue::Matrix(vec![Series {
            labels: labels.clone(),
            points: vec![
                (1_795_493_760_000_000_000, 0.05),
                (1_795_489_219_500_000_000, 1.0),
            ],
        }]);
        let body = metric_body(&matrix, 0.1);
        assert!(body.starts_with(
            "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"env\":\"dev\"},\"values\":[[1795493760,\"0.05\"],[1795489219.5,\"1\"]]}],\"stats\":{"
        ), "{body}");
        let vector = QueryValue::Vector(vec![Sample {
            labels: LabelSet::new(Vec::new()),
            ts_ns: 1_795_493_825_206_000_000,
            value: 2.0,
        }]);
        assert!(metric_body(&vector, 0.1).starts_with(
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1795493825.206,\"2\"]}]"
        ));
        let scalar = QueryValue::Scalar {
            ts_ns: 1_795_493_825_206_000_000,
            value: 2.0,
        };
        let body = metric_body(&scalar, 0.1);
        assert!(body.starts_with(
            "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1795493825.206,\"2\"]"
        ), "{body}");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(parsed["data"]["stats"].is_object());
    }

    #[tokio::test]
    async fn errors_end_with_one_more_newline_like_go() {
        for (message, body) in [
            (
                "limit must be a positive value",
                "limit must be a positive value\n",
            ),
            (
                "pipeline error: 'X'.\nhint )\n",
                "pipeline error: 'X'.\nhint )\n\n",
            ),
        ] {
            let response = HttpError::bad_request(message).into_response();
            assert_eq!(response.status(), axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/plain; charset=utf-8"
            );
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), body);
        }
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
