//! The evaluation engine: log queries (pipeline, limit, direction,
//! interval) and metric queries (step-wise evaluation of range/vector
//! aggregations, binary operations, `label_replace`, `vector()`).

use std::collections::HashMap;

use regex::Regex;

use crate::ast::{Expr, LabelReplace, LogExpr, VectorOp};
use crate::binop;
use crate::labelset::LabelSet;
use crate::pipeline::Pipeline;
use crate::plan::eval_steps;
use crate::range_agg::{can_push_down_sum, eval_range_agg};
use crate::value::{
    compare_labels, Direction, EvalError, EvalLimits, Input, InputStream, QueryKind, QueryParams,
    QueryValue, ResultStream, Sample, Series,
};
use crate::vector_agg::eval_vector_agg;

/// Intermediate metric value: a table of series labels and, per evaluation
/// step, the `(series id, value)` samples present at that step.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepVectors {
    /// Series labels, indexed by id.
    pub labels: Vec<LabelSet>,
    /// One vector per step.
    pub steps: Vec<Vec<(u32, f64)>>,
}

impl StepVectors {
    /// Renumbers series in label order (deterministic tie-breaking) and
    /// sorts every step by id.
    fn normalized(self) -> StepVectors {
        let mut order: Vec<usize> = (0..self.labels.len()).collect();
        order.sort_by(|a, b| compare_labels(&self.labels[*a], &self.labels[*b]));
        let mut new_id = vec![0u32; self.labels.len()];
        for (new, old) in order.iter().enumerate() {
            new_id[*old] = new as u32;
        }
        let mut labels_slots: Vec<Option<LabelSet>> = self.labels.into_iter().map(Some).collect();
        let labels = order
            .iter()
            .map(|old| labels_slots[*old].take().unwrap_or_default())
            .collect();
        let steps = self
            .steps
            .into_iter()
            .map(|vec| {
                let mut vec: Vec<(u32, f64)> = vec
                    .into_iter()
                    .map(|(id, v)| (new_id[id as usize], v))
                    .collect();
                vec.sort_by_key(|(id, _)| *id);
                vec
            })
            .collect();
        StepVectors { labels, steps }
    }
}

enum Val {
    Scalar(f64),
    Vectors(StepVectors),
}

struct Ctx {
    steps: Vec<i64>,
    data: Vec<Input>,
    next: usize,
}

impl Ctx {
    fn take_data(&mut self) -> Result<Input, EvalError> {
        let index = self.next;
        self.next += 1;
        self.data
            .get_mut(index)
            .map(std::mem::take)
            .ok_or_else(|| EvalError::internal(format!("missing data for log selector #{index}")))
    }
}

/// Evaluates a query over the data fetched for [`crate::plan`]'s requests
/// (`data[i]` answers request `i`).
pub fn evaluate(
    expr: &Expr,
    params: &QueryParams,
    data: Vec<Input>,
    limits: &EvalLimits,
) -> Result<QueryValue, EvalError> {
    if let Expr::Log(log) = expr {
        if limits.max_entries_limit_per_query > 0
            && params.limit > limits.max_entries_limit_per_query
        {
            return Err(EvalError::bad_request(format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({} > {})",
                params.limit, limits.max_entries_limit_per_query
            )));
        }
        let streams = match data.into_iter().next().unwrap_or_default() {
            Input::Entries(streams) => streams,
            Input::Samples(_) => {
                return Err(EvalError::internal(
                    "a log query got samples instead of entries",
                ))
            }
        };
        return eval_log_query(log, params, streams).map(QueryValue::Streams);
    }
    let steps = eval_steps(params)?;
    let mut ctx = Ctx {
        steps,
        data,
        next: 0,
    };
    let value = eval_metric(expr, &mut ctx)?;
    let instant = params.kind == QueryKind::Instant;
    match value {
        Val::Scalar(value) => {
            if instant {
                Ok(QueryValue::Scalar {
                    ts_ns: params.end_ns,
                    value,
                })
            } else {
                Ok(QueryValue::Matrix(vec![Series {
                    labels: LabelSet::new(Vec::new()),
                    points: ctx.steps.iter().map(|t| (*t, value)).collect(),
                }]))
            }
        }
        Val::Vectors(vectors) => {
            if instant {
                to_vector(vectors, &ctx.steps, expr.has_sort(), limits)
            } else {
                to_matrix(vectors, &ctx.steps, limits)
            }
        }
    }
}

fn series_limit_error(limits: &EvalLimits) -> EvalError {
    EvalError::bad_request(format!(
        "maximum of series ({}) reached for a single query",
        limits.max_query_series
    ))
}

