//! LogQL conformance suite: replays every case of `tests/conformance/*.json`
//! through `parse_expr` → `plan` → (filtering the file's input streams by
//! each `DataRequest`) → `evaluate`, and compares the result exactly
//! (sample values with a relative tolerance of 1e-9).
//!
//! File format (self-contained, also replayed through the HTTP API):
//! ```json
//! {"description": "…",
//!  "streams": [{"stream": {"app": "api"}, "values": [["<ns>", "line"], …]}],
//!  "cases": [{"name": "…", "query": "…",
//!             "kind": "range" | "instant",            // default range
//!             "start": "<ns>|RFC3339", "end": "…",       // range queries
//!             "time": "<ns>|RFC3339",                    // instant queries
//!             "step": "15s" | "15",  "interval": "10s",  // optional
//!             "limit": 100, "direction": "backward",     // optional (Loki defaults)
//!             "streams": […],                            // optional per-case input
//!             "expected": {"resultType": "matrix", "result": […]}
//!                      | {"status": 400, "error": "text"}}]}
//! ```
//! Results use Loki's JSON shapes: streams `{"stream":{…},"values":[["<ns>","line"]]}`
//! (compared order-insensitively by stream), matrix `{"metric":{…},"values":[[<s>,"v"]]}`,
//! vector `{"metric":{…},"value":[<s>,"v"]}`, scalar `[<s>,"v"]`; sample
//! timestamps are seconds (ms precision), values Go float strings.
//! Instant log queries read `[time − 30s, time)` (Loki 2.8).

use std::path::Path;

use serde_json::Value;
use std::collections::HashMap;

use sluice_logql::{
    evaluate, parse_expr, plan, Direction, EvalLimits, Input, InputStream, LabelSet, QueryKind,
    QueryParams, QueryValue, SampleExtractor, SampleSeries,
};

