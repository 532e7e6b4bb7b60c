//! Sub-query answers as the frontend merges them: decoded from the
//! querier's JSON, merged across splits, and written back in Loki's exact
//! shape (the same writers the querier uses).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};
use sluice_common::time::format_unix_seconds;
use sluice_common::{ErrorCode, HttpError};

use crate::json::{write_labels, write_string};
use crate::params::Direction;
use crate::querier::ResultStream;

/// Sorted label pairs.
pub(crate) type LabelPairs = Vec<(String, String)>;

/// A metric sample: time in ms and the value exactly as the querier wrote it.
pub(crate) type Point = (i64, String);

/// Series by labels, each with its points in time order.
pub(crate) type Matrix = BTreeMap<LabelPairs, Vec<Point>>;

/// One decoded `query_range` answer.
#[derive(Debug)]
pub(crate) enum Answer {
    Streams(Vec<ResultStream>),
    Matrix(BTreeMap<LabelPairs, Vec<Point>>),
}

#[derive(Deserialize)]
struct Body {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct StreamJson {
    stream: BTreeMap<String, String>,
    values: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct SeriesJson {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

fn bad(message: String) -> HttpError {
    HttpError::new(ErrorCode::Internal, message)
}

impl Answer {
    /// Decodes a querier's `query_range` body.
    pub(crate) fn decode(body: &[u8]) -> Result<Answer, HttpError> {
        let body: Body = serde_json::from_slice(body)
            .map_err(|err| bad(format!("querier answer is not Loki JSON: {err}")))?;
        match body.data.result_type.as_str() {
            "streams" => {
                let streams: Vec<StreamJson> = serde_json::from_value(body.data.result)
                    .map_err(|err| bad(format!("querier streams: {err}")))?;
                let mut out = Vec::with_capacity(streams.len());
                for stream in streams {
                    let mut entries = Vec::with_capacity(stream.values.len());
                    for (timestamp, line) in stream.values {
                        let timestamp = timestamp
                            .parse()
                            .map_err(|_| bad(format!("querier timestamp {timestamp:?}")))?;
                        entries.push((timestamp, line));
                    }
                    out.push(ResultStream {
                        labels: stream.stream.into_iter().collect(),
                        entries,
                    });
                }
                Ok(Answer::Streams(out))
            }
            "matrix" => {
                let series: Vec<SeriesJson> = serde_json::from_value(body.data.result)
                    .map_err(|err| bad(format!("querier matrix: {err}")))?;
                Ok(Answer::Matrix(
                    series
                        .into_iter()
                        .map(|one| {
                            let points = one
                                .values
                                .into_iter()
                                .map(|(seconds, value)| ((seconds * 1000.0).round() as i64, value))
                                .collect();
                            (one.metric.into_iter().collect(), points)
                        })
                        .collect(),
                ))
            }
            other => Err(bad(format!("cannot merge a {other:?} result"))),
        }
    }
}

/// Appends `more`'s points (later in time) to `into`.
pub(crate) fn merge_matrix(
    into: &mut BTreeMap<LabelPairs, Vec<Point>>,
    more: BTreeMap<LabelPairs, Vec<Point>>,
) {
    for (labels, points) in more {
        into.entry(labels).or_default().extend(points);
    }
}

/// Sorts each series by time (pieces may arrive in any order).
pub(crate) fn sort_matrix(matrix: &mut BTreeMap<LabelPairs, Vec<Point>>) {
    for points in matrix.values_mut() {
        points.sort_by_key(|(ms, _)| *ms);
    }
    matrix.retain(|_, points| !points.is_empty());
}

/// Merges log pieces: streams joined by labels, entries ordered in the
/// query's direction, at most `limit` entries over all streams.
pub(crate) fn merge_streams(
    pieces: Vec<Vec<ResultStream>>,
    limit: usize,
    direction: Direction,
) -> Vec<ResultStream> {
    let mut by_labels: BTreeMap<LabelPairs, Vec<(i64, String)>> = BTreeMap::new();
    for piece in pieces {
        for stream in piece {
            by_labels
                .entry(stream.labels)
                .or_default()
                .extend(stream.entries);
        }
    }
    let mut streams: Vec<ResultStream> = by_labels
        .into_iter()
        .map(|(labels, mut entries)| {
            match direction {
                Direction::Forward => entries.sort_by_key(|(ts, _)| *ts),
                Direction::Backward => entries.sort_by_key(|(ts, _)| std::cmp::Reverse(*ts)),
            }
            ResultStream { labels, entries }
        })
        .collect();
    crate::querier::apply_limit(&mut streams, limit, direction);
    streams.retain(|stream| !stream.entries.is_empty());
    streams
}

/// Writes a matrix body as the querier does, with the frontend's stats.
pub(crate) fn matrix_body(matrix: &BTreeMap<LabelPairs, Vec<Point>>, stats: &str) -> String {
    let mut out =
        String::from("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[");
    for (index, (labels, points)) in matrix.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(
            &mut out,
            labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        out.push_str(",\"values\":[");
        for (point_index, (ms, value)) in points.iter().enumerate() {
            if point_index > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "[{},",
                format_unix_seconds(ms.saturating_mul(1_000_000))
            );
            write_string(&mut out, value);
            out.push(']');
        }
        out.push_str("]}");
    }
    let _ = write!(out, "],\"stats\":{stats}}}}}");
    out
}

/// The cached part of one split of a metric query: its points in
/// `[start, end]` (ns), and the full key to tell hash collisions apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Extent {
    pub(crate) key: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) series: Vec<(LabelPairs, Vec<Point>)>,
}