fn to_vector(
    vectors: StepVectors,
    steps: &[i64],
    keep_order: bool,
    limits: &EvalLimits,
) -> Result<QueryValue, EvalError> {
    let ts_ns = steps.first().copied().unwrap_or_default();
    let Some(vec) = vectors.steps.into_iter().next() else {
        return Ok(QueryValue::Vector(Vec::new()));
    };
    if vec.len() > limits.max_query_series {
        return Err(series_limit_error(limits));
    }
    let mut samples: Vec<Sample> = vec
        .into_iter()
        .map(|(id, value)| Sample {
            labels: vectors.labels[id as usize].clone(),
            ts_ns,
            value,
        })
        .collect();
    if !keep_order {
        samples.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
    }
    Ok(QueryValue::Vector(samples))
}

fn to_matrix(
    vectors: StepVectors,
    steps: &[i64],
    limits: &EvalLimits,
) -> Result<QueryValue, EvalError> {
    let mut index: HashMap<&LabelSet, usize> = HashMap::new();
    let mut series: Vec<Series> = Vec::new();
    for (vec, t) in vectors.steps.iter().zip(steps) {
        if vec.len() > limits.max_query_series {
            return Err(series_limit_error(limits));
        }
        for (id, value) in vec {
            let labels = &vectors.labels[*id as usize];
            let slot = match index.get(labels) {
                Some(slot) => *slot,
                None => {
                    series.push(Series {
                        labels: labels.clone(),
                        points: Vec::new(),
                    });
                    index.insert(labels, series.len() - 1);
                    if series.len() > limits.max_query_series {
                        return Err(series_limit_error(limits));
                    }
                    series.len() - 1
                }
            };
            series[slot].points.push((*t, *value));
        }
    }
    series.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
    Ok(QueryValue::Matrix(series))
}

fn eval_metric(expr: &Expr, ctx: &mut Ctx) -> Result<Val, EvalError> {
    match expr {
        Expr::Literal(value) => Ok(Val::Scalar(*value)),
        Expr::Vector(value) => Ok(Val::Vectors(StepVectors {
            labels: vec![LabelSet::new(Vec::new())],
            steps: ctx.steps.iter().map(|_| vec![(0, *value)]).collect(),
        })),
        Expr::RangeAggregation(agg) => {
            let data = ctx.take_data()?;
            eval_range_agg(agg, None, data, &ctx.steps).map(Val::Vectors)
        }
        Expr::VectorAggregation(agg) => {
            let input = match &*agg.inner {
                Expr::RangeAggregation(inner)
                    if agg.op == VectorOp::Sum && can_push_down_sum(inner) =>
                {
                    let data = ctx.take_data()?;
                    eval_range_agg(inner, Some(agg.grouping.as_ref()), data, &ctx.steps)?
                }
                inner => match eval_metric(inner, ctx)? {
                    Val::Vectors(v) => v,
                    Val::Scalar(_) => {
                        return Err(EvalError::bad_request(
                            "vector aggregation of a scalar is not supported",
                        ))
                    }
                },
            };
            let out = eval_vector_agg(agg, input);
            Ok(Val::Vectors(match agg.op {
                VectorOp::Sort | VectorOp::SortDesc => out,
                _ => out.normalized(),
            }))
        }
        Expr::BinOp(bin) => {
            let lhs = eval_metric(&bin.lhs, ctx)?;
            let rhs = eval_metric(&bin.rhs, ctx)?;
            match (lhs, rhs) {
                (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(binop::apply(bin.op, l, r))),
                (Val::Vectors(l), Val::Scalar(r)) => {
                    Ok(Val::Vectors(binop::vector_scalar(bin, l, r, false)))
                }
                (Val::Scalar(l), Val::Vectors(r)) => {
                    Ok(Val::Vectors(binop::vector_scalar(bin, r, l, true)))
                }
                (Val::Vectors(l), Val::Vectors(r)) => {
                    Ok(Val::Vectors(binop::vector_vector(bin, l, r)?.normalized()))
                }
            }
        }
        Expr::LabelReplace(replace) => match eval_metric(&replace.inner, ctx)? {
            Val::Vectors(v) => label_replace(replace, v).map(Val::Vectors),
            Val::Scalar(_) => Err(EvalError::bad_request(
                "label_replace of a scalar is not supported",
            )),
        },
        Expr::Log(_) => Err(EvalError::bad_request(
            "log queries cannot be used in a metric expression",
        )),
    }
}

