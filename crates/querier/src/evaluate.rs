//! Queries that need the LogQL engine (metric queries, and log queries with
//! parsers or formatting): the engine plans which data each selector needs,
//! the querier fetches it from ingesters and the store (which run the
//! pipeline as a filter and apply a log query's limit to what it keeps),
//! and the engine evaluates off the async runtime.

use futures::FutureExt;
use sluice_chunk::Shard;
use sluice_common::{stage_span, ErrorCode, HttpError, TenantId};
use sluice_logql::{
    DataRequest, EvalErrorKind, EvalLimits, Expr, Input, InputStream, LabelSet, LogExpr,
    QueryParams, QueryValue, Stage,
};

use crate::params::{Direction, TimeRange};
use crate::querier::{dedupe_sorted, result_labels, Querier, Read};
use crate::tenants::Tenants;

/// Returns the part of a pipeline that can run on raw lines before
/// anything else: its line filters up to the first stage that rewrites the
/// line.
pub(crate) fn pushdown(log: &LogExpr) -> LogExpr {
    let pipeline = log
        .pipeline
        .iter()
        .take_while(|stage| {
            !matches!(
                stage,
                Stage::LineFormat(_) | Stage::Decolorize | Stage::Unpack
            )
        })
        .filter(|stage| matches!(stage, Stage::LineFilter(_)))
        .cloned()
        .collect();
    LogExpr {
        matchers: log.matchers.clone(),
        pipeline,
    }
}

impl Querier {
    /// Fetches the data a request needs: the samples of its extraction
    /// when it has one, else every entry.
    pub(crate) async fn fetch(
        &self,
        tenants: &Tenants,
        request: &DataRequest,
        shard: Option<Shard>,
    ) -> Result<Input, HttpError> {
        let (picked, log) = tenants.select_log(&request.log)?;
        let range = TimeRange {
            start: request.from_ns,
            end: request.through_ns,
        };
        // Samples extracted at the sources, unless the pipeline might read
        // `__tenant_id__` (multi-tenant reads) or delete requests touch the
        // range (deleted lines must be hidden before extraction).
        if let (Some(extraction), false) = (&request.extraction, tenants.is_multi()) {
            let mut deletes = false;
            for tenant in &picked {
                deletes |= !self.delete_filters(tenant, range).boxed().await?.is_empty();
            }
            if !deletes {
                let mut series = Vec::new();
                for tenant in &picked {
                    series.extend(
                        self.collect_samples(tenant, &log, extraction, range, shard)
                            .boxed()
                            .await?,
                    );
                }
                return Ok(Input::Samples(series));
            }
        }
        self.fetch_entries(tenants, picked, &log, range, request, shard)
            .boxed()
            .await
    }

    /// Fetches every entry of `log` in `range` a data request needs, in
    /// ascending time order per stream, from the ingesters (recent window)
    /// and the store, for every tenant picked.
    async fn fetch_entries(
        &self,
        tenants: &Tenants,
        picked: Vec<&TenantId>,
        log: &LogExpr,
        range: TimeRange,
        request: &DataRequest,
        shard: Option<Shard>,
    ) -> Result<Input, HttpError> {
        // The whole pipeline decides at the sources which entries to send,
        // unless it might read `__tenant_id__`, which only the querier adds
        // (multi-tenant reads): then only the leading line filters go, and
        // a limit cannot be applied before the pipeline.
        let pipeline_filter = !tenants.is_multi() && !log.has_only_line_filters();
        let exact = pipeline_filter || log.has_only_line_filters();
        let selection = if pipeline_filter {
            log.clone()
        } else {
            pushdown(log)
        };
        let mut streams = Vec::new();
        for tenant in picked {
            let by_labels = self
                .collect(
                    tenant,
                    &selection,
                    range,
                    Read {
                        limit: if exact { request.limit } else { 0 },
                        direction: match request.direction {
                            sluice_logql::Direction::Forward => Direction::Forward,
                            sluice_logql::Direction::Backward => Direction::Backward,
                        },
                        shard,
                        line_digests: request.counts_only,
                        pipeline_filter,
                    },
                )
                .boxed()
                .await?;
            let merge = stage_span!(
                "querier.merge",
                tenant = %tenant,
                streams = by_labels.len(),
            );
            let _merging = merge.enter();
            for (labels_text, mut entries) in by_labels {
                let labels = result_labels(&labels_text, tenants, tenant)?;
                entries.sort_by_key(|(timestamp, _)| *timestamp);
                dedupe_sorted(&mut entries);
                streams.push(InputStream {
                    labels: LabelSet::new(labels),
                    entries,
                });
            }
        }
        Ok(Input::Entries(streams))
    }

