//! Sharding a metric query by stream: each split piece of a shardable
//! query (see [`sluice_logql::shard_merge`]) runs as `n` sub-queries, each
//! reading one shard of the streams (`shards=<i>_of_<n>`), and their
//! answers merge into exactly the unsharded answer. `n` follows the bytes
//! the query's streams hold in the piece's range, from the index
//! statistics: one shard per `tsdb_max_bytes_per_shard`, at most
//! `tsdb_max_query_parallelism`; a small query is not sharded at all.

use std::collections::BTreeMap;

use sluice_common::{HttpError, LimitsConfig};
use sluice_logql::{Expr, LogExpr, ShardMerge};

use super::results::{LabelPairs, Matrix, Point};

/// How one query is sharded.
#[derive(Debug, Clone)]
pub(super) struct Sharding {
    pub(super) merge: ShardMerge,
    /// The stream selector whose statistics size the shards.
    pub(super) selector: String,
    /// How far before a piece's start its range aggregation reads.
    pub(super) lookbehind: i64,
    max_bytes_per_shard: u64,
    max_shards: usize,
}

impl Sharding {
    /// Returns how `expr` is sharded under `limits`, or `None` when it is
    /// not shardable or sharding is off.
    pub(super) fn plan(expr: &Expr, limits: &LimitsConfig) -> Option<Sharding> {
        if limits.tsdb_max_query_parallelism < 2 || limits.tsdb_max_bytes_per_shard == 0 {
            return None;
        }
        let merge = sluice_logql::shard_merge(expr)?;
        let (log, lookbehind) = match expr {
            Expr::RangeAggregation(agg) => (&agg.range.log, agg.range.range + agg.range.offset),
            Expr::VectorAggregation(vector) => match vector.inner.as_ref() {
                Expr::RangeAggregation(agg) => (&agg.range.log, agg.range.range + agg.range.offset),
                _ => return None,
            },
            _ => return None,
        };
        let selector = LogExpr {
            matchers: log.matchers.clone(),
            pipeline: Vec::new(),
        }
        .to_string();
        Some(Sharding {
            merge,
            selector,
            lookbehind: lookbehind.max(0),
            max_bytes_per_shard: limits.tsdb_max_bytes_per_shard,
            max_shards: limits.tsdb_max_query_parallelism,
        })
    }

    /// Returns the shard count for `bytes` of data.
    pub(super) fn shard_count(&self, bytes: u64) -> usize {
        let wanted = bytes.div_ceil(self.max_bytes_per_shard);
        usize::try_from(wanted)
            .unwrap_or(usize::MAX)
            .clamp(1, self.max_shards)
    }
}

/// Reads the `bytes` of an `index/stats` answer.
pub(super) fn stats_bytes(body: &[u8]) -> Result<u64, HttpError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| HttpError::bad_request(format!("decoding index stats: {err}")))?;
    value["bytes"]
        .as_u64()
        .ok_or_else(|| HttpError::bad_request("index stats without bytes"))
}

/// Merges the answers of every shard of one piece.
pub(super) fn merge_shards(merge: ShardMerge, shards: Vec<Matrix>) -> Matrix {
    let mut merged: BTreeMap<LabelPairs, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut texts: BTreeMap<LabelPairs, BTreeMap<i64, String>> = BTreeMap::new();
    for shard in shards {
        for (labels, points) in shard {
            if merge == ShardMerge::Concat {
                // Disjoint: a series comes from one shard, keep its text.
                texts.entry(labels).or_default().extend(points);
                continue;
            }
            let series = merged.entry(labels).or_default();
            for (time, text) in points {
                let value: f64 = text.parse().unwrap_or(f64::NAN);
                series
                    .entry(time)
                    .and_modify(|current| *current = combine(merge, *current, value))
                    .or_insert(value);
            }
        }
    }
    let mut matrix: Matrix = texts
        .into_iter()
        .map(|(labels, points)| (labels, points.into_iter().collect::<Vec<Point>>()))
        .collect();
    for (labels, points) in merged {
        matrix.insert(
            labels,
            points
                .into_iter()
                .map(|(time, value)| (time, sluice_logql::format_sample_value(value)))
                .collect(),
        );
    }
    matrix
}

fn combine(merge: ShardMerge, a: f64, b: f64) -> f64 {
    match merge {
        ShardMerge::Sum | ShardMerge::Concat => a + b,
        ShardMerge::Min => a.min(b),
        ShardMerge::Max => a.max(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)], points: &[(i64, &str)]) -> (LabelPairs, Vec<Point>) {
        (
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            points
                .iter()
                .map(|(time, value)| (*time, value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn shards_merge_point_by_point() {
        let a: Matrix = [
            series(&[("level", "info")], &[(1, "2"), (2, "3")]),
            series(&[("level", "warn")], &[(2, "1")]),
        ]
        .into();
        let b: Matrix = [series(&[("level", "info")], &[(2, "4"), (3, "5")])].into();
        let sum = merge_shards(ShardMerge::Sum, vec![a.clone(), b.clone()]);
        assert_eq!(
            sum,
            Matrix::from([
                series(&[("level", "info")], &[(1, "2"), (2, "7"), (3, "5")]),
                series(&[("level", "warn")], &[(2, "1")]),
            ])
        );
        let max = merge_shards(ShardMerge::Max, vec![a.clone(), b.clone()]);
        assert_eq!(
            max[&vec![("level".to_string(), "info".to_string())]][1],
            (2, "4".to_string())
        );
        let min = merge_shards(ShardMerge::Min, vec![a, b]);
        assert_eq!(
            min[&vec![("level".to_string(), "info".to_string())]][1],
            (2, "3".to_string())
        );
    }

    #[test]
    fn shard_count_follows_bytes_within_bounds() {
        let limits = LimitsConfig {
            tsdb_max_bytes_per_shard: 1000,
            tsdb_max_query_parallelism: 8,
            ..LimitsConfig::default()
        };
        let expr =
            sluice_logql::parse_expr(r#"sum(count_over_time({app="a"} |= "x" [5m] offset 1m))"#)
                .unwrap();
        let sharding = Sharding::plan(&expr, &limits).unwrap();
        assert_eq!(sharding.selector, r#"{app="a"}"#);
        assert_eq!(sharding.lookbehind, 6 * 60 * 1_000_000_000);
        assert_eq!(sharding.shard_count(0), 1);
        assert_eq!(sharding.shard_count(999), 1);
        assert_eq!(sharding.shard_count(2500), 3);
        assert_eq!(sharding.shard_count(1 << 40), 8);
        let avg = sluice_logql::parse_expr(r#"avg(count_over_time({app="a"}[5m]))"#).unwrap();
        assert!(Sharding::plan(&avg, &limits).is_none());
    }
}
