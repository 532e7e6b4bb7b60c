//! Range aggregations: samples (extracted here from entries with
//! [`SampleExtractor`], or by a source) and per-step window functions over
//! `(t − range − offset, t − offset]`.

use std::collections::HashMap;

use crate::ast::{Grouping, RangeAggregation, RangeOp};
use crate::engine::StepVectors;
use crate::extract::SampleExtractor;
use crate::labelset::LabelSet;
use crate::matcher::MatchOp;
use crate::stages::ERROR_LABEL;
use crate::value::{EvalError, Input, InputStream};

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

/// Evaluates a range aggregation at `steps` over its data: entries, or
/// samples a source extracted with the same [`SampleExtractor`]. `pushdown`
/// is the grouping of an outer `sum` when [`can_push_down_sum`] holds.
pub(crate) fn eval_range_agg(
    agg: &RangeAggregation,
    pushdown: Option<Option<&Grouping>>,
    input: Input,
    steps: &[i64],
) -> Result<StepVectors, EvalError> {
    let range = &agg.range;
    let (from, through) = match (steps.first(), steps.last()) {
        (Some(first), Some(last)) => (
            first
                .saturating_sub(range.offset)
                .saturating_sub(range.range),
            last.saturating_sub(range.offset),
        ),
        _ => (0, -1),
    };
    // A series' samples in `(from, through]` (they are in time order).
    let in_range = |mut series: Vec<(i64, f64)>| {
        series.truncate(series.partition_point(|(ts, _)| *ts <= through));
        series.drain(..series.partition_point(|(ts, _)| *ts <= from));
        series
    };

    let (series_labels, mut samples) = match input {
        Input::Samples(series) => {
            let mut by_labels: HashMap<LabelSet, Vec<(i64, f64)>> = HashMap::new();
            for one in series {
                by_labels
                    .entry(one.labels)
                    .or_default()
                    .extend(in_range(one.samples));
            }
            by_labels.into_iter().unzip()
        }
        Input::Entries(streams) => extract_entries(agg, pushdown, &streams, from, through)?,
    };
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

/// One series' `(ts_ns, value)` samples.
type SeriesSamples = Vec<(i64, f64)>;

/// Extracts the samples of `streams` in `(from, through]`: each series'
/// labels and its samples (not yet sorted across streams).
fn extract_entries(
    agg: &RangeAggregation,
    pushdown: Option<Option<&Grouping>>,
    streams: &[InputStream],
    from: i64,
    through: i64,
) -> Result<(Vec<LabelSet>, Vec<SeriesSamples>), EvalError> {
    let extractor = SampleExtractor::new(agg, pushdown)?;
    let mut index: HashMap<LabelSet, usize> = HashMap::new();
    let mut series_labels: Vec<LabelSet> = Vec::new();
    let mut samples: Vec<Vec<(i64, f64)>> = Vec::new();
    for stream in streams {
        let mut extract = extractor.for_stream(&stream.labels);
        // The last series and its id, to skip the map for runs of one series.
        let mut last: Option<(LabelSet, usize)> = None;
        let first = stream.entries.partition_point(|(ts, _)| *ts <= from);
        for (ts, line) in &stream.entries[first..] {
            let ts = *ts;
            if ts > through {
                break;
            }
            let Some((labels, value)) = extract.process(ts, line) else {
                continue;
            };
            let id = match &last {
                Some((cached, id)) if *cached == labels => *id,
                _ => {
                    let id = *index.entry(labels.clone()).or_insert_with(|| {
                        series_labels.push(labels.clone());
                        samples.push(Vec::new());
                        series_labels.len() - 1
                    });
                    last = Some((labels, id));
                    id
                }
            };
            samples[id].push((ts, value));
        }
    }
    Ok((series_labels, samples))
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
}
