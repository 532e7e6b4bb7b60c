//! Query planning: evaluation timestamps (step alignment) and the data each
//! log selector occurrence needs.

use crate::ast::{Expr, Grouping, LogExpr, RangeAggregation, RangeOp, Stage, VectorOp};
use crate::extract::extraction_text;
use crate::range_agg::can_push_down_sum;
use crate::value::{DataRequest, Direction, EvalError, QueryKind, QueryParams};

const NS_PER_SEC: i64 = 1_000_000_000;

/// Loki's maximum number of points per series of a range query.
pub const MAX_POINTS: i64 = 11_000;

/// The step Loki uses when the caller gives none:
/// `max(1, floor((end − start) / 250))` seconds.
pub fn default_step_ns(start_ns: i64, end_ns: i64) -> i64 {
    let span_s = end_ns.saturating_sub(start_ns) / NS_PER_SEC;
    (span_s / 250).max(1) * NS_PER_SEC
}

/// The step actually used for a metric range query.
pub(crate) fn effective_step(params: &QueryParams) -> i64 {
    if params.step_ns > 0 {
        params.step_ns
    } else {
        default_step_ns(params.start_ns, params.end_ns)
    }
}

/// The evaluation timestamps of a metric query: `end` for instant queries;
/// for range queries start floored and end ceiled to a multiple of the step
/// (as Loki's query-frontend does), then `start, start+step, … ≤ end`.
pub(crate) fn eval_steps(params: &QueryParams) -> Result<Vec<i64>, EvalError> {
    if params.kind == QueryKind::Instant {
        return Ok(vec![params.end_ns]);
    }
    let step = effective_step(params);
    let start = params.start_ns - params.start_ns.rem_euclid(step);
    let mut end = params.end_ns;
    let rem = end.rem_euclid(step);
    if rem != 0 {
        end = end.saturating_add(step - rem);
    }
    if end < start {
        return Ok(Vec::new());
    }
    let count = (end - start) / step + 1;
    if count > MAX_POINTS + 1 {
        return Err(EvalError::bad_request(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok((0..count).map(|i| start + i * step).collect())
}

/// Plans the data fetches of a query: one [`DataRequest`] per log selector
/// occurrence, left to right (the order [`crate::evaluate`] expects its data
/// in). Log queries need `[start, end)`; a range aggregation evaluated at
/// steps `t₀…tₙ` needs `(t₀ − range − offset, tₙ − offset]`.
pub fn plan(expr: &Expr, params: &QueryParams) -> Result<Vec<DataRequest>, EvalError> {
    let mut requests = Vec::new();
    match expr {
        Expr::Log(log) => requests.push(DataRequest {
            log: log.clone(),
            from_ns: params.start_ns,
            through_ns: params.end_ns,
            counts_only: false,
            limit: if params.interval_ns > 0 {
                0
            } else {
                params.limit
            },
            direction: params.direction,
            extraction: None,
        }),
        _ => {
            let steps = eval_steps(params)?;
            let (first, last) = match (steps.first(), steps.last()) {
                (Some(f), Some(l)) => (*f, *l),
                _ => (params.start_ns, params.start_ns),
            };
            collect_metric(expr, first, last, &mut requests);
        }
    }
    Ok(requests)
}

fn collect_metric(expr: &Expr, first: i64, last: i64, out: &mut Vec<DataRequest>) {
    match expr {
        Expr::RangeAggregation(agg) => out.push(range_request(agg, None, first, last)),
        Expr::VectorAggregation(agg) => match &*agg.inner {
            // The engine pushes this grouping into the extraction
            // (`eval_metric`), so the sources must too.
            Expr::RangeAggregation(inner)
                if agg.op == VectorOp::Sum && can_push_down_sum(inner) =>
            {
                out.push(range_request(
                    inner,
                    Some(agg.grouping.as_ref()),
                    first,
                    last,
                ))
            }
            inner => collect_metric(inner, first, last, out),
        },
        Expr::BinOp(bin) => {
            collect_metric(&bin.lhs, first, last, out);
            collect_metric(&bin.rhs, first, last, out);
        }
        Expr::LabelReplace(replace) => collect_metric(&replace.inner, first, last, out),
        // A bare log selector inside a metric expression is rejected by the
        // parser; literals and vector() need no data.
        Expr::Log(_) | Expr::Literal(_) | Expr::Vector(_) => {}
    }
}

fn range_request(
    agg: &RangeAggregation,
    pushdown: Option<Option<&Grouping>>,
    first: i64,
    last: i64,
) -> DataRequest {
    let range = &agg.range;
    let mut request = window_request(&range.log, first, last, range.range, range.offset);
    request.counts_only = counts_only(agg);
    if !request.counts_only {
        request.extraction = Some(extraction_text(agg, pushdown));
    }
    request
}

/// Whether a range aggregation only counts the entries that pass its line
/// filters (the lines themselves are never read).
fn counts_only(agg: &RangeAggregation) -> bool {
    matches!(
        agg.op,
        RangeOp::CountOverTime | RangeOp::Rate | RangeOp::AbsentOverTime
    ) && agg.range.unwrap.is_none()
        && agg
            .range
            .log
            .pipeline
            .iter()
            .all(|stage| matches!(stage, Stage::LineFilter(_)))
}

/// Returns `expr` with the line filters of every counting range
/// aggregation ([`DataRequest::counts_only`]) removed: the query to
/// evaluate over data whose source applied those filters and replaced the
/// lines.
pub fn without_counted_filters(expr: &Expr) -> Expr {
    let mut expr = expr.clone();
    strip_counted(&mut expr);
    expr
}

fn strip_counted(expr: &mut Expr) {
    match expr {
        Expr::RangeAggregation(agg) => {
            if counts_only(agg) {
                agg.range.log.pipeline.clear();
            }
        }
        Expr::VectorAggregation(agg) => strip_counted(&mut agg.inner),
        Expr::BinOp(bin) => {
            strip_counted(&mut bin.lhs);
            strip_counted(&mut bin.rhs);
        }
        Expr::LabelReplace(replace) => strip_counted(&mut replace.inner),
        Expr::Log(_) | Expr::Literal(_) | Expr::Vector(_) => {}
    }
}

fn window_request(log: &LogExpr, first: i64, last: i64, range: i64, offset: i64) -> DataRequest {
    DataRequest {
        log: log.clone(),
        from_ns: first
            .saturating_sub(offset)
            .saturating_sub(range)
            .saturating_add(1),
        through_ns: last.saturating_sub(offset).saturating_add(1),
        counts_only: false,
        limit: 0,
        direction: Direction::Forward,
        extraction: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Direction;

    fn params(start: i64, end: i64, step: i64) -> QueryParams {
        QueryParams {
            start_ns: start,
            end_ns: end,
            step_ns: step,
            interval_ns: 0,
            limit: 100,
            direction: Direction::Backward,
            kind: QueryKind::Range,
        }
    }

    #[test]
    fn default_step() {
        assert_eq!(default_step_ns(0, 3600 * NS_PER_SEC), 14 * NS_PER_SEC);
        assert_eq!(default_step_ns(0, 10 * NS_PER_SEC), NS_PER_SEC);
    }

    #[test]
    fn alignment() {
        let s = NS_PER_SEC;
        let steps = eval_steps(&params(7 * s, 23 * s, 10 * s)).expect("steps");
        assert_eq!(steps, vec![0, 10 * s, 20 * s, 30 * s]);
        let steps = eval_steps(&params(10 * s, 30 * s, 10 * s)).expect("steps");
        assert_eq!(steps, vec![10 * s, 20 * s, 30 * s]);
    }

    #[test]
    fn plans_windows() {
        let s = NS_PER_SEC;
        let expr =
            crate::parse_expr("count_over_time({a=\"b\"}[1m] offset 10s) + rate({c=\"d\"}[30s])")
                .expect("parse");
        let reqs = plan(&expr, &params(60 * s, 120 * s, 60 * s)).expect("plan");
        assert_eq!(reqs.len(), 2);
        assert_eq!(
            (reqs[0].from_ns, reqs[0].through_ns),
            (-10 * s + 1, 110 * s + 1)
        );
        assert_eq!(
            (reqs[1].from_ns, reqs[1].through_ns),
            (30 * s + 1, 120 * s + 1)
        );
    }

    /// Evaluating [`without_counted_filters`] over data a source filtered
    /// and whose lines it replaced answers exactly as the whole query over
    /// the raw lines.
    #[test]
    fn counted_requests_need_no_lines() {
        use crate::labelset::LabelSet;
        use crate::value::{EvalLimits, Input, InputStream, QueryValue};
        const SEC: i64 = 1_000_000_000;
        let raw: Vec<InputStream> = ["a", "b"]
            .iter()
            .map(|pod| InputStream {
                labels: LabelSet::new(vec![("pod".to_string(), pod.to_string())]),
                entries: (0..600)
                    .map(|i| {
                        let level = if i % 3 == 0 { "error" } else { "info" };
                        (i * SEC, format!("level={level} n={i} pod={pod}"))
                    })
                    .collect(),
            })
            .collect();
        let params = QueryParams {
            start_ns: 60 * SEC,
            end_ns: 590 * SEC,
            step_ns: 30 * SEC,
            interval_ns: 0,
            limit: 100,
            direction: crate::value::Direction::Backward,
            kind: QueryKind::Range,
        };
        let limits = EvalLimits {
            max_query_series: 100,
            max_entries_limit_per_query: 0,
        };
        let queries = [
            r#"sum by (pod) (count_over_time({pod=~".+"} |= "level=error" != "n=3" [1m]))"#,
            r#"rate({pod="a"} |~ "n=[0-9]*7" [2m]) / on() group_left sum(rate({pod=~".+"}[1m]))"#,
            r#"sum(rate({pod=~".+"} | logfmt | level="error" [1m]))"#,
            r#"sum(bytes_over_time({pod=~".+"} |= "error" [1m]))"#,
        ];
        for query in queries {
            let expr = crate::parse_expr(query).unwrap();
            let requests = plan(&expr, &params).unwrap();
            let whole_data: Vec<Input> = requests
                .iter()
                .map(|_| Input::Entries(raw.clone()))
                .collect();
            let whole = crate::evaluate(&expr, &params, whole_data, &limits).unwrap();
            // What a source returns: filtered, and for counted requests
            // with the lines replaced.
            let fetched: Vec<Input> = requests
                .iter()
                .map(|request| {
                    let filters = request.log.line_filters();
                    let streams = raw
                        .iter()
                        .map(|stream| InputStream {
                            labels: stream.labels.clone(),
                            entries: stream
                                .entries
                                .iter()
                                .filter(|(_, line)| filters.matches(line.as_bytes()))
                                .map(|(ts, line)| {
                                    let text = if request.counts_only {
                                        "digest".to_string()
                                    } else {
                                        line.clone()
                                    };
                                    (*ts, text)
                                })
                                .collect(),
                        })
                        .collect();
                    Input::Entries(streams)
                })
                .collect();
            let counted =
                crate::evaluate(&without_counted_filters(&expr), &params, fetched, &limits)
                    .unwrap();
            assert!(
                matches!(whole, QueryValue::Matrix(ref m) if !m.is_empty()),
                "{query}"
            );
            assert_eq!(counted, whole, "{query}");
        }
        let flags = |query: &str| -> Vec<bool> {
            plan(&crate::parse_expr(query).unwrap(), &params)
                .unwrap()
                .iter()
                .map(|request| request.counts_only)
                .collect()
        };
        assert_eq!(flags(queries[0]), [true]);
        assert_eq!(flags(queries[1]), [true, true]);
        assert_eq!(flags(queries[2]), [false]);
        assert_eq!(flags(queries[3]), [false]);
    }
}
