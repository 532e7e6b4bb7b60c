//! Sample extraction for range aggregations: the query's pipeline, the
//! value of each entry (1, its bytes, or an unwrapped label) and the label
//! set of the series it belongs to. The engine runs it over entries; the
//! sources (ingesters, and the querier over the store's chunks) run it
//! too, so that they send samples instead of lines.

use crate::ast::{
    Expr, Grouping, LabelFilter, RangeAggregation, RangeOp, Unwrap, UnwrapConversion,
    VectorAggregation, VectorOp,
};
use crate::ip::IpPattern;
use crate::labelset::LabelSet;
use crate::matcher::Matcher;
use crate::pipeline::{Pipeline, StreamPipeline};
use crate::range_agg::can_push_down_sum;
use crate::stages::{ERROR_DETAILS_LABEL, ERROR_LABEL, ERR_LABEL_FILTER, ERR_SAMPLE_EXTRACTION};
use crate::template::funcs::{parse_bytes_go, parse_duration_go, parse_float_go};
use crate::value::EvalError;

/// How extracted samples' labels are reduced before the window functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Extract {
    /// Keep every label.
    All,
    /// Drop every label (`by ()`, or an outer `sum` without grouping pushed
    /// down); an `__error__` is dropped too.
    NoLabels,
    /// Keep only these labels (unless the sample carries `__error__`).
    By(Vec<String>),
    /// Drop these labels (unless the sample carries `__error__`).
    Without(Vec<String>),
}

impl Extract {
    fn from_grouping(grouping: Option<&Grouping>) -> Extract {
        match grouping {
            None => Extract::All,
            Some(g) if g.labels.is_empty() && !g.without => Extract::NoLabels,
            Some(g) if g.labels.is_empty() => Extract::All,
            Some(g) if g.without => Extract::Without(g.labels.clone()),
            Some(g) => Extract::By(g.labels.clone()),
        }
    }

    fn with_unwrap(self, unwrap: Option<&Unwrap>) -> Extract {
        let Some(unwrap) = unwrap else { return self };
        match self {
            Extract::All => Extract::Without(vec![unwrap.label.clone()]),
            Extract::Without(mut names) => {
                names.push(unwrap.label.clone());
                Extract::Without(names)
            }
            other => other,
        }
    }

