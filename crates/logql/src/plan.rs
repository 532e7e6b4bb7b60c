//! Query planning: evaluation timestamps (step alignment) and the data each
//! log selector occurrence needs.

use crate::ast::{Expr, LogExpr};
use crate::value::{DataRequest, EvalError, QueryKind, QueryParams};

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
        Expr::RangeAggregation(agg) => {
            let range = &agg.range;
            out.push(window_request(
                &range.log,
                first,
                last,
                range.range,
                range.offset,
            ));
        }
        Expr::VectorAggregation(agg) => collect_metric(&agg.inner, first, last, out),
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

fn window_request(log: &LogExpr, first: i64, last: i64, range: i64, offset: i64) -> DataRequest {
    DataRequest {
        log: log.clone(),
        from_ns: first
            .saturating_sub(offset)
            .saturating_sub(range)
            .saturating_add(1),
        through_ns: last.saturating_sub(offset).saturating_add(1),
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
}