fn label_replace(replace: &LabelReplace, input: StepVectors) -> Result<StepVectors, EvalError> {
    let regex = Regex::new(&format!("^(?s:{})$", replace.regex))
        .map_err(|err| EvalError::bad_request(err.to_string()))?;
    let mut index: HashMap<LabelSet, u32> = HashMap::new();
    let mut labels: Vec<LabelSet> = Vec::new();
    let mapping: Vec<u32> = input
        .labels
        .iter()
        .map(|old| {
            let src = old.get(&replace.src).unwrap_or("");
            let new = match regex.captures(src) {
                None => old.clone(),
                Some(caps) => {
                    let mut value = String::new();
                    caps.expand(&replace.replacement, &mut value);
                    let mut pairs: Vec<(String, String)> = old
                        .iter()
                        .filter(|(k, _)| *k != replace.dst)
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    if !value.is_empty() {
                        pairs.push((replace.dst.clone(), value));
                    }
                    LabelSet::new(pairs)
                }
            };
            if let Some(id) = index.get(&new) {
                return *id;
            }
            let id = labels.len() as u32;
            labels.push(new.clone());
            index.insert(new, id);
            id
        })
        .collect();
    let steps = input
        .steps
        .into_iter()
        .map(|vec| {
            vec.into_iter()
                .map(|(id, v)| (mapping[id as usize], v))
                .collect()
        })
        .collect();
    Ok(StepVectors { labels, steps }.normalized())
}

/// One entry surviving the pipeline.
struct LogEntry {
    stream: u32,
    ts: i64,
    seq: u32,
    line: String,
}

fn eval_log_query(
    log: &LogExpr,
    params: &QueryParams,
    streams: Vec<InputStream>,
) -> Result<Vec<ResultStream>, EvalError> {
    let pipeline = if log.pipeline.is_empty() {
        None
    } else {
        Some(Pipeline::new(&log.pipeline).map_err(|err| EvalError::bad_request(err.to_string()))?)
    };
    let mut index: HashMap<LabelSet, u32> = HashMap::new();
    let mut labels: Vec<LabelSet> = Vec::new();
    let mut intern = |l: &LabelSet| -> u32 {
        if let Some(id) = index.get(l) {
            return *id;
        }
        let id = labels.len() as u32;
        labels.push(l.clone());
        index.insert(l.clone(), id);
        id
    };
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut seq = 0u32;
    for stream in &streams {
        let mut sp = pipeline.as_ref().map(|p| p.for_stream(&stream.labels));
        let fixed = if sp.is_none() {
            Some(intern(&stream.labels))
        } else {
            None
        };
        let first = stream
            .entries
            .partition_point(|(ts, _)| *ts < params.start_ns);
        for (ts, line) in &stream.entries[first..] {
            if *ts >= params.end_ns {
                break;
            }
            seq += 1;
            let (id, out) = match (fixed, sp.as_mut()) {
                (Some(id), _) => (id, line.clone()),
                (None, Some(sp)) => match sp.process(*ts, line) {
                    Some(p) => (intern(p.labels), p.line.to_string()),
                    None => continue,
                },
                (None, None) => continue,
            };
            entries.push(LogEntry {
                stream: id,
                ts: *ts,
                seq,
                line: out,
            });
        }
    }
    // Label order of result streams, for deterministic tie-breaking.
    let mut order: Vec<u32> = (0..labels.len() as u32).collect();
    order.sort_by(|a, b| compare_labels(&labels[*a as usize], &labels[*b as usize]));
    let mut rank = vec![0u32; labels.len()];
    for (r, id) in order.iter().enumerate() {
        rank[*id as usize] = r as u32;
    }
    entries.sort_by(|a, b| {
        a.ts.cmp(&b.ts)
            .then(rank[a.stream as usize].cmp(&rank[b.stream as usize]))
            .then(a.seq.cmp(&b.seq))
    });
    // Identical entries (timestamp and line) of one result stream are
    // returned once, as Loki's iterators de-duplicate them.
    entries.dedup_by(|b, a| a.stream == b.stream && a.ts == b.ts && a.line == b.line);
    if params.direction == Direction::Backward {
        entries.reverse();
    }
    let mut out: Vec<Vec<(i64, String)>> = vec![Vec::new(); labels.len()];
    let mut returned = 0u32;
    let mut last_ts: Option<i64> = None;
    for entry in entries {
        if returned >= params.limit {
            break;
        }
        if params.interval_ns > 0 {
            if let Some(last) = last_ts {
                let keep = match params.direction {
                    Direction::Forward => entry.ts >= last.saturating_add(params.interval_ns),
                    Direction::Backward => entry.ts <= last.saturating_sub(params.interval_ns),
                };
                if !keep {
                    continue;
                }
            }
        }
        last_ts = Some(entry.ts);
        out[entry.stream as usize].push((entry.ts, entry.line));
        returned += 1;
    }
    let mut result: Vec<ResultStream> = out
        .into_iter()
        .zip(labels)
        .filter(|(entries, _)| !entries.is_empty())
        .map(|(entries, labels)| ResultStream { labels, entries })
        .collect();
    result.sort_by(|a, b| compare_labels(&a.labels, &b.labels));
    Ok(result)
}
