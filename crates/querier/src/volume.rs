//! `/loki/api/v1/index/volume` and `/index/volume_range`: bytes of the
//! selected streams, by series or by label, as a Prometheus vector (one
//! sample at `end`) or matrix (one sample per step). Grafana's log volume
//! histogram and the Logs Drilldown app read them.
//!
//! Loki's rules: `limit` (default 100; 0 means 100) volumes per step,
//! largest first; `targetLabels` (comma list) groups by those labels and
//! requires them; without it a series is reduced to the labels its selector
//! names (`{}` keeps every label); `aggregateBy=labels` gives one volume
//! per label name, shown as `{"<name>":""}`. Steps are aligned to
//! multiples of `step`; each sample is stamped at its step's end (1 ms
//! before the next step starts), the last one at `end`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use sluice_chunk::stats::{AggregateBy, VolumeSpec};
use sluice_common::time::format_unix_seconds;
use sluice_common::HttpError;
use sluice_logql::{MatchOp, Matcher};

use crate::http::{stats_json, Call, LokiJson};
use crate::json::write_labels;
use crate::params::{Params, TimeRange};

/// Loki's default and maximum points per series.
const DEFAULT_LIMIT: usize = 100;
const MAX_POINTS: i64 = 11_000;
const NS_PER_MS: i64 = 1_000_000;

/// A parsed volume request.
#[derive(Debug)]
struct VolumeQuery {
    /// The selector's matchers plus `=~".+"` for each absent target label.
    matchers: Vec<Matcher>,
    matcher_names: Vec<String>,
    target_labels: Vec<String>,
    aggregate_by: AggregateBy,
    limit: usize,
}

impl VolumeQuery {
    fn parse(params: &Params) -> Result<VolumeQuery, HttpError> {
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => {
                let parsed: i64 = text.parse().map_err(|_| {
                    HttpError::bad_request(format!(
                        "strconv.ParseInt: parsing {text:?}: invalid syntax"
                    ))
                })?;
                match parsed {
                    0 => DEFAULT_LIMIT,
                    negative if negative < 0 => {
                        return Err(HttpError::bad_request("limit must be a positive value"))
                    }
                    positive => usize::try_from(positive).unwrap_or(usize::MAX),
                }
            }
        };
        let aggregate_by = AggregateBy::parse(params.get("aggregateBy").unwrap_or_default())
            .ok_or_else(|| HttpError::bad_request("invalid aggregation option"))?;
        let target_labels: Vec<String> = params
            .get("targetLabels")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect();
        let query = params.query()?;
        let compact: String = query.split_whitespace().collect();
        let mut matchers = if compact == "{}" {
            Vec::new()
        } else {
            sluice_logql::parse_selector(query)
                .map_err(|err| HttpError::bad_request(err.to_string()))?
        };
        let matcher_names: Vec<String> = matchers.iter().map(|m| m.name.clone()).collect();
        for target in &target_labels {
            if !matcher_names.contains(target) {
                let matcher = Matcher::new(target.clone(), MatchOp::Re, ".+")
                    .map_err(|err| HttpError::bad_request(err.to_string()))?;
                matchers.push(matcher);
            }
        }
        Ok(VolumeQuery {
            matchers,
            matcher_names,
            target_labels,
            aggregate_by,
            limit,
        })
    }
}

/// One result series: its name (for ordering), labels and samples.
#[derive(Debug)]
struct VolumeSeries {
    name: String,
    labels: Vec<(String, String)>,
    /// `(stamp ns, bytes)` in time order.
    samples: Vec<(i64, u64)>,
}

/// One step: data in `[start, end)`, sample stamped `stamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    start: i64,
    end: i64,
    stamp: i64,
}

/// Splits `range` into steps aligned to multiples of `step` (Loki's
/// `ForInterval` with inclusive ends); a non-positive step gives one.
fn buckets(range: TimeRange, step: i64) -> Vec<Bucket> {
    if step <= 0 || range.start >= range.end {
        return vec![Bucket {
            start: range.start,
            end: range.end,
            stamp: range.end,
        }];
    }
    let mut out = Vec::new();
    let mut boundary = range.start - range.start.rem_euclid(step);
    let mut start = range.start;
    while boundary < range.end {
        let next = boundary.saturating_add(step);
        let (end, stamp) = if next >= range.end {
            (range.end, range.end)
        } else {
            (next, next - NS_PER_MS)
        };
        out.push(Bucket { start, end, stamp });
        start = next;
        boundary = next;
    }
    out
}