    fn apply(&self, labels: &LabelSet) -> LabelSet {
        match self {
            Extract::NoLabels => LabelSet::new(Vec::new()),
            _ if labels.get(ERROR_LABEL).is_some() => labels.clone(),
            Extract::All => labels.clone(),
            Extract::By(names) => LabelSet::new(
                labels
                    .iter()
                    .filter(|(k, _)| names.iter().any(|n| n == k))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            Extract::Without(names) => LabelSet::new(
                labels
                    .iter()
                    .filter(|(k, _)| !names.iter().any(|n| n == k))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }
}

/// The text of the extraction of `agg` under an outer `sum`'s `pushdown`
/// grouping: what [`SampleExtractor::parse`] reads back.
pub(crate) fn extraction_text(
    agg: &RangeAggregation,
    pushdown: Option<Option<&Grouping>>,
) -> String {
    match pushdown {
        None => agg.to_string(),
        Some(grouping) => Expr::VectorAggregation(VectorAggregation {
            op: VectorOp::Sum,
            param: None,
            grouping: grouping.cloned(),
            inner: Box::new(Expr::RangeAggregation(agg.clone())),
        })
        .to_string(),
    }
}

/// What a sample's value is.
#[derive(Debug, Clone)]
enum SampleKind {
    Count,
    Bytes,
    Unwrap(Unwrap),
}

/// A range aggregation's sample extraction, compiled once per query.
#[derive(Debug)]
pub struct SampleExtractor {
    extract: Extract,
    kind: SampleKind,
    pipeline: Option<Pipeline>,
    post_filters: Vec<LabelFilter>,
    /// The stream selector.
    matchers: Vec<Matcher>,
    /// What every line that makes a sample contains.
    required: Vec<Vec<u8>>,
}

impl SampleExtractor {
    /// Compiles the extraction of `agg`; `pushdown` is the grouping of an
    /// outer `sum` when [`can_push_down_sum`] holds (`Some(None)`: a `sum`
    /// without grouping).
    pub fn new(
        agg: &RangeAggregation,
        pushdown: Option<Option<&Grouping>>,
    ) -> Result<SampleExtractor, EvalError> {
        let range = &agg.range;
        let extract = match pushdown {
            // `sum(...)` without grouping is `sum by ()`.
            Some(None) => Extract::NoLabels,
            Some(Some(g)) => Extract::from_grouping(Some(g)),
            None => Extract::from_grouping(agg.grouping.as_ref()),
        }
        .with_unwrap(range.unwrap.as_ref());
        let kind = match (&range.unwrap, agg.op) {
            (Some(unwrap), _) => SampleKind::Unwrap(unwrap.clone()),
            (None, RangeOp::BytesOverTime | RangeOp::BytesRate) => SampleKind::Bytes,
            (None, _) => SampleKind::Count,
        };
        let post_filters = range
            .unwrap
            .as_ref()
            .map_or_else(Vec::new, |u| u.post_filters.clone());
        let pipeline = if range.log.pipeline.is_empty() {
            None
        } else {
            // Only the grouping labels (and the unwrapped one) are needed
            // when the extraction reduces labels, as with Loki's parser
            // hints; label filters after the unwrap may read anything.
            let mut required: Option<Vec<&str>> = match &extract {
                _ if !post_filters.is_empty() => None,
                Extract::NoLabels => Some(Vec::new()),
                Extract::By(names) => Some(names.iter().map(String::as_str).collect()),
                Extract::All | Extract::Without(_) => None,
            };
            if let (Some(required), Some(unwrap)) = (required.as_mut(), range.unwrap.as_ref()) {
                required.push(unwrap.label.as_str());
            }
            Some(
                Pipeline::new_with_required(&range.log.pipeline, required.as_deref())
                    .map_err(|err| EvalError::bad_request(err.to_string()))?,
            )
        };
        Ok(SampleExtractor {
            required: crate::LineFilterChain::new(&range.log.pipeline).required_substrings(),
            matchers: range.log.matchers.clone(),
            extract,
            kind,
            pipeline,
            post_filters,
        })
    }

    /// Compiles the extraction a [`crate::DataRequest`]'s `extraction` describes: a range
    /// aggregation, or a `sum` whose grouping pushes down into one.
    pub fn parse(text: &str) -> Result<SampleExtractor, EvalError> {
        let expr =
            crate::parse_expr(text).map_err(|err| EvalError::bad_request(err.to_string()))?;
        match &expr {
            Expr::RangeAggregation(agg) => SampleExtractor::new(agg, None),
            Expr::VectorAggregation(outer) if outer.op == VectorOp::Sum => match &*outer.inner {
                Expr::RangeAggregation(agg) if can_push_down_sum(agg) => {
                    SampleExtractor::new(agg, Some(outer.grouping.as_ref()))
                }
                _ => Err(EvalError::bad_request(format!(
                    "not a sample extraction: `{text}` (a sum must directly wrap a count, rate, bytes or sum_over_time range aggregation)"
                ))),
            },
            _ => Err(EvalError::bad_request(format!(
                "not a sample extraction: `{text}` (expected a range aggregation)"
            ))),
        }
    }

    /// The stream selector's matchers.
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The byte strings every line that makes a sample contains: the
    /// patterns of the case-sensitive `|=` filters that test the original
    /// line.
    pub fn required_substrings(&self) -> &[Vec<u8>] {
        &self.required
    }

    /// Whether every entry of a stream becomes one sample of one series
    /// (no pipeline, no unwrap): the series is the stream's.
    fn is_direct(&self) -> bool {
        self.pipeline.is_none() && !matches!(self.kind, SampleKind::Unwrap(_))
    }

    /// The extraction for the entries of one stream.
    pub fn for_stream(&self, labels: &LabelSet) -> StreamSamples<'_> {
        StreamSamples {
            extractor: self,
            direct: self.is_direct().then(|| self.extract.apply(labels)),
            pipeline: self.pipeline.as_ref().map(|p| p.for_stream(labels)),
            stream_labels: labels.clone(),
            last: None,
        }
    }
}

/// Sample extraction over one stream's entries.
pub struct StreamSamples<'e> {
    extractor: &'e SampleExtractor,
    /// The series of every entry when the extraction is direct.
    direct: Option<LabelSet>,
    pipeline: Option<StreamPipeline<'e>>,
    stream_labels: LabelSet,
    /// The last pipeline label set and its series.
    last: Option<(LabelSet, LabelSet)>,
}

impl StreamSamples<'_> {
    /// The sample of one entry, with the labels of its series; `None` when
    /// the pipeline or an unwrap drops it.
    pub fn process(&mut self, ts: i64, line: &str) -> Option<(LabelSet, f64)> {
        let extractor = self.extractor;
        if let Some(series) = &self.direct {
            let value = match extractor.kind {
                SampleKind::Bytes => line.len() as f64,
                _ => 1.0,
            };
            return Some((series.clone(), value));
        }
        let (out_line, labels): (&str, &LabelSet) = match self.pipeline.as_mut() {
            Some(pipeline) => {
                let processed = pipeline.process(ts, line)?;
                (processed.line, processed.labels)
            }
            None => (line, &self.stream_labels),
        };
        let value = match &extractor.kind {
            SampleKind::Count => 1.0,
            SampleKind::Bytes => out_line.len() as f64,
            SampleKind::Unwrap(unwrap) => {
                let raw = match labels.get(&unwrap.label) {
                    Some(raw) if !raw.is_empty() => raw,
                    _ => return None,
                };
                let (value, error) = match convert(raw, unwrap.conversion) {
                    Ok(v) => (v, None),
                    Err(details) => (0.0, Some(details)),
                };
                if error.is_some() || !extractor.post_filters.is_empty() {
                    let mut post = PostLabels(
                        labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    );
                    if let Some(details) = error {
                        post.set_error(ERR_SAMPLE_EXTRACTION, &details);
                    }
                    if !extractor
                        .post_filters
                        .iter()
                        .all(|f| post_filter(f, &mut post))
                    {
                        return None;
                    }
                    return Some((extractor.extract.apply(&LabelSet::new(post.0)), value));
                }
                value
            }
        };
        match &self.last {
            Some((cached, series)) if cached == labels => Some((series.clone(), value)),
            _ => {
                let series = extractor.extract.apply(labels);
                self.last = Some((labels.clone(), series.clone()));
                Some((series, value))
            }
        }
    }
}

