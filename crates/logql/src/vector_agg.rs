//! Vector aggregations (`sum`, `avg`, `min`, `max`, `count`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `sort`, `sort_desc`) applied per step.

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::ast::{VectorAggregation, VectorOp};
use crate::engine::StepVectors;
use crate::labelset::LabelSet;

#[derive(Clone, Copy, Default)]
struct Acc {
    value: f64,
    mean: f64,
    count: f64,
}

fn group_labels(labels: &LabelSet, agg: &VectorAggregation) -> LabelSet {
    let (without, names): (bool, &[String]) = match &agg.grouping {
        Some(g) => (g.without, &g.labels),
        None => (false, &[]),
    };
    LabelSet::new(
        labels
            .iter()
            .filter(|(k, _)| names.iter().any(|n| n == k) != without)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Orders values descending with NaN last (topk, sort_desc).
fn desc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// Orders values ascending with NaN last (bottomk, sort).
fn asc_nan_last(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Evaluates a vector aggregation over every step of `input`.
pub(crate) fn eval_vector_agg(agg: &VectorAggregation, input: StepVectors) -> StepVectors {
    match agg.op {
        VectorOp::Sort | VectorOp::SortDesc => {
            let cmp = if agg.op == VectorOp::Sort {
                asc_nan_last
            } else {
                desc_nan_last
            };
            let steps = input
                .steps
                .into_iter()
                .map(|mut vec| {
                    vec.sort_by(|a, b| cmp(a.1, b.1));
                    vec
                })
                .collect();
            return StepVectors {
                labels: input.labels,
                steps,
            };
        }
        _ => {}
    }

    // Group id of every input series, and the group label table.
    let mut group_index: HashMap<LabelSet, u32> = HashMap::new();
    let mut groups: Vec<LabelSet> = Vec::new();
    let group_of: Vec<u32> = input
        .labels
        .iter()
        .map(|labels| {
            let key = group_labels(labels, agg);
            if let Some(id) = group_index.get(&key) {
                return *id;
            }
            let id = groups.len() as u32;
            groups.push(key.clone());
            group_index.insert(key, id);
            id
        })
        .collect();

    if matches!(agg.op, VectorOp::Topk | VectorOp::Bottomk) {
        let k = usize::try_from(agg.param.unwrap_or(0)).unwrap_or(0);
        let cmp = if agg.op == VectorOp::Topk {
            desc_nan_last
        } else {
            asc_nan_last
        };
        let steps = input
            .steps
            .into_iter()
            .map(|vec| {
                let mut members: Vec<Vec<(u32, f64)>> = vec![Vec::new(); groups.len()];
                for (id, value) in vec {
                    members[group_of[id as usize] as usize].push((id, value));
                }
                let mut out = Vec::new();
                for mut group in members {
                    group.sort_by(|a, b| cmp(a.1, b.1));
                    group.truncate(k);
                    out.extend(group);
                }
                out
            })
            .collect();
        return StepVectors {
            labels: input.labels,
            steps,
        };
    }

    let mut accs = vec![Acc::default(); groups.len()];
    let mut touched: Vec<u32> = Vec::new();
    let steps = input
        .steps
        .into_iter()
        .map(|vec| {
            touched.clear();
            for (id, v) in vec {
                let gid = group_of[id as usize];
                let acc = &mut accs[gid as usize];
                if acc.count == 0.0 {
                    touched.push(gid);
                    *acc = Acc {
                        value: if matches!(agg.op, VectorOp::Stddev | VectorOp::Stdvar) {
                            0.0
                        } else {
                            v
                        },
                        mean: v,
                        count: 1.0,
                    };
                    continue;
                }
                acc.count += 1.0;
                match agg.op {
                    VectorOp::Sum => acc.value += v,
                    VectorOp::Avg => acc.mean += (v - acc.mean) / acc.count,
                    VectorOp::Max if acc.value < v || acc.value.is_nan() => acc.value = v,
                    VectorOp::Min if acc.value > v || acc.value.is_nan() => acc.value = v,
                    VectorOp::Stddev | VectorOp::Stdvar => {
                        let delta = v - acc.mean;
                        acc.mean += delta / acc.count;
                        acc.value += delta * (v - acc.mean);
                    }
                    _ => {}
                }
            }
            touched.sort_unstable();
            touched
                .iter()
                .map(|gid| {
                    let acc = std::mem::take(&mut accs[*gid as usize]);
                    let value = match agg.op {
                        VectorOp::Avg => acc.mean,
                        VectorOp::Count => acc.count,
                        VectorOp::Stddev => (acc.value / acc.count).sqrt(),
                        VectorOp::Stdvar => acc.value / acc.count,
                        _ => acc.value,
                    };
                    (*gid, value)
                })
                .collect()
        })
        .collect();
    StepVectors {
        labels: groups,
        steps,
    }
}
