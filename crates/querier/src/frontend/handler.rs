//! The frontend's HTTP routes: `query_range` is split, cached and merged;
//! every other query endpoint goes to a querier as it came.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, StreamExt};
use sluice_common::duration::format_go_duration;
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::time::now_nanos;
use sluice_common::{stage_span, ErrorCode, HttpError, LimitsConfig};
use sluice_logql::Expr;
use sluice_proto::frontend::{Header, HttpRequest, HttpResponse};
use tracing::Instrument;

use super::org::OrgId;
use super::results::{matrix_body, merge_matrix, merge_streams, sort_matrix, Answer, Matrix};
use super::shard::{merge_shards, stats_bytes, Sharding};
use super::split::{log_splits, metric_splits};
use super::Frontend;
use crate::http::{streams_body_with_stats, summary_stats};
use crate::params::{Direction, Params};
use sluice_chunk::Shard;
use tokio::sync::Semaphore;

/// Largest request body the frontend forwards.
const MAX_BODY: usize = 16 << 20;

/// Endpoints forwarded unchanged to a querier.
const FORWARDED: &[&str] = &[
    "/loki/api/v1/query",
    "/loki/api/v1/labels",
    "/loki/api/v1/label",
    "/loki/api/v1/label/{name}/values",
    "/loki/api/v1/series",
    "/loki/api/v1/format_query",
    "/loki/api/v1/index/stats",
    "/loki/api/v1/index/volume",
    "/loki/api/v1/index/volume_range",
];

pub(super) fn router(frontend: Arc<Frontend>) -> Router {
    let mut router = Router::new().route(
        "/loki/api/v1/query_range",
        get(query_range).post(query_range),
    );
    for path in FORWARDED {
        router = router.route(path, get(forward).post(forward));
    }
    if !frontend.config.tail_proxy_url.is_empty() {
        router = router.route("/loki/api/v1/tail", get(super::tail_proxy::tail));
    }
    router.with_state(frontend)
}

/// A request as the frontend holds it.
struct Incoming {
    tenant: OrgId,
    method: Method,
    path_and_query: String,
    raw_query: Option<String>,
    content_type: Option<HeaderValue>,
    body: Bytes,
}

impl Incoming {
    async fn read(frontend: &Frontend, request: Request) -> Result<Incoming, HttpError> {
        let tenant = OrgId::from_headers(request.headers(), frontend.auth_enabled)?;
        let method = request.method().clone();
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| request.uri().path().to_string());
        let raw_query = request.uri().query().map(str::to_string);
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|err| HttpError::bad_request(format!("reading the request body: {err}")))?;
        Ok(Incoming {
            tenant,
            method,
            path_and_query,
            raw_query,
            content_type,
            body,
        })
    }

    fn params(&self) -> Params {
        let form = (self.method == Method::POST).then_some(self.body.as_ref());
        Params::parse(self.raw_query.as_deref(), form)
    }
}

fn tenant_header(tenant: &OrgId) -> Header {
    Header {
        key: ORG_ID_HEADER.to_string(),
        values: vec![tenant.as_str().to_string()],
    }
}

async fn forward(State(frontend): State<Arc<Frontend>>, request: Request) -> Response {
    let incoming = match Incoming::read(&frontend, request).await {
        Ok(incoming) => incoming,
        Err(err) => return err.into_response(),
    };
    let mut headers = vec![tenant_header(&incoming.tenant)];
    if let Some(content_type) = &incoming.content_type {
        headers.push(Header {
            key: header::CONTENT_TYPE.to_string(),
            values: vec![content_type.to_str().unwrap_or_default().to_string()],
        });
    }
    let request = HttpRequest {
        method: incoming.method.to_string(),
        url: incoming.path_and_query.clone(),
        headers,
        body: incoming.body.to_vec(),
    };
    let request = with_long_query_as_form(request);
    match frontend.run(incoming.tenant.as_str(), request).await {
        Ok(answer) => into_response(answer),
        Err(err) => err.into_response(),
    }
}

