//! Binary operations between vectors and scalars with Prometheus/Loki
//! vector matching (`on`, `ignoring`, `group_left`, `group_right`).

use std::collections::HashMap;

use crate::ast::{BinOp, BinOpExpr, Cardinality, VectorMatching};
use crate::engine::StepVectors;
use crate::labelset::LabelSet;
use crate::value::EvalError;

/// Applies an arithmetic or comparison operator like Loki's
/// `mergeBinOpFloat`: `x / 0` and `x % 0` are NaN; comparisons give 1/0.
pub(crate) fn apply(op: BinOp, left: f64, right: f64) -> f64 {
    match op {
        BinOp::Div | BinOp::Mod if right == 0.0 => f64::NAN,
        _ => op.apply_scalar(left, right),
    }
}

fn compare_holds(op: BinOp, left: f64, right: f64) -> bool {
    apply(op, left, right) == 1.0
}

/// `vector op scalar` (`scalar_on_left` = false) or `scalar op vector`.
pub(crate) fn vector_scalar(
    expr: &BinOpExpr,
    mut vectors: StepVectors,
    scalar: f64,
    scalar_on_left: bool,
) -> StepVectors {
    let op = expr.op;
    for vec in &mut vectors.steps {
        vec.retain_mut(|(_, v)| {
            let (l, r) = if scalar_on_left {
                (scalar, *v)
            } else {
                (*v, scalar)
            };
            if op.is_comparison() {
                let holds = compare_holds(op, l, r);
                if expr.return_bool {
                    *v = if holds { 1.0 } else { 0.0 };
                    true
                } else {
                    // The vector's value is kept, whichever side it is on.
                    holds
                }
            } else {
                *v = apply(op, l, r);
                true
            }
        });
    }
    vectors
}