async fn volume(
    querier: &crate::querier::Querier,
    call: Call,
    range_query: bool,
) -> Result<LokiJson, HttpError> {
    let started = Instant::now();
    let Call { tenants, params } = call;
    let tenant = tenants.single()?.clone();
    let query = VolumeQuery::parse(&params)?;
    let range = params.range()?;
    let step = if range_query {
        let step = match params.step()? {
            0 => sluice_logql::default_step_ns(range.start, range.end),
            step => step,
        };
        if (range.end - range.start) / step > MAX_POINTS {
            return Err(HttpError::bad_request(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        step
    } else {
        0
    };
    let set = querier.chunk_set(&tenant, &query.matchers, range).await?;
    let spec = VolumeSpec {
        aggregate_by: query.aggregate_by,
        target_labels: &query.target_labels,
        matcher_names: &query.matcher_names,
    };
    let buckets = buckets(range, step);
    let spans: Vec<(i64, i64)> = buckets
        .iter()
        .map(|bucket| (bucket.start, bucket.end))
        .collect();
    let per_bucket = set.volumes_in_steps(&spans, spec, query.limit);
    let mut series: BTreeMap<String, VolumeSeries> = BTreeMap::new();
    for (bucket, volumes) in buckets.iter().zip(per_bucket) {
        for volume in volumes {
            series
                .entry(volume.name.clone())
                .or_insert_with(|| VolumeSeries {
                    name: volume.name,
                    labels: volume.labels,
                    samples: Vec::new(),
                })
                .samples
                .push((bucket.stamp, volume.bytes));
        }
    }
    let mut ordered: Vec<VolumeSeries> = series.into_values().collect();
    // Largest first sample first (what matters for an instant volume).
    ordered.sort_by(|a, b| {
        b.samples[0]
            .1
            .cmp(&a.samples[0].1)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(LokiJson(volume_body(
        &ordered,
        range_query,
        started.elapsed().as_secs_f64(),
    )))
}

fn volume_body(series: &[VolumeSeries], matrix: bool, exec_seconds: f64) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":{\"resultType\":");
    out.push_str(if matrix { "\"matrix\"" } else { "\"vector\"" });
    out.push_str(",\"result\":[");
    for (
        index,
        VolumeSeries {
            labels, samples, ..
        },
    ) in series.iter().enumerate()
    {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_labels(
            &mut out,
            labels
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        if matrix {
            out.push_str(",\"values\":[");
            for (sample_index, (ts, bytes)) in samples.iter().enumerate() {
                if sample_index > 0 {
                    out.push(',');
                }
                let _ = write!(out, "[{},\"{bytes}\"]", format_unix_seconds(*ts));
            }
            out.push_str("]}");
        } else {
            let (ts, bytes) = samples[0];
            let _ = write!(
                out,
                ",\"value\":[{},\"{bytes}\"]}}",
                format_unix_seconds(ts)
            );
        }
    }
    let _ = write!(out, "],\"stats\":{}}}}}", stats_json(exec_seconds, 0));
    out
}

/// `GET|POST /loki/api/v1/index/volume`.
pub(crate) async fn volume_instant(
    State(querier): State<Arc<crate::querier::Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    volume(&querier, call, false).await
}

/// `GET|POST /loki/api/v1/index/volume_range`.
pub(crate) async fn volume_range(
    State(querier): State<Arc<crate::querier::Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    volume(&querier, call, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn buckets_align_to_the_step_like_lokis_for_interval() {
        let range = TimeRange {
            start: 95 * SEC,
            end: 300 * SEC,
        };
        let got = buckets(range, 100 * SEC);
        assert_eq!(
            got,
            vec![
                Bucket {
                    start: 95 * SEC,
                    end: 100 * SEC,
                    stamp: 100 * SEC - NS_PER_MS
                },
                Bucket {
                    start: 100 * SEC,
                    end: 200 * SEC,
                    stamp: 200 * SEC - NS_PER_MS
                },
                Bucket {
                    start: 200 * SEC,
                    end: 300 * SEC,
                    stamp: 300 * SEC
                },
            ]
        );
        assert_eq!(buckets(range, 0).len(), 1);
        assert_eq!(buckets(range, 0)[0].stamp, 300 * SEC);
    }

    #[test]
    fn parameters_follow_loki() {
        let parse = |query: &str| VolumeQuery::parse(&Params::parse(Some(query), None));
        let query = parse("query=%7Bjob%3D%22a%22%7D&targetLabels=pod,%20ns").unwrap();
        assert_eq!(query.limit, DEFAULT_LIMIT);
        assert_eq!(query.aggregate_by, AggregateBy::Series);
        assert_eq!(query.matcher_names, vec!["job"]);
        assert_eq!(query.target_labels, vec!["pod", "ns"]);
        let added: Vec<String> = query.matchers.iter().map(|m| m.to_string()).collect();
        assert_eq!(added, vec!["job=\"a\"", "pod=~\".+\"", "ns=~\".+\""]);
        assert!(parse("query=%7B%7D&limit=0").unwrap().matchers.is_empty());
        assert_eq!(parse("query=%7B%7D&limit=0").unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(
            parse("query=%7B%7D&limit=-1").unwrap_err().message,
            "limit must be a positive value"
        );
        assert_eq!(
            parse("query=%7B%7D&aggregateBy=pods").unwrap_err().message,
            "invalid aggregation option"
        );
        assert_eq!(
            parse("query=%7B%7D&aggregateBy=labels")
                .unwrap()
                .aggregate_by,
            AggregateBy::Labels
        );
        assert!(parse("query=%7Bjob%3D~%22.*%22%7D").is_err());
    }

    #[test]
    fn bodies_are_prometheus_vectors_and_matrices() {
        let series = vec![VolumeSeries {
            name: "job".to_string(),
            labels: vec![("job".to_string(), String::new())],
            samples: vec![
                (1_700_000_000_000_000_000, 42),
                (1_700_000_060_000_000_000, 7),
            ],
        }];
        let vector: serde_json::Value =
            serde_json::from_str(&volume_body(&series, false, 0.1)).unwrap();
        assert_eq!(vector["data"]["resultType"], "vector");
        assert_eq!(
            vector["data"]["result"][0],
            serde_json::json!({"metric":{"job":""},"value":[1700000000,"42"]})
        );
        let matrix: serde_json::Value =
            serde_json::from_str(&volume_body(&series, true, 0.1)).unwrap();
        assert_eq!(
            matrix["data"]["result"][0]["values"],
            serde_json::json!([[1700000000, "42"], [1700000060, "7"]])
        );
        let empty: serde_json::Value = serde_json::from_str(&volume_body(&[], false, 0.1)).unwrap();
        assert_eq!(empty["data"]["result"], serde_json::json!([]));
    }
}