fn into_response(answer: HttpResponse) -> Response {
    let status = u16::try_from(answer.code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    for header in answer.headers {
        if let (Ok(name), Some(Ok(value))) = (
            header::HeaderName::from_bytes(header.key.as_bytes()),
            header.values.first().map(|v| HeaderValue::from_str(v)),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// A querier's non-200 answer as the frontend's own error.
fn answer_error(answer: &HttpResponse) -> HttpError {
    let code = match answer.code {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthorized,
        404 => ErrorCode::NotFound,
        413 => ErrorCode::PayloadTooLarge,
        429 => ErrorCode::RateLimited,
        499 => ErrorCode::Cancelled,
        503 => ErrorCode::Unavailable,
        504 => ErrorCode::Timeout,
        _ => ErrorCode::Internal,
    };
    // The querier's body is an `HttpError` (message + one newline);
    // turning it back into one must not change a byte.
    let message = String::from_utf8_lossy(&answer.body);
    HttpError::new(
        code,
        message.strip_suffix('\n').unwrap_or(&message).to_string(),
    )
}

async fn query_range(State(frontend): State<Arc<Frontend>>, request: Request) -> Response {
    let started = Instant::now();
    let query_text = request.uri().query().unwrap_or_default().to_string();
    let incoming = match Incoming::read(&frontend, request).await {
        Ok(incoming) => incoming,
        Err(err) => return err.into_response(),
    };
    let limits = incoming.tenant.limits(&frontend.overrides);
    let timeout = limits.query_timeout;
    let span = stage_span!(
        "frontend.split",
        tenant = %incoming.tenant.as_str(),
        pieces = tracing::field::Empty,
    );
    let run = split_query_range(&frontend, incoming, &limits).instrument(span);
    let result = if timeout.is_zero() {
        run.await
    } else {
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::new(
                ErrorCode::Timeout,
                format!(
                    "query timed out after {} (query_timeout)",
                    format_go_duration(i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX))
                ),
            )),
        }
    };
    let slow = frontend.config.log_queries_longer_than;
    if !slow.is_zero() && started.elapsed() > slow {
        tracing::info!(
            params = %query_text,
            duration = ?started.elapsed(),
            trace_id = %sluice_common::telemetry::current_trace_id(),
            "slow query"
        );
    }
    match result {
        Ok(body) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(err) => err.into_response(),
    }
}

/// A `query_range` sub-request for `[start, end]` with `extra` params.
fn sub_request(
    tenant: &OrgId,
    query: &str,
    start: i64,
    end: i64,
    extra: &[(&str, String)],
) -> HttpRequest {
    let mut url = form_urlencoded::Serializer::new(String::from("/loki/api/v1/query_range?"));
    url.append_pair("query", query)
        .append_pair("start", &start.to_string())
        .append_pair("end", &end.to_string());
    for (key, value) in extra {
        url.append_pair(key, value);
    }
    with_long_query_as_form(HttpRequest {
        method: "GET".to_string(),
        url: url.finish(),
        headers: vec![tenant_header(tenant)],
        body: Vec::new(),
    })
}

/// URLs longer than this go to queriers as a form POST instead (a URI is
/// limited to 64 KiB; a LogQL query may be longer).
const MAX_FORWARDED_URL: usize = 8 << 10;

/// Moves the query string of a long body-less GET into a form body, which
/// the queriers read the same way.
fn with_long_query_as_form(request: HttpRequest) -> HttpRequest {
    if request.method != "GET" || !request.body.is_empty() || request.url.len() <= MAX_FORWARDED_URL
    {
        return request;
    }
    let Some((path, query)) = request.url.split_once('?') else {
        return request;
    };
    let mut headers: Vec<Header> = request
        .headers
        .into_iter()
        .filter(|header| {
            !header
                .key
                .eq_ignore_ascii_case(header::CONTENT_TYPE.as_str())
        })
        .collect();
    headers.push(Header {
        key: header::CONTENT_TYPE.to_string(),
        values: vec!["application/x-www-form-urlencoded".to_string()],
    });
    HttpRequest {
        method: "POST".to_string(),
        url: path.to_string(),
        headers,
        body: query.as_bytes().to_vec(),
    }
}

/// Seconds with nanosecond digits, as `step` is read back exactly.
fn seconds(nanos: i64) -> String {
    format!(
        "{}.{:09}",
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000)
    )
}