impl Extent {
    /// The points of the extent within `[start, end]` (ns).
    pub(crate) fn slice(&self, start: i64, end: i64) -> Matrix {
        slice_series(self.series.iter().map(|(l, p)| (l, p)), start, end)
    }
}

/// The points of `matrix` within `[start, end]` (ns).
pub(crate) fn slice(matrix: &Matrix, start: i64, end: i64) -> Matrix {
    slice_series(matrix.iter(), start, end)
}

fn slice_series<'a>(
    series: impl Iterator<Item = (&'a LabelPairs, &'a Vec<Point>)>,
    start: i64,
    end: i64,
) -> Matrix {
    let (from_ms, to_ms) = (start.div_euclid(1_000_000), end.div_euclid(1_000_000));
    series
        .map(|(labels, points)| {
            let kept: Vec<Point> = points
                .iter()
                .filter(|(ms, _)| (from_ms..=to_ms).contains(ms))
                .cloned()
                .collect();
            (labels.clone(), kept)
        })
        .filter(|(_, points)| !points.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rewrites_a_matrix_byte_for_byte() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"level":"\u003cerr\u003e"},"values":[[1795493760,"0.05"],[1795493760.5,"1"]]}],"stats":{}}}"#;
        let Answer::Matrix(matrix) = Answer::decode(body.as_bytes()).unwrap() else {
            panic!("matrix expected");
        };
        assert_eq!(matrix_body(&matrix, "{}"), body);
    }

    #[test]
    fn merges_log_pieces_with_a_global_limit() {
        let piece = |labels: &str, ts: &[i64]| ResultStream {
            labels: vec![("job".into(), labels.into())],
            entries: ts.iter().map(|t| (*t, format!("l{t}"))).collect(),
        };
        let merged = merge_streams(
            vec![
                vec![piece("a", &[9, 8]), piece("b", &[7])],
                vec![piece("a", &[3]), piece("b", &[5, 4])],
            ],
            4,
            Direction::Backward,
        );
        let kept: Vec<(String, Vec<i64>)> = merged
            .iter()
            .map(|s| {
                (
                    s.labels[0].1.clone(),
                    s.entries.iter().map(|e| e.0).collect(),
                )
            })
            .collect();
        assert_eq!(kept, [("a".into(), vec![9, 8]), ("b".into(), vec![7, 5])]);
    }
}
