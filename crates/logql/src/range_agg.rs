//! Range aggregations: sample extraction (pipeline, unwrap, label grouping)
//! and per-step window functions over `(t − range − offset, t − offset]`.

use std::collections::HashMap;

use crate::ast::{Grouping, LabelFilter, RangeAggregation, RangeOp, Unwrap, UnwrapConversion};
use crate::engine::StepVectors;
use crate::labelset::LabelSet;
use crate::matcher::MatchOp;
use crate::pipeline::Pipeline;
use crate::value::{EvalError, InputStream};

use crate::ip::IpPattern;
use crate::stages::{ERROR_DETAILS_LABEL, ERROR_LABEL, ERR_LABEL_FILTER, ERR_SAMPLE_EXTRACTION};
use crate::template::funcs::{parse_bytes_go, parse_duration_go, parse_float_go};

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

/// Returns true if an outer `sum` may push its grouping into this range
/// aggregation (Loki's `canInjectVectorGrouping`).
pub(crate) fn can_push_down_sum(agg: &RangeAggregation) -> bool {
    agg.grouping.is_none()
        && matches!(
            agg.op,
            RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::SumOverTime
        )
}

/// Loki's pipeline error for a series carrying `__error__`.
pub(crate) fn pipeline_error(labels: &LabelSet) -> EvalError {
    let kind = labels.get(ERROR_LABEL).unwrap_or_default();
    EvalError::bad_request(format!(
        "pipeline error: '{kind}' for series: '{labels}'.\n\
         Use a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\n\
         To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n\
         The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    ))
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

enum SampleKind<'u> {
    Count,
    Bytes,
    Unwrap(&'u Unwrap),
}

/// Labels of `absent_over_time`'s output: the selector's `=` matchers, minus
/// names matched more than once or by other operators.
fn absent_labels(agg: &RangeAggregation) -> LabelSet {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut dropped: Vec<&str> = Vec::new();
    for m in &agg.range.log.matchers {
        if m.op == MatchOp::Eq && !pairs.iter().any(|(k, _)| *k == m.name) {
            pairs.push((m.name.clone(), m.value.clone()));
        } else {
            dropped.push(&m.name);
        }
    }
    pairs.retain(|(k, _)| !dropped.contains(&k.as_str()));
    LabelSet::new(pairs)
}

/// Evaluates a range aggregation at `steps`. `pushdown` is the grouping of
/// an outer `sum` when [`can_push_down_sum`] holds.
pub(crate) fn eval_range_agg(
    agg: &RangeAggregation,
    pushdown: Option<Option<&Grouping>>,
    streams: Vec<InputStream>,
    steps: &[i64],
) -> Result<StepVectors, EvalError> {
    let range = &agg.range;
    let extract = match pushdown {
        // `sum(...)` without grouping is `sum by ()`.
        Some(None) => Extract::NoLabels,
        Some(Some(g)) => Extract::from_grouping(Some(g)),
        None => Extract::from_grouping(agg.grouping.as_ref()),
    }
    .with_unwrap(range.unwrap.as_ref());
    let kind = match (&range.unwrap, agg.op) {
        (Some(unwrap), _) => SampleKind::Unwrap(unwrap),
        (None, RangeOp::BytesOverTime | RangeOp::BytesRate) => SampleKind::Bytes,
        (None, _) => SampleKind::Count,
    };
    let (from, through) = match (steps.first(), steps.last()) {
        (Some(first), Some(last)) => (
            first
                .saturating_sub(range.offset)
                .saturating_sub(range.range),
            last.saturating_sub(range.offset),
        ),
        _ => (0, -1),
    };

    let pipeline = if range.log.pipeline.is_empty() {
        None
    } else {
        // Only the grouping labels (and the unwrapped one) are needed when
        // the extraction reduces labels, as with Loki's parser hints; label
        // filters after the unwrap may read anything.
        let post_filters_present = range
            .unwrap
            .as_ref()
            .is_some_and(|u| !u.post_filters.is_empty());
        let mut required: Option<Vec<&str>> = match &extract {
            _ if post_filters_present => None,
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
    let post_filters: &[LabelFilter] = range
        .unwrap
        .as_ref()
        .map_or(&[], |u| u.post_filters.as_slice());

    let mut index: HashMap<LabelSet, u32> = HashMap::new();
    let mut series_labels: Vec<LabelSet> = Vec::new();
    let mut samples: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut series_of = |labels: LabelSet| -> u32 {
        if let Some(id) = index.get(&labels) {
            return *id;
        }
        let id = series_labels.len() as u32;
        series_labels.push(labels.clone());
        samples.push(Vec::new());
        index.insert(labels, id);
        id
    };
    let mut pushes: Vec<(u32, i64, f64)> = Vec::new();

    for stream in &streams {
        let mut stream_pipeline = pipeline.as_ref().map(|p| p.for_stream(&stream.labels));
        // Cache of the last processed label set and its series.
        let mut last: Option<(LabelSet, u32)> = None;
        let fast_series = if stream_pipeline.is_none() && range.unwrap.is_none() {
            Some(series_of(extract.apply(&stream.labels)))
        } else {
            None
        };
        let first = stream.entries.partition_point(|(ts, _)| *ts <= from);
        for (ts, line) in &stream.entries[first..] {
            let ts = *ts;
            if ts > through {
                break;
            }
            if let Some(id) = fast_series {
                let value = match kind {
                    SampleKind::Bytes => line.len() as f64,
                    _ => 1.0,
                };
                pushes.push((id, ts, value));
                continue;
            }
            let (out_line, labels): (&str, &LabelSet) = match stream_pipeline.as_mut() {
                Some(sp) => match sp.process(ts, line) {
                    Some(processed) => (processed.line, processed.labels),
                    None => continue,
                },
                None => (line.as_str(), &stream.labels),
            };
            let (value, labels) = match kind {
                SampleKind::Count => (1.0, labels),
                SampleKind::Bytes => (out_line.len() as f64, labels),
                SampleKind::Unwrap(unwrap) => {
                    let raw = match labels.get(&unwrap.label) {
                        Some(raw) if !raw.is_empty() => raw,
                        _ => continue,
                    };
                    let (value, error) = match convert(raw, unwrap.conversion) {
                        Ok(v) => (v, None),
                        Err(details) => (0.0, Some(details)),
                    };
                    let owned = if error.is_none() && post_filters.is_empty() {
                        None
                    } else {
                        let mut post = PostLabels(
                            labels
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_string()))
                                .collect(),
                        );
                        if let Some(details) = error {
                            post.set_error(ERR_SAMPLE_EXTRACTION, &details);
                        }
                        if !post_filters.iter().all(|f| post_filter(f, &mut post)) {
                            continue;
                        }
                        Some(LabelSet::new(post.0))
                    };
                    match owned {
                        Some(owned) => {
                            let id = series_of(extract.apply(&owned));
                            pushes.push((id, ts, value));
                            continue;
                        }
                        None => (value, labels),
                    }
                }
            };
            let id = match &last {
                Some((cached, id)) if cached == labels => *id,
                _ => {
                    let id = series_of(extract.apply(labels));
                    last = Some((labels.clone(), id));
                    id
                }
            };
            pushes.push((id, ts, value));
        }
    }
    for (id, ts, value) in pushes {
        samples[id as usize].push((ts, value));
    }
    for series in &mut samples {
        if !series.is_sorted_by_key(|(ts, _)| *ts) {
            series.sort_by_key(|(ts, _)| *ts);
        }
    }

    // Series ids in label order.
    let mut order: Vec<usize> = (0..series_labels.len()).collect();
    order.sort_by(|a, b| crate::value::compare_labels(&series_labels[*a], &series_labels[*b]));
    let labels: Vec<LabelSet> = order.iter().map(|i| series_labels[*i].clone()).collect();
    let samples: Vec<Vec<(i64, f64)>> = order
        .iter()
        .map(|i| std::mem::take(&mut samples[*i]))
        .collect();

    let mut lo = vec![0usize; samples.len()];
    let mut hi = vec![0usize; samples.len()];
    let mut out_steps = Vec::with_capacity(steps.len());
    let range_s = range.range as f64 / 1e9;
    for &t in steps {
        let upper = t.saturating_sub(range.offset);
        let lower = upper.saturating_sub(range.range);
        let mut vec = Vec::new();
        for (id, series) in samples.iter().enumerate() {
            while hi[id] < series.len() && series[hi[id]].0 <= upper {
                hi[id] += 1;
            }
            while lo[id] < hi[id] && series[lo[id]].0 <= lower {
                lo[id] += 1;
            }
            if lo[id] >= hi[id] {
                continue;
            }
            if labels[id].get(ERROR_LABEL).is_some() {
                return Err(pipeline_error(&labels[id]));
            }
            let window = &series[lo[id]..hi[id]];
            let value = window_value(agg, window, range.range, range_s);
            vec.push((id as u32, value));
        }
        out_steps.push(vec);
    }
    if agg.op == RangeOp::AbsentOverTime {
        let steps = out_steps
            .into_iter()
            .map(|vec| {
                if vec.is_empty() {
                    vec![(0, 1.0)]
                } else {
                    Vec::new()
                }
            })
            .collect();
        return Ok(StepVectors {
            labels: vec![absent_labels(agg)],
            steps,
        });
    }
    Ok(StepVectors {
        labels,
        steps: out_steps,
    })
}

fn window_value(agg: &RangeAggregation, window: &[(i64, f64)], range_ns: i64, range_s: f64) -> f64 {
    let sum = || window.iter().map(|(_, v)| *v).sum::<f64>();
    match agg.op {
        RangeOp::CountOverTime => window.len() as f64,
        RangeOp::Rate => {
            if agg.range.unwrap.is_some() {
                sum() / range_s
            } else {
                window.len() as f64 / range_s
            }
        }
        RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
        RangeOp::BytesRate => sum() / range_s,
        RangeOp::AvgOverTime => avg_over_time(window),
        RangeOp::MinOverTime => {
            let mut min = window[0].1;
            for (_, v) in window {
                if *v < min || min.is_nan() {
                    min = *v;
                }
            }
            min
        }
        RangeOp::MaxOverTime => {
            let mut max = window[0].1;
            for (_, v) in window {
                if *v > max || max.is_nan() {
                    max = *v;
                }
            }
            max
        }
        RangeOp::StdvarOverTime => stdvar(window),
        RangeOp::StddevOverTime => stdvar(window).sqrt(),
        RangeOp::QuantileOverTime => {
            let mut values: Vec<f64> = window.iter().map(|(_, v)| *v).collect();
            quantile(agg.param.unwrap_or(0.0), &mut values)
        }
        RangeOp::FirstOverTime => window[0].1,
        RangeOp::LastOverTime => window[window.len() - 1].1,
        RangeOp::AbsentOverTime => 1.0,
        RangeOp::RateCounter => extrapolated_rate(window, range_ns),
    }
}

fn avg_over_time(window: &[(i64, f64)]) -> f64 {
    let mut mean = 0.0f64;
    let mut count = 0.0f64;
    for (_, v) in window {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (*v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

fn stdvar(window: &[(i64, f64)]) -> f64 {
    let (mut aux, mut count, mut mean) = (0.0f64, 0.0f64, 0.0f64);
    for (_, v) in window {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// Prometheus' quantile: linear interpolation at rank φ(n−1).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if q.is_nan() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Loki's `extrapolatedRate(samples, range, isCounter=true, isRate=true)`,
/// including its quirk of mixing nanosecond sample timestamps with a
/// millisecond range.
fn extrapolated_rate(samples: &[(i64, f64)], range_ns: i64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let first = samples[0];
    let last = samples[samples.len() - 1];
    let range_start = first.0 - range_ns / 1_000_000;
    let range_end = last.0;
    let mut result = last.1 - first.1;
    let mut last_value = 0.0;
    for (_, v) in samples {
        if *v < last_value {
            result += last_value;
        }
        last_value = *v;
    }
    let mut duration_to_start = (first.0 - range_start) as f64 / 1000.0;
    let duration_to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled_interval = (last.0 - first.0) as f64 / 1000.0;
    let average = sampled_interval / (samples.len() - 1) as f64;
    if result > 0.0 && first.1 >= 0.0 {
        let duration_to_zero = sampled_interval * (first.1 / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        average / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        average / 2.0
    };
    result *= extrapolate_to / sampled_interval;
    result / (range_ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(1.0, &mut v), 4.0);
        assert_eq!(quantile(-1.0, &mut v), f64::NEG_INFINITY);
        assert_eq!(quantile(2.0, &mut v), f64::INFINITY);
    }

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