async fn split_query_range(
    frontend: &Frontend,
    incoming: Incoming,
    limits: &LimitsConfig,
) -> Result<String, HttpError> {
    let started = Instant::now();
    let params = incoming.params();
    let query = params.query()?.to_string();
    let expr =
        sluice_logql::parse_expr(&query).map_err(|err| HttpError::bad_request(err.to_string()))?;
    let mut range = params.range()?;
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    if !limits.max_query_lookback.is_zero() {
        range.start = range
            .start
            .max(now_nanos() - nanos(limits.max_query_lookback));
        range.end = range.end.max(range.start);
    }
    let length = range.end - range.start;
    if !limits.max_query_length.is_zero() && length > nanos(limits.max_query_length) {
        return Err(HttpError::bad_request(format!(
            "the query time range exceeds the limit (query length: {}, limit: {})",
            format_go_duration(length),
            format_go_duration(nanos(limits.max_query_length))
        )));
    }
    let interval = nanos(limits.split_queries_by_interval);
    let parallelism = limits.max_query_parallelism.max(1);
    let tenant = &incoming.tenant;
    if let Expr::Log(_) = expr {
        let limit = params.limit(limits.max_entries_limit_per_query)?;
        let direction = params.direction()?;
        let mut extra = vec![
            ("limit", limit.to_string()),
            (
                "direction",
                match direction {
                    Direction::Forward => "forward",
                    Direction::Backward => "backward",
                }
                .to_string(),
            ),
        ];
        if let Some(step_interval) = params.get("interval") {
            extra.push(("interval", step_interval.to_string()));
        }
        let mut pieces = log_splits(range.start, range.end, interval);
        tracing::Span::current().record("pieces", pieces.len());
        if direction == Direction::Backward {
            pieces.reverse();
        }
        let mut answers = Vec::new();
        let mut entries = 0usize;
        let mut sent = 0usize;
        for batch in pieces.chunks(parallelism) {
            sent += batch.len();
            let replies = futures::future::join_all(batch.iter().map(|(start, end)| {
                frontend.run(
                    tenant.as_str(),
                    sub_request(tenant, &query, *start, *end, &extra),
                )
            }))
            .await;
            for reply in replies {
                let reply = reply?;
                if reply.code != 200 {
                    return Err(answer_error(&reply));
                }
                match Answer::decode(&reply.body)? {
                    Answer::Streams(streams) => {
                        entries += streams.iter().map(|s| s.entries.len()).sum::<usize>();
                        answers.push(streams);
                    }
                    Answer::Matrix(_) => {
                        return Err(HttpError::new(
                            ErrorCode::Internal,
                            "log query answered with a matrix",
                        ))
                    }
                }
            }
            // Pieces run in the query's direction: once enough entries
            // came back, later pieces cannot make it into the answer.
            if entries >= limit as usize {
                break;
            }
        }
        frontend.split_queries.inc_by(sent as u64);
        let merged = stage_span!("frontend.merge", answers = answers.len())
            .in_scope(|| merge_streams(answers, limit as usize, direction));
        let total = merged.iter().map(|s| s.entries.len()).sum();
        let stats = summary_stats(started.elapsed().as_secs_f64(), total, sent, sent, 0);
        return Ok(streams_body_with_stats(&merged, &stats));
    }

    let mut step = params.step()?;
    if step == 0 {
        step = sluice_logql::default_step_ns(range.start, range.end);
    }
    // The engine evaluates at multiples of the step from start floored to
    // end ceiled; cut on that same grid so every point lands in one piece
    // (`align_queries_with_step` is therefore always in effect).
    range.start -= range.start.rem_euclid(step);
    let rem = range.end.rem_euclid(step);
    if rem != 0 {
        range.end += step - rem;
    }
    let pieces = metric_splits(range.start, range.end, step, interval);
    let piece_count = pieces.len();
    tracing::Span::current().record("pieces", piece_count);
    let sharding = if frontend.query_range.parallelise_shardable_queries {
        Sharding::plan(&expr, limits)
    } else {
        None
    };
    let metric = MetricQuery {
        tenant,
        query: &query,
        origin: range.start,
        step,
        interval,
        extra: vec![("step", seconds(step))],
        freshness: nanos(limits.max_cache_freshness_per_query),
        sharding,
        permits: Semaphore::new(parallelism),
    };
    let results: Vec<Result<(Matrix, Sent), HttpError>> = stream::iter(pieces)
        .map(|piece| frontend.metric_piece(&metric, piece))
        .buffered(parallelism)
        .collect()
        .await;
    let merge = stage_span!("frontend.merge", answers = results.len());
    let merging = merge.enter();
    let mut matrix = BTreeMap::new();
    let mut sent = Sent::default();
    for result in results {
        let (piece, piece_sent) = result?;
        sent.add(piece_sent);
        merge_matrix(&mut matrix, piece);
    }
    sort_matrix(&mut matrix);
    drop(merging);
    if metric.sharding.is_some() && matrix.len() > limits.max_query_series {
        return Err(HttpError::bad_request(format!(
            "maximum of series ({}) reached for a single query",
            limits.max_query_series
        )));
    }
    frontend.split_queries.inc_by(sent.subqueries as u64);
    let stats = summary_stats(
        started.elapsed().as_secs_f64(),
        0,
        piece_count,
        sent.subqueries,
        sent.shards,
    );
    Ok(matrix_body(&matrix, &stats))
}

