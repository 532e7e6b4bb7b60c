//! Queries that need the LogQL engine (metric queries, and log queries with
//! parsers or formatting): the engine plans which data each selector needs,
//! the querier fetches it from ingesters and the store (line filters pushed
//! down), and the engine evaluates off the async runtime.

use futures::FutureExt;
use sluice_common::{ErrorCode, HttpError, TenantId};
use sluice_logql::{
    DataRequest, EvalErrorKind, EvalLimits, Expr, InputStream, LabelSet, LogExpr, QueryParams,
    QueryValue, Stage,
};

use crate::params::{Direction, TimeRange};
use crate::querier::{dedupe_sorted, Querier};

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
    /// Fetches every entry a data request needs, in ascending time order per
    /// stream, from the ingesters (recent window) and the store.
    pub(crate) async fn fetch(
        &self,
        tenant: &TenantId,
        request: &DataRequest,
    ) -> Result<Vec<InputStream>, HttpError> {
        let selection = pushdown(&request.log);
        let range = TimeRange {
            start: request.from_ns,
            end: request.through_ns,
        };
        let by_labels = self
            .collect(tenant, &selection, range, 0, Direction::Forward)
            .boxed()
            .await?;
        let mut streams = Vec::with_capacity(by_labels.len());
        for (labels_text, mut entries) in by_labels {
            let labels = sluice_chunk::Labels::parse(&labels_text).map_err(|err| {
                HttpError::new(
                    ErrorCode::Internal,
                    format!("unparsable stream labels {labels_text:?}: {err}"),
                )
            })?;
            entries.sort_by_key(|(timestamp, _)| *timestamp);
            dedupe_sorted(&mut entries);
            streams.push(InputStream {
                labels: LabelSet::new(
                    labels
                        .iter()
                        .map(|label| (label.name.clone(), label.value.clone()))
                        .collect(),
                ),
                entries,
            });
        }
        Ok(streams)
    }

    /// Plans, fetches and evaluates a query with the LogQL engine.
    pub(crate) async fn evaluate(
        &self,
        tenant: &TenantId,
        expr: Expr,
        params: QueryParams,
    ) -> Result<QueryValue, HttpError> {
        let requests = sluice_logql::plan(&expr, &params).map_err(eval_error)?;
        let mut data = Vec::with_capacity(requests.len());
        for request in &requests {
            data.push(self.fetch(tenant, request).boxed().await?);
        }
        let limits = EvalLimits {
            max_query_series: self.limits.max_query_series,
            max_entries_limit_per_query: self.limits.max_entries_limit_per_query,
        };
        tokio::task::spawn_blocking(move || sluice_logql::evaluate(&expr, &params, data, &limits))
            .await
            .map_err(|err| HttpError::new(ErrorCode::Internal, format!("evaluation task: {err}")))?
            .map_err(eval_error)
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