/// Converts an unwrapped label value; the error text is Go's.
fn convert(value: &str, conversion: Option<UnwrapConversion>) -> Result<f64, String> {
    match conversion {
        None => parse_float_go(value),
        Some(UnwrapConversion::Duration | UnwrapConversion::DurationSeconds) => {
            parse_duration_go(value).map(|ns| ns as f64 / 1e9)
        }
        Some(UnwrapConversion::Bytes) => parse_bytes_go(value).map(|b| b as f64),
    }
}

/// Labels of a sample during post-unwrap filtering; the error state is the
/// presence of `__error__`.
struct PostLabels(Vec<(String, String)>);

impl PostLabels {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set_error(&mut self, kind: &str, details: &str) {
        self.0
            .retain(|(k, _)| k != ERROR_LABEL && k != ERROR_DETAILS_LABEL);
        self.0.push((ERROR_LABEL.to_string(), kind.to_string()));
        self.0
            .push((ERROR_DETAILS_LABEL.to_string(), details.to_string()));
    }

    /// Loki's numeric/duration/bytes filter: an entry already in error
    /// passes, a missing label drops it, an unparsable value sets
    /// `LabelFilterErr` and keeps it.
    fn convert<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, bool> {
        if self.get(ERROR_LABEL).is_some() {
            return Err(true);
        }
        let Some(value) = self.get(name) else {
            return Err(false);
        };
        match parse(value) {
            Ok(parsed) => Ok(parsed),
            Err(message) => {
                self.set_error(ERR_LABEL_FILTER, &message);
                Err(true)
            }
        }
    }
}

/// Evaluates a label filter that follows `| unwrap`.
fn post_filter(filter: &LabelFilter, labels: &mut PostLabels) -> bool {
    match filter {
        LabelFilter::Matcher(m) => m.matches(labels.get(&m.name).unwrap_or("")),
        LabelFilter::Number { name, op, value } => match labels.convert(name, parse_float_go) {
            Ok(parsed) => op.compare(parsed, *value),
            Err(decided) => decided,
        },
        LabelFilter::Duration { name, op, value } => {
            match labels.convert(name, parse_duration_go) {
                Ok(parsed) => op.compare(parsed, *value),
                Err(decided) => decided,
            }
        }
        LabelFilter::Bytes { name, op, value } => match labels.convert(name, parse_bytes_go) {
            Ok(parsed) => op.compare(parsed, *value),
            Err(decided) => decided,
        },
        LabelFilter::Ip {
            name,
            equal,
            pattern,
        } => {
            if labels.get(ERROR_LABEL).is_some() {
                return true;
            }
            match (labels.get(name), IpPattern::parse(pattern)) {
                (Some(value), Some(ip)) => ip.matches_str(value) == *equal,
                _ => false,
            }
        }
        LabelFilter::And(a, b) => {
            let left = post_filter(a, labels);
            let right = post_filter(b, labels);
            left && right
        }
        LabelFilter::Or(a, b) => post_filter(a, labels) || post_filter(b, labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(convert("1.5", None), Ok(1.5));
        assert_eq!(
            convert("abc", None),
            Err("strconv.ParseFloat: parsing \"abc\": invalid syntax".to_string())
        );
        assert_eq!(convert("1m30s", Some(UnwrapConversion::Duration)), Ok(90.0));
        assert_eq!(convert("2KiB", Some(UnwrapConversion::Bytes)), Ok(2048.0));
    }
}
