//! Public value types of the evaluation engine: query parameters, inputs,
//! results and errors.

use std::cmp::Ordering;
use std::fmt;

use crate::ast::LogExpr;
use crate::labelset::LabelSet;

/// Order of log entries in a log query result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    #[default]
    Backward,
}

/// Range (`query_range`) or instant (`query`) evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueryKind {
    /// Metric queries evaluate at every step of `[start, end]`.
    #[default]
    Range,
    /// Metric queries evaluate once at `end` (the `time` parameter).
    Instant,
}

/// Parameters of one query evaluation. All times are nanoseconds since epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParams {
    /// Start (inclusive for log queries).
    pub start_ns: i64,
    /// End (exclusive for log queries; last step for metric range queries;
    /// the evaluation time of instant metric queries).
    pub end_ns: i64,
    /// Step of metric range queries; 0 means [`default_step_ns`].
    pub step_ns: i64,
    /// Log queries: keep only entries at least this far apart (0 = all).
    pub interval_ns: i64,
    /// Log queries: maximum number of entries across all streams.
    pub limit: u32,
    /// Log queries: result order.
    pub direction: Direction,
    /// Range or instant evaluation.
    pub kind: QueryKind,
}

/// One data fetch the caller must perform before [`crate::evaluate`]: all
/// entries with `from_ns <= ts < through_ns` of the streams matching
/// `log.matchers`. The source may pre-apply [`LogExpr::line_filters`]; the
/// engine re-applies the whole pipeline anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct DataRequest {
    /// Selector and pipeline of this log selector occurrence.
    pub log: LogExpr,
    /// Inclusive lower bound (ns).
    pub from_ns: i64,
    /// Exclusive upper bound (ns).
    pub through_ns: i64,
    /// The entries are only counted: they feed a `count_over_time`,
    /// `rate` or `absent_over_time` without `unwrap` whose pipeline is only
    /// line filters. A source that applies those filters may then return
    /// any line text (a digest, so replicas still deduplicate), provided
    /// the query is evaluated as [`crate::without_counted_filters`] returns
    /// it.
    pub counts_only: bool,
    /// A log query's limit (0: every entry is needed): only the first
    /// `limit` entries in `direction` that its pipeline keeps can be in the
    /// answer, per stream and over all. Metric queries and log queries
    /// with an `interval` need every entry.
    pub limit: u32,
    /// The order `limit` counts in.
    pub direction: Direction,
    /// For a range aggregation that reads more than counts: the sample
    /// extraction ([`crate::SampleExtractor::parse`] compiles it) a source
    /// may run itself, answering with [`Input::Samples`] instead of
    /// entries.
    pub extraction: Option<String>,
}

/// The data answering one [`DataRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Entries by stream.
    Entries(Vec<InputStream>),
    /// Samples already extracted with the request's `extraction`, each
    /// entry of each stream once.
    Samples(Vec<SampleSeries>),
}

impl Default for Input {
    fn default() -> Self {
        Input::Entries(Vec::new())
    }
}

/// Extracted samples of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSeries {
    /// The series' labels, as the extraction produced them.
    pub labels: LabelSet,
    /// `(ts_ns, value)`, ascending by timestamp.
    pub samples: Vec<(i64, f64)>,
}

/// One input stream: its indexed labels and entries ascending by timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct InputStream {
    /// Stream labels.
    pub labels: LabelSet,
    /// `(ts_ns, line)`, ascending by timestamp.
    pub entries: Vec<(i64, String)>,
}

/// Per-tenant limits enforced during evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalLimits {
    /// `max_query_series` (Loki default 500).
    pub max_query_series: usize,
    /// `max_entries_limit_per_query` (Loki default 5000; 0 = unchecked).
    pub max_entries_limit_per_query: u32,
}

impl Default for EvalLimits {
    fn default() -> Self {
        EvalLimits {
            max_query_series: 500,
            max_entries_limit_per_query: 5000,
        }
    }
}

/// A query result.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// Log query result (`resultType: streams`).
    Streams(Vec<ResultStream>),
    /// Metric range query result (`resultType: matrix`).
    Matrix(Vec<Series>),
    /// Metric instant query result (`resultType: vector`).
    Vector(Vec<Sample>),
    /// A scalar expression at an instant (`resultType: scalar`).
    Scalar {
        /// Evaluation time (ns).
        ts_ns: i64,
        /// The value.
        value: f64,
    },
}

/// A log stream of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultStream {
    /// Labels after the pipeline.
    pub labels: LabelSet,
    /// Entries in query direction.
    pub entries: Vec<(i64, String)>,
}

/// A series of a matrix result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Series labels.
    pub labels: LabelSet,
    /// `(ts_ns, value)` ascending.
    pub points: Vec<(i64, f64)>,
}

/// A sample of a vector result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series labels.
    pub labels: LabelSet,
    /// Evaluation time (ns).
    pub ts_ns: i64,
    /// The value.
    pub value: f64,
}

/// Class of an evaluation error (maps to the HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErrorKind {
    /// 400: the query or its data cannot be evaluated as asked.
    BadRequest,
    /// 500: an engine invariant failed.
    Internal,
}

/// An evaluation error; `Display` is Loki's message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// Error class.
    pub kind: EvalErrorKind,
    /// Loki's wording.
    pub message: String,
}

impl EvalError {
    /// A 400 error.
    pub fn bad_request(message: impl Into<String>) -> EvalError {
        EvalError {
            kind: EvalErrorKind::BadRequest,
            message: message.into(),
        }
    }

    /// A 500 error.
    pub fn internal(message: impl Into<String>) -> EvalError {
        EvalError {
            kind: EvalErrorKind::Internal,
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// Formats a sample value like Go's `strconv.FormatFloat(v, 'f', -1, 64)`
/// (shortest round-trip digits, no exponent), with `NaN`, `+Inf`, `-Inf`.
pub fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

/// Prometheus `labels.Compare`: pairwise by name then value, shorter first.
pub(crate) fn compare_labels(a: &LabelSet, b: &LabelSet) -> Ordering {
    let mut left = a.iter();
    let mut right = b.iter();
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ln, lv)), Some((rn, rv))) => {
                let ord = ln.cmp(rn).then_with(|| lv.cmp(rv));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_format_like_go() {
        assert_eq!(format_sample_value(2.0), "2");
        assert_eq!(format_sample_value(0.1), "0.1");
        assert_eq!(format_sample_value(1e21), "1000000000000000000000");
        assert_eq!(format_sample_value(1.5e-7), "0.00000015");
        assert_eq!(format_sample_value(f64::NAN), "NaN");
        assert_eq!(format_sample_value(f64::INFINITY), "+Inf");
        assert_eq!(format_sample_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_sample_value(-0.5), "-0.5");
    }
}