/// A metric range query as its split pieces are run.
pub(super) struct MetricQuery<'a> {
    pub(super) tenant: &'a OrgId,
    pub(super) query: &'a str,
    /// Points are evaluated at `origin + k·step`.
    pub(super) origin: i64,
    pub(super) step: i64,
    /// The split interval (the cache's bucket).
    pub(super) interval: i64,
    /// Parameters every sub-query carries besides the query and range.
    pub(super) extra: Vec<(&'static str, String)>,
    /// Points newer than now minus this are not cached.
    pub(super) freshness: i64,
    pub(super) sharding: Option<Sharding>,
    /// Sub-queries of this query in flight at once
    /// (`max_query_parallelism`), over all pieces and shards.
    permits: Semaphore,
}

/// Sub-queries sent for a query or piece.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sent {
    pub(super) subqueries: usize,
    /// The most shards any piece was cut into (0: none sharded).
    pub(super) shards: usize,
}

impl Sent {
    pub(super) fn add(&mut self, other: Sent) {
        self.subqueries += other.subqueries;
        self.shards = self.shards.max(other.shards);
    }
}

impl Frontend {
    /// Runs `[start, end]` of a metric query on the queriers, as shards when
    /// the query is shardable and large enough; returns its series.
    pub(super) async fn fetch_matrix(
        &self,
        metric: &MetricQuery<'_>,
        (start, end): (i64, i64),
    ) -> Result<(Matrix, Sent), HttpError> {
        let sharded = match &metric.sharding {
            Some(sharding) => {
                let lookbehind = start - sharding.lookbehind;
                match self
                    .stats_bytes(metric, &sharding.selector, lookbehind, end)
                    .await
                {
                    Ok(bytes) => Some((sharding, sharding.shard_count(bytes))),
                    Err(err) => {
                        tracing::warn!(error = %err.message, "index stats for sharding failed; not sharding");
                        None
                    }
                }
            }
            None => None,
        };
        let Some((sharding, count)) = sharded.filter(|(_, count)| *count >= 2) else {
            let matrix = self.fetch_shard(metric, (start, end), None).await?;
            return Ok((
                matrix,
                Sent {
                    subqueries: 1,
                    shards: 0,
                },
            ));
        };
        let of = u32::try_from(count).unwrap_or(u32::MAX);
        let parts = futures::future::try_join_all(
            (0..of).map(|index| self.fetch_shard(metric, (start, end), Shard::new(index, of))),
        )
        .await?;
        let merged = merge_shards(sharding.merge, parts);
        Ok((
            merged,
            Sent {
                subqueries: count,
                shards: count,
            },
        ))
    }

    /// The bytes the streams of `selector` hold in `[start, end]`.
    async fn stats_bytes(
        &self,
        metric: &MetricQuery<'_>,
        selector: &str,
        start: i64,
        end: i64,
    ) -> Result<u64, HttpError> {
        let url = form_urlencoded::Serializer::new(String::from("/loki/api/v1/index/stats?"))
            .append_pair("query", selector)
            .append_pair("start", &start.to_string())
            .append_pair("end", &end.to_string())
            .finish();
        let request = HttpRequest {
            method: "GET".to_string(),
            url,
            headers: vec![tenant_header(metric.tenant)],
            body: Vec::new(),
        };
        let reply = {
            let _permit = metric.permits.acquire().await;
            self.run(metric.tenant.as_str(), with_long_query_as_form(request))
                .await?
        };
        if reply.code != 200 {
            return Err(answer_error(&reply));
        }
        stats_bytes(&reply.body)
    }

    /// Runs one metric sub-query (one shard of it, when given) on a querier.
    async fn fetch_shard(
        &self,
        metric: &MetricQuery<'_>,
        (start, end): (i64, i64),
        shard: Option<Shard>,
    ) -> Result<Matrix, HttpError> {
        let mut extra: Vec<(&str, String)> = metric.extra.clone();
        if let Some(shard) = shard {
            extra.push(("shards", shard.to_string()));
        }
        let reply = {
            let _permit = metric.permits.acquire().await;
            self.run(
                metric.tenant.as_str(),
                sub_request(metric.tenant, metric.query, start, end, &extra),
            )
            .await?
        };
        if reply.code != 200 {
            return Err(answer_error(&reply));
        }
        match Answer::decode(&reply.body)? {
            Answer::Matrix(matrix) => Ok(matrix),
            Answer::Streams(_) => Err(HttpError::new(
                ErrorCode::Internal,
                "metric query answered with streams",
            )),
        }
    }
}