const NS: i64 = 1_000_000_000;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `"<ns>"` or `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
fn parse_time(v: &Value) -> Result<i64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("time must be a string: {v}"))?;
    if let Ok(ns) = s.parse::<i64>() {
        return Ok(ns);
    }
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return Err(format!("bad time {s}"));
    }
    let num = |r: std::ops::Range<usize>| {
        s[r].parse::<i64>()
            .map_err(|e| format!("bad time {s}: {e}"))
    };
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    let secs = days * 86_400 + num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let mut frac_ns = 0;
    if b[19] == b'.' {
        let frac = &s[20..s.len() - 1];
        let padded = format!("{frac:0<9}");
        frac_ns = padded[..9].parse::<i64>().map_err(|e| e.to_string())?;
    }
    Ok(secs * NS + frac_ns)
}

/// Parses `15`, `1.5` (seconds) or a duration like `1m30s`, `500ms`.
fn parse_duration(v: &Value) -> Result<i64, String> {
    if let Some(n) = v.as_f64() {
        return Ok((n * 1e9).round() as i64);
    }
    let s = v.as_str().ok_or("duration must be a string or number")?;
    if let Ok(n) = s.parse::<f64>() {
        return Ok((n * 1e9).round() as i64);
    }
    let mut total = 0i64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s}"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|c| c.is_ascii_alphabetic()).count();
        let mult = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => NS,
            "m" => 60 * NS,
            "h" => 3600 * NS,
            "d" => 86_400 * NS,
            other => return Err(format!("bad unit {other} in {s}")),
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    Ok(total)
}

fn labels_of(v: &Value) -> Result<LabelSet, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("labels must be an object: {v}"))?;
    Ok(LabelSet::new(
        obj.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    ))
}

fn input_streams(v: &Value) -> Result<Vec<InputStream>, String> {
    let mut out = Vec::new();
    for s in v.as_array().ok_or("streams must be an array")? {
        let labels = labels_of(&s["stream"])?;
        let mut entries = Vec::new();
        for e in s["values"].as_array().ok_or("values must be an array")? {
            let ts = parse_time(&e[0])?;
            let line = e[1].as_str().ok_or("line must be a string")?.to_string();
            entries.push((ts, line));
        }
        entries.sort_by_key(|(ts, _)| *ts);
        out.push(InputStream { labels, entries });
    }
    Ok(out)
}

fn value_close(expected: &str, actual: f64) -> bool {
    let e = match expected {
        "NaN" => return actual.is_nan(),
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => match other.parse::<f64>() {
            Ok(v) => v,
            Err(_) => return false,
        },
    };
    if e.is_infinite() || actual.is_infinite() {
        return e == actual;
    }
    (e - actual).abs() <= 1e-9 * e.abs().max(actual.abs()).max(1.0)
}

fn sample_ts(v: &Value) -> Result<i64, String> {
    let secs = v
        .as_f64()
        .ok_or_else(|| format!("sample timestamp must be a number: {v}"))?;
    Ok((secs * 1000.0).round() as i64 * 1_000_000)
}

fn render(value: &QueryValue) -> String {
    match value {
        QueryValue::Streams(streams) => streams
            .iter()
            .map(|s| format!("{} {:?}", s.labels, s.entries))
            .collect::<Vec<_>>()
            .join("\n"),
        QueryValue::Matrix(series) => series
            .iter()
            .map(|s| {
                format!(
                    "{} {:?}",
                    s.labels,
                    s.points
                        .iter()
                        .map(|(t, v)| (t / 1_000_000, *v))
                        .collect::<Vec<_>>()
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        QueryValue::Vector(samples) => samples
            .iter()
            .map(|s| format!("{} @{} {}", s.labels, s.ts_ns / 1_000_000, s.value))
            .collect::<Vec<_>>()
            .join("\n"),
        QueryValue::Scalar { ts_ns, value } => format!("scalar @{} {value}", ts_ns / 1_000_000),
    }
}

fn compare(expected: &Value, actual: &QueryValue) -> Result<(), String> {
    let result_type = expected["resultType"]
        .as_str()
        .ok_or("expected.resultType missing")?;
    let result = &expected["result"];
    let mismatch = |what: &str| Err(format!("{what}\nactual:\n{}", render(actual)));
    match (result_type, actual) {
        ("streams", QueryValue::Streams(streams)) => {
            let exp = result.as_array().ok_or("result must be an array")?;
            if exp.len() != streams.len() {
                return mismatch(&format!(
                    "expected {} streams, got {}",
                    exp.len(),
                    streams.len()
                ));
            }
            for e in exp {
                let labels = labels_of(&e["stream"])?;
                let Some(stream) = streams.iter().find(|s| s.labels == labels) else {
                    return mismatch(&format!("missing stream {labels}"));
                };
                let values = e["values"].as_array().ok_or("values must be an array")?;
                let exp_entries: Vec<(i64, String)> = values
                    .iter()
                    .map(|v| {
                        Ok((
                            parse_time(&v[0])?,
                            v[1].as_str().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect::<Result<_, String>>()?;
                if exp_entries != stream.entries {
                    return mismatch(&format!("stream {labels}: expected {exp_entries:?}"));
                }
            }
            Ok(())
        }
        ("matrix", QueryValue::Matrix(series)) => {
            let exp = result.as_array().ok_or("result must be an array")?;
            if exp.len() != series.len() {
                return mismatch(&format!(
                    "expected {} series, got {}",
                    exp.len(),
                    series.len()
                ));
            }
            for (e, s) in exp.iter().zip(series) {
                let labels = labels_of(&e["metric"])?;
                if labels != s.labels {
                    return mismatch(&format!("expected series {labels}, got {}", s.labels));
                }
                let values = e["values"].as_array().ok_or("values must be an array")?;
                if values.len() != s.points.len() {
                    return mismatch(&format!(
                        "series {labels}: expected {} points, got {}",
                        values.len(),
                        s.points.len()
                    ));
                }
                for (v, (t, x)) in values.iter().zip(&s.points) {
                    let et = sample_ts(&v[0])?;
                    let ev = v[1].as_str().ok_or("value must be a string")?;
                    if et != *t || !value_close(ev, *x) {
                        return mismatch(&format!(
                            "series {labels}: expected point [{}, {ev}], got [{}, {x}]",
                            et / 1_000_000,
                            t / 1_000_000
                        ));
                    }
                }
            }
            Ok(())
        }
        ("vector", QueryValue::Vector(samples)) => {
            let exp = result.as_array().ok_or("result must be an array")?;
            if exp.len() != samples.len() {
                return mismatch(&format!(
                    "expected {} samples, got {}",
                    exp.len(),
                    samples.len()
                ));
            }
            for (e, s) in exp.iter().zip(samples) {
                let labels = labels_of(&e["metric"])?;
                let et = sample_ts(&e["value"][0])?;
                let ev = e["value"][1].as_str().ok_or("value must be a string")?;
                if labels != s.labels || et != s.ts_ns || !value_close(ev, s.value) {
                    return mismatch(&format!(
                        "expected sample {labels} @{} {ev}",
                        et / 1_000_000
                    ));
                }
            }
            Ok(())
        }
        ("scalar", QueryValue::Scalar { ts_ns, value }) => {
            let et = sample_ts(&result[0])?;
            let ev = result[1].as_str().ok_or("value must be a string")?;
            if et != *ts_ns || !value_close(ev, *value) {
                return mismatch(&format!("expected scalar @{} {ev}", et / 1_000_000));
            }
            Ok(())
        }
        (t, _) => mismatch(&format!("expected resultType {t}")),
    }
}

/// How the data reaches the engine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sources {
    /// Every request answered with entries.
    Entries,
    /// Requests with an extraction answered with samples, extracted as an
    /// ingester would (from the extraction's text, stream by stream).
    Samples,
}

/// The samples a source would send for `streams` under `extraction`.
fn extract(extraction: &str, streams: Vec<InputStream>) -> Result<Input, String> {
    let extractor = SampleExtractor::parse(extraction).map_err(|err| err.message)?;
    let mut series: Vec<SampleSeries> = Vec::new();
    for stream in streams {
        let mut by_labels: HashMap<LabelSet, Vec<(i64, f64)>> = HashMap::new();
        let mut samples = extractor.for_stream(&stream.labels);
        for (ts, line) in &stream.entries {
            if let Some((labels, value)) = samples.process(*ts, line) {
                by_labels.entry(labels).or_default().push((*ts, value));
            }
        }
        series.extend(
            by_labels
                .into_iter()
                .map(|(labels, samples)| SampleSeries { labels, samples }),
        );
    }
    Ok(Input::Samples(series))
}

/// Runs one case; false when `sources` does not apply to it.
fn run_case(file_streams: &[InputStream], case: &Value, sources: Sources) -> Result<bool, String> {
    let query = case["query"].as_str().ok_or("query missing")?;
    let expected = &case["expected"];
    let expected_error = expected.get("error").and_then(Value::as_str);
    let streams = match case.get("streams") {
        Some(s) => input_streams(s)?,
        None => file_streams.to_vec(),
    };
    let kind = match case.get("kind").and_then(Value::as_str) {
        Some("instant") => QueryKind::Instant,
        _ => QueryKind::Range,
    };
    let expr = match parse_expr(query) {
        Ok(expr) => expr,
        Err(err) => {
            return match expected_error {
                Some(e) if e == err.to_string() => Ok(sources == Sources::Entries),
                _ => Err(format!("parse error: {err}")),
            }
        }
    };
    let (start_ns, end_ns) = if kind == QueryKind::Instant {
        let t = parse_time(&case["time"])?;
        if expr.is_metric() {
            (t, t)
        } else {
            (t - 30 * NS, t)
        }
    } else {
        (parse_time(&case["start"])?, parse_time(&case["end"])?)
    };
    let params = QueryParams {
        start_ns,
        end_ns,
        step_ns: case
            .get("step")
            .map(parse_duration)
            .transpose()?
            .unwrap_or(0),
        interval_ns: case
            .get("interval")
            .map(parse_duration)
            .transpose()?
            .unwrap_or(0),
        limit: case.get("limit").and_then(Value::as_u64).unwrap_or(100) as u32,
        direction: match case.get("direction").and_then(Value::as_str) {
            Some("forward") => Direction::Forward,
            _ => Direction::Backward,
        },
        kind,
    };
    let limits = EvalLimits {
        max_query_series: case
            .get("max_query_series")
            .and_then(Value::as_u64)
            .unwrap_or(500) as usize,
        max_entries_limit_per_query: 5000,
    };
    let planned = plan(&expr, &params);
    let samples_used = planned
        .as_ref()
        .is_ok_and(|requests| requests.iter().any(|request| request.extraction.is_some()));
    if sources == Sources::Samples && !samples_used {
        return Ok(false);
    }
    let outcome = planned.and_then(|requests| {
        let data: Result<Vec<Input>, String> = requests
            .iter()
            .map(|req| {
                let streams: Vec<InputStream> = streams
                    .iter()
                    .filter(|s| {
                        req.log
                            .matchers
                            .iter()
                            .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
                    })
                    .map(|s| InputStream {
                        labels: s.labels.clone(),
                        entries: s
                            .entries
                            .iter()
                            .filter(|(ts, _)| *ts >= req.from_ns && *ts < req.through_ns)
                            .cloned()
                            .collect(),
                    })
                    .filter(|s| !s.entries.is_empty())
                    .collect();
                match (&req.extraction, sources) {
                    (Some(extraction), Sources::Samples) => extract(extraction, streams),
                    _ => Ok(Input::Entries(streams)),
                }
            })
            .collect();
        let data = data.map_err(sluice_logql::EvalError::bad_request)?;
        evaluate(&expr, &params, data, &limits)
    });
    match (outcome, expected_error) {
        (Ok(value), None) => compare(expected, &value).map(|()| true),
        (Err(err), Some(e)) if err.message == e => Ok(true),
        (Err(err), Some(e)) => Err(format!("expected error {e:?}, got error {:?}", err.message)),
        (Err(err), None) => Err(format!("unexpected error: {}", err.message)),
        (Ok(value), Some(e)) => Err(format!("expected error {e:?}, got:\n{}", render(&value))),
    }
}

#[test]
fn conformance() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let (mut passed, mut failed) = (0, Vec::new());
    let mut sampled = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read case file");
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let file_streams = match doc.get("streams") {
            Some(s) => input_streams(s).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            None => Vec::new(),
        };
        let fname = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for case in doc["cases"].as_array().expect("cases array") {
            let name = format!("{fname}: {}", case["name"].as_str().unwrap_or("?"));
            match run_case(&file_streams, case, Sources::Entries) {
                Ok(_) => passed += 1,
                Err(e) => failed.push(format!(
                    "{name} [{}]\n  {}",
                    case["query"],
                    e.replace('\n', "\n  ")
                )),
            }
            // The same case with samples extracted at the sources.
            match run_case(&file_streams, case, Sources::Samples) {
                Ok(ran) => sampled += usize::from(ran),
                Err(e) => failed.push(format!(
                    "{name} (samples from the sources) [{}]\n  {}",
                    case["query"],
                    e.replace('\n', "\n  ")
                )),
            }
        }
    }
    println!(
        "conformance: {passed} passed ({sampled} also with samples from the sources), {} failed",
        failed.len()
    );
    for f in &failed {
        println!("FAIL {f}");
    }
    assert!(
        failed.is_empty(),
        "{} conformance case(s) failed",
        failed.len()
    );
}
