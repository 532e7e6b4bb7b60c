//! Which metric queries can run as shards (each over a disjoint part of
//! the streams) whose answers merge into exactly the unsharded answer.
//!
//! A range aggregation's series are *disjoint* across shards when each
//! series comes from one stream: no `by`/`without` on the range
//! aggregation, no `unwrap` (it drops the unwrapped label) and no stage
//! that rewrites labels (`label_format`, `drop`, `keep`); parsers never
//! overwrite a stream label, they add `_extracted` ones. Disjoint series
//! merge by concatenation. Some functions merge exactly even when series
//! from several shards coincide: additive ones (`count_over_time`,
//! `rate`, `bytes_over_time`, `bytes_rate`, `sum_over_time`) by summing,
//! `min_over_time` and `max_over_time` by min and max. A `sum`, `count`,
//! `min` or `max` over such a range aggregation is computed per shard and
//! the parts merged by sum (sum and count), min or max. Anything else
//! (`avg`, `topk`, quantiles across coinciding series, binary operations,
//! `absent_over_time`) is not sharded.

use crate::ast::{Expr, RangeAggregation, RangeOp, Stage, VectorOp};

/// How the answers of a query's shards merge into its answer. Matching
/// series (same labels) combine point by point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardMerge {
    /// Shards hold disjoint series: the union.
    Concat,
    /// Values of the same series and time add up.
    Sum,
    /// The smallest value of the same series and time.
    Min,
    /// The largest value of the same series and time.
    Max,
}

/// Returns how the shards of `expr` merge, or `None` when sharding it
/// would not give exactly the unsharded answer.
pub fn shard_merge(expr: &Expr) -> Option<ShardMerge> {
    match expr {
        Expr::RangeAggregation(agg) => {
            let (disjoint, combine) = range_traits(agg)?;
            combine.or(disjoint.then_some(ShardMerge::Concat))
        }
        Expr::VectorAggregation(vector) if vector.param.is_none() => {
            let Expr::RangeAggregation(inner) = vector.inner.as_ref() else {
                return None;
            };
            let (disjoint, combine) = range_traits(inner)?;
            match vector.op {
                VectorOp::Sum if disjoint || combine == Some(ShardMerge::Sum) => {
                    Some(ShardMerge::Sum)
                }
                VectorOp::Count if disjoint => Some(ShardMerge::Sum),
                VectorOp::Min if disjoint || combine == Some(ShardMerge::Min) => {
                    Some(ShardMerge::Min)
                }
                VectorOp::Max if disjoint || combine == Some(ShardMerge::Max) => {
                    Some(ShardMerge::Max)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether a range aggregation's series are disjoint across shards, and
/// how coinciding series would combine; `None` if it cannot be sharded.
fn range_traits(agg: &RangeAggregation) -> Option<(bool, Option<ShardMerge>)> {
    let combine = match agg.op {
        RangeOp::AbsentOverTime => return None,
        RangeOp::CountOverTime
        | RangeOp::Rate
        | RangeOp::BytesOverTime
        | RangeOp::BytesRate
        | RangeOp::SumOverTime => Some(ShardMerge::Sum),
        RangeOp::MinOverTime => Some(ShardMerge::Min),
        RangeOp::MaxOverTime => Some(ShardMerge::Max),
        _ => None,
    };
    let rewrites_labels = agg.range.log.pipeline.iter().any(|stage| {
        matches!(
            stage,
            Stage::LabelFormat(_) | Stage::Drop(_) | Stage::Keep(_)
        )
    });
    let disjoint = agg.grouping.is_none() && agg.range.unwrap.is_none() && !rewrites_labels;
    Some((disjoint, combine))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_expr;

    fn merge(query: &str) -> Option<ShardMerge> {
        shard_merge(&parse_expr(query).unwrap())
    }

    #[test]
    fn shardable_queries_and_their_merge() {
        use ShardMerge::*;
        let cases = [
            (r#"count_over_time({app="a"}[5m])"#, Some(Sum)),
            (r#"rate({app="a"} | json [1m])"#, Some(Sum)),
            (r#"sum by (level) (rate({app="a"} |= "x" [5m]))"#, Some(Sum)),
            (r#"count(count_over_time({app="a"}[5m]))"#, Some(Sum)),
            (r#"min(bytes_over_time({app="a"}[5m]))"#, Some(Min)),
            (
                r#"max by (pod) (count_over_time({app="a"}[5m]))"#,
                Some(Max),
            ),
            (
                r#"avg_over_time({app="a"} | logfmt | unwrap took [5m])"#,
                None,
            ),
            (
                r#"last_over_time({app="a"} | logfmt | unwrap took [5m])"#,
                None,
            ),
            (
                r#"quantile_over_time(0.9, {app="a"} | unwrap took [5m]) by (pod)"#,
                None,
            ),
            (
                r#"sum(sum_over_time({app="a"} | logfmt | unwrap took [5m]))"#,
                Some(Sum),
            ),
            (
                r#"max(max_over_time({app="a"} | logfmt | unwrap took [5m]) by (pod))"#,
                Some(Max),
            ),
            (
                r#"max(min_over_time({app="a"} | logfmt | unwrap took [5m]))"#,
                None,
            ),
            (
                r#"sum(count_over_time({app="a"} | drop pod [5m]))"#,
                Some(Sum),
            ),
            (r#"count(count_over_time({app="a"} | drop pod [5m]))"#, None),
            (
                r#"count_over_time({app="a"} | label_format pod="x" [5m])"#,
                Some(Sum),
            ),
            (r#"absent_over_time({app="a"}[5m])"#, None),
            (r#"avg(count_over_time({app="a"}[5m]))"#, None),
            (r#"topk(3, count_over_time({app="a"}[5m]))"#, None),
            (r#"sum(sum(count_over_time({app="a"}[5m])))"#, None),
            (r#"sum(count_over_time({app="a"}[5m])) / 2"#, None),
            (r#"{app="a"}"#, None),
        ];
        for (query, expected) in cases {
            assert_eq!(merge(query), expected, "{query}");
        }
    }
}