fn signature(labels: &LabelSet, matching: Option<&VectorMatching>) -> LabelSet {
    match matching {
        None => labels.clone(),
        Some(m) => LabelSet::new(
            labels
                .iter()
                .filter(|(k, _)| m.labels.iter().any(|n| n == k) == m.on)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    }
}

/// Interns label sets into a table.
#[derive(Default)]
struct Table {
    index: HashMap<LabelSet, u32>,
    labels: Vec<LabelSet>,
}

impl Table {
    fn intern(&mut self, labels: LabelSet) -> u32 {
        if let Some(id) = self.index.get(&labels) {
            return *id;
        }
        let id = self.labels.len() as u32;
        self.labels.push(labels.clone());
        self.index.insert(labels, id);
        id
    }
}

fn sig_ids(table: &[LabelSet], matching: Option<&VectorMatching>, sigs: &mut Table) -> Vec<u32> {
    table
        .iter()
        .map(|labels| sigs.intern(signature(labels, matching)))
        .collect()
}

/// Prometheus `resultMetric`: the labels of a matched pair's result.
fn result_labels(many: &LabelSet, one: &LabelSet, matching: Option<&VectorMatching>) -> LabelSet {
    let Some(m) = matching else {
        return many.clone();
    };
    let mut pairs: Vec<(String, String)> = many
        .iter()
        .filter(|(k, _)| {
            if m.card != Cardinality::OneToOne {
                true
            } else {
                m.labels.iter().any(|n| n == k) == m.on
            }
        })
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for name in &m.include {
        pairs.retain(|(k, _)| k != name);
        if let Some(v) = one.get(name) {
            if !v.is_empty() {
                pairs.push((name.clone(), v.to_string()));
            }
        }
    }
    LabelSet::new(pairs)
}

/// `vector op vector`.
pub(crate) fn vector_vector(
    expr: &BinOpExpr,
    lhs: StepVectors,
    rhs: StepVectors,
) -> Result<StepVectors, EvalError> {
    let matching = expr.matching.as_ref();
    let mut sigs = Table::default();
    let lsig = sig_ids(&lhs.labels, matching, &mut sigs);
    let rsig = sig_ids(&rhs.labels, matching, &mut sigs);
    if expr.op.is_set_operator() {
        return Ok(set_operation(expr.op, lhs, rhs, &lsig, &rsig));
    }
    let card = matching.map(|m| m.card).unwrap_or_default();
    // `many` is the side whose labels the result keeps.
    let one_to_many = card == Cardinality::OneToMany;
    let (many, one, many_sig, one_sig) = if one_to_many {
        (&rhs, &lhs, &rsig, &lsig)
    } else {
        (&lhs, &rhs, &lsig, &rsig)
    };
    let mut out = Table::default();
    let mut steps = Vec::with_capacity(lhs.steps.len());
    let mut result_cache: HashMap<(u32, u32), u32> = HashMap::new();
    for (many_vec, one_vec) in many.steps.iter().zip(one.steps.iter()) {
        let mut by_sig: HashMap<u32, (u32, f64)> = HashMap::with_capacity(one_vec.len());
        for (id, v) in one_vec {
            let sig = one_sig[*id as usize];
            if by_sig.insert(sig, (*id, *v)).is_some() {
                let side = if one_to_many { "left" } else { "right" };
                return Err(EvalError::bad_request(format!(
                    "found duplicate series on the {side} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
        }
        let mut matched: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut vec = Vec::new();
        for (id, v) in many_vec {
            let sig = many_sig[*id as usize];
            let Some((one_id, one_v)) = by_sig.get(&sig) else {
                continue;
            };
            let result_id = *result_cache.entry((*id, *one_id)).or_insert_with(|| {
                out.intern(result_labels(
                    &many.labels[*id as usize],
                    &one.labels[*one_id as usize],
                    matching,
                ))
            });
            let seen = matched.entry(sig).or_default();
            if card == Cardinality::OneToOne {
                if !seen.is_empty() {
                    return Err(EvalError::bad_request(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
            } else if seen.contains(&result_id) {
                return Err(EvalError::bad_request(
                    "multiple matches for labels: grouping labels must ensure unique matches",
                ));
            }
            seen.push(result_id);
            let (l, r) = if one_to_many {
                (*one_v, *v)
            } else {
                (*v, *one_v)
            };
            if expr.op.is_comparison() {
                let holds = compare_holds(expr.op, l, r);
                if expr.return_bool {
                    vec.push((result_id, if holds { 1.0 } else { 0.0 }));
                } else if holds {
                    vec.push((result_id, l));
                }
            } else {
                vec.push((result_id, apply(expr.op, l, r)));
            }
        }
        steps.push(vec);
    }
    Ok(StepVectors {
        labels: out.labels,
        steps,
    })
}

fn set_operation(
    op: BinOp,
    lhs: StepVectors,
    rhs: StepVectors,
    lsig: &[u32],
    rsig: &[u32],
) -> StepVectors {
    let offset = lhs.labels.len() as u32;
    let mut labels = lhs.labels;
    if op == BinOp::Or {
        labels.extend(rhs.labels);
    }
    let steps = lhs
        .steps
        .into_iter()
        .zip(rhs.steps)
        .map(|(lvec, rvec)| match op {
            BinOp::And => {
                let right: std::collections::HashSet<u32> =
                    rvec.iter().map(|(id, _)| rsig[*id as usize]).collect();
                lvec.into_iter()
                    .filter(|(id, _)| right.contains(&lsig[*id as usize]))
                    .collect()
            }
            BinOp::Unless => {
                let right: std::collections::HashSet<u32> =
                    rvec.iter().map(|(id, _)| rsig[*id as usize]).collect();
                lvec.into_iter()
                    .filter(|(id, _)| !right.contains(&lsig[*id as usize]))
                    .collect()
            }
            _ => {
                let left: std::collections::HashSet<u32> =
                    lvec.iter().map(|(id, _)| lsig[*id as usize]).collect();
                let mut out = lvec;
                out.extend(
                    rvec.into_iter()
                        .filter(|(id, _)| !left.contains(&rsig[*id as usize]))
                        .map(|(id, v)| (id + offset, v)),
                );
                out
            }
        })
        .collect();
    StepVectors { labels, steps }
}