    /// Plans, fetches and evaluates a query with the LogQL engine, over
    /// the streams of `shard` only when given (the query frontend merges
    /// the shards of a shardable query).
    pub(crate) async fn evaluate(
        &self,
        tenants: &Tenants,
        expr: Expr,
        params: QueryParams,
        shard: Option<Shard>,
    ) -> Result<QueryValue, HttpError> {
        self.check_query_range(tenants, &expr)?;
        let requests = sluice_logql::plan(&expr, &params).map_err(eval_error)?;
        let mut data = Vec::with_capacity(requests.len());
        for request in &requests {
            data.push(self.fetch(tenants, request, shard).boxed().await?);
        }
        // Counted requests came back filtered at the source, perhaps with
        // digests for lines: evaluate without their filters.
        let expr = if requests.iter().any(|request| request.counts_only) {
            sluice_logql::without_counted_filters(&expr)
        } else {
            expr
        };
        let limits = self.eval_limits(tenants);
        let span = stage_span!(
            "querier.pipeline",
            streams = data.iter().map(input_streams).sum::<usize>(),
            entries = data.iter().map(input_entries).sum::<usize>(),
        );
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| sluice_logql::evaluate(&expr, &params, data, &limits))
        })
        .await
        .map_err(|err| HttpError::new(ErrorCode::Internal, format!("evaluation task: {err}")))?
        .map_err(eval_error)
    }

    /// Refuses a range aggregation whose `[range]` is longer than the
    /// smallest non-zero `max_query_range` of `tenants`, with Loki's message.
    fn check_query_range(&self, tenants: &Tenants, expr: &Expr) -> Result<(), HttpError> {
        let limit = tenants
            .all()
            .iter()
            .map(|tenant| self.overrides.limits(tenant.as_str()).max_query_range)
            .filter(|limit| !limit.is_zero())
            .min();
        match limit {
            Some(limit) if u128::try_from(expr.max_range()).unwrap_or(0) > limit.as_nanos() => {
                Err(HttpError::bad_request("[interval] value exceeds limit"))
            }
            _ => Ok(()),
        }
    }

    /// Evaluates a metric query at one instant for one tenant with the same
    /// engine, sources and per-tenant limits as `/loki/api/v1/query`: what
    /// the ruler runs for each rule.
    pub async fn instant_query(
        &self,
        tenant: TenantId,
        query: &str,
        time_ns: i64,
    ) -> Result<QueryValue, HttpError> {
        let expr = sluice_logql::parse_expr(query)
            .map_err(|err| HttpError::bad_request(err.to_string()))?;
        let tenants = Tenants::new(vec![tenant]);
        let params = QueryParams {
            start_ns: time_ns,
            end_ns: time_ns,
            step_ns: 0,
            interval_ns: 0,
            limit: self.eval_limits(&tenants).max_entries_limit_per_query,
            direction: sluice_logql::Direction::Backward,
            kind: sluice_logql::QueryKind::Instant,
        };
        self.evaluate(&tenants, expr, params, None).await
    }

    /// The engine's limits for a read of `tenants`: the smallest of each
    /// tenant's, as Loki combines limits of a multi-tenant query.
    pub(crate) fn eval_limits(&self, tenants: &Tenants) -> EvalLimits {
        let mut max_query_series = usize::MAX;
        let mut max_entries_limit_per_query = u32::MAX;
        for tenant in tenants.all() {
            let limits = self.overrides.limits(tenant.as_str());
            max_query_series = max_query_series.min(limits.max_query_series);
            max_entries_limit_per_query =
                max_entries_limit_per_query.min(limits.max_entries_limit_per_query);
        }
        EvalLimits {
            max_query_series,
            max_entries_limit_per_query,
        }
    }
}

/// Streams (or sample series) in one request's data.
fn input_streams(input: &Input) -> usize {
    match input {
        Input::Entries(streams) => streams.len(),
        Input::Samples(series) => series.len(),
    }
}

/// Entries (or samples) in one request's data.
fn input_entries(input: &Input) -> usize {
    match input {
        Input::Entries(streams) => streams.iter().map(|stream| stream.entries.len()).sum(),
        Input::Samples(series) => series.iter().map(|one| one.samples.len()).sum(),
    }
}

fn eval_error(err: sluice_logql::EvalError) -> HttpError {
    let code = match err.kind {
        EvalErrorKind::BadRequest => ErrorCode::BadRequest,
        _ => ErrorCode::Internal,
    };
    HttpError::new(code, err.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(query: &str) -> LogExpr {
        match sluice_logql::parse_expr(query).unwrap() {
            Expr::Log(log) => log,
            other => panic!("not a log query: {other}"),
        }
    }

    #[test]
    fn pushdown_keeps_filters_on_the_raw_line() {
        let pushed = pushdown(&log(
            r#"{a="1"} |= "x" | json | level="error" != "y" | line_format "{{.a}}" |= "z""#,
        ));
        assert_eq!(pushed.to_string(), r#"{a="1"} |= "x" != "y""#);
        let pushed = pushdown(&log(r#"{a="1"} | logfmt"#));
        assert_eq!(pushed.to_string(), r#"{a="1"}"#);
    }
}
