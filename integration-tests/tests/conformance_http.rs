//! LogQL conformance over HTTP: replays every case of
//! `crates/logql/tests/conformance/*.json` (file format documented in
//! `crates/logql/tests/conformance.rs`, which runs the same files against the
//! engine directly) through the real binary's `/loki/api/v1/query_range` and
//! `/loki/api/v1/query`.
//!
//! One Sluice process serves each distinct input data set (and limits): the
//! file's streams, or a case's own `streams`, pushed as JSON with historical
//! timestamps accepted (`reject_old_samples: false`) and served from the
//! ingester whatever their age (`query_ingesters_within: 0s`). Limits mirror
//! the direct runner: `max_entries_limit_per_query` 5000 and
//! `max_query_series` 500 unless the case sets `max_query_series`.
//!
//! Results are compared as the direct runner does: streams order-insensitive
//! (by label set), entries in order; matrix series, points and vector
//! samples in order; sample timestamps at ms precision; values with a
//! relative tolerance of 1e-9. Expected errors must come back with the
//! expected status and, as Loki's `http.Error` writes it, the error text
//! followed by one newline.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use sluice_integration_tests::*;

const NS: i64 = SEC;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `"<ns>"` or `YYYY-MM-DDTHH:MM:SS[.frac]Z` (as the direct runner).
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

/// A `step`/`interval` as sent: the case's string (`15s`, `15`) or number.
fn duration_param(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("duration must be a string or number: {other}")),
    }
}

fn labels_of(v: &Value) -> Result<Labels, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("labels must be an object: {v}"))?;
    Ok(obj
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// Strict label map of a result item: every value must be a string.
fn result_labels(v: &Value) -> Result<Labels, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("result labels must be an object: {v}"))?;
    obj.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| format!("label value must be a string: {v}"))
        })
        .collect()
}

/// A JSON push body for input streams, entries sorted by time per stream
/// (the direct runner sorts them too).
fn push_body(streams: &Value) -> Result<Value, String> {
    let mut out = Vec::new();
    for s in streams.as_array().ok_or("streams must be an array")? {
        let labels = labels_of(&s["stream"])?;
        let mut entries = Vec::new();
        for e in s["values"].as_array().ok_or("values must be an array")? {
            let ts = parse_time(&e[0])?;
            let line = e[1].as_str().ok_or("line must be a string")?.to_string();
            entries.push((ts, line));
        }
        entries.sort_by_key(|(ts, _)| *ts);
        let values: Vec<Value> = entries
            .into_iter()
            .map(|(ts, line)| json!([ts.to_string(), line]))
            .collect();
        out.push(json!({"stream": labels, "values": values}));
    }
    Ok(json!({ "streams": out }))
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

/// A sample timestamp (seconds) at ms precision, in ns.
fn sample_ts(v: &Value) -> Result<i64, String> {
    let secs = v
        .as_f64()
        .ok_or_else(|| format!("sample timestamp must be a number: {v}"))?;
    Ok((secs * 1000.0).round() as i64 * 1_000_000)
}

/// A `[<s>, "<value>"]` sample of the HTTP result.
fn actual_sample(v: &Value) -> Result<(i64, f64), String> {
    let ts = sample_ts(&v[0])?;
    let text = v[1]
        .as_str()
        .ok_or_else(|| format!("sample value must be a string: {v}"))?;
    let value = match text {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse::<f64>()
            .map_err(|e| format!("bad sample value {other:?}: {e}"))?,
    };
    Ok((ts, value))
}

fn entries_of(values: &Value) -> Result<Vec<(i64, String)>, String> {
    values
        .as_array()
        .ok_or("values must be an array")?
        .iter()
        .map(|v| {
            Ok((
                parse_time(&v[0])?,
                v[1].as_str()
                    .ok_or_else(|| format!("line must be a string: {v}"))?
                    .to_string(),
            ))
        })
        .collect()
}

fn compare(expected: &Value, data: &Value) -> Result<(), String> {
    let result_type = expected["resultType"]
        .as_str()
        .ok_or("expected.resultType missing")?;
    let result = &expected["result"];
    let actual = &data["result"];
    let mismatch = |what: String| -> Result<(), String> {
        let mut shown = actual.to_string();
        if shown.len() > 3000 {
            let mut cut = 3000;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown = format!("{}…", &shown[..cut]);
        }
        Err(format!("{what}\nactual:\n{shown}"))
    };
    if data["resultType"] != result_type {
        return mismatch(format!(
            "expected resultType {result_type}, got {}",
            data["resultType"]
        ));
    }
    match result_type {
        "streams" => {
            let exp = result.as_array().ok_or("result must be an array")?;
            let got = actual.as_array().ok_or("actual result must be an array")?;
            if exp.len() != got.len() {
                return mismatch(format!("expected {} streams, got {}", exp.len(), got.len()));
            }
            let mut got_streams: BTreeMap<Labels, Vec<(i64, String)>> = BTreeMap::new();
            for g in got {
                let labels = result_labels(&g["stream"])?;
                let entries = entries_of(&g["values"])?;
                if got_streams.insert(labels.clone(), entries).is_some() {
                    return mismatch(format!("stream {labels:?} appears twice"));
                }
            }
            for e in exp {
                let labels = labels_of(&e["stream"])?;
                let Some(entries) = got_streams.get(&labels) else {
                    return mismatch(format!("missing stream {labels:?}"));
                };
                let exp_entries = entries_of(&e["values"])?;
                if &exp_entries != entries {
                    return mismatch(format!("stream {labels:?}: expected {exp_entries:?}"));
                }
            }
            Ok(())
        }
        "matrix" => {
            let exp = result.as_array().ok_or("result must be an array")?;
            let got = actual.as_array().ok_or("actual result must be an array")?;
            if exp.len() != got.len() {
                return mismatch(format!("expected {} series, got {}", exp.len(), got.len()));
            }
            for (e, g) in exp.iter().zip(got) {
                let labels = labels_of(&e["metric"])?;
                let got_labels = result_labels(&g["metric"])?;
                if labels != got_labels {
                    return mismatch(format!("expected series {labels:?}, got {got_labels:?}"));
                }
                let values = e["values"].as_array().ok_or("values must be an array")?;
                let got_values = g["values"]
                    .as_array()
                    .ok_or("actual values must be an array")?;
                if values.len() != got_values.len() {
                    return mismatch(format!(
                        "series {labels:?}: expected {} points, got {}",
                        values.len(),
                        got_values.len()
                    ));
                }
                for (v, gv) in values.iter().zip(got_values) {
                    let et = sample_ts(&v[0])?;
                    let ev = v[1].as_str().ok_or("value must be a string")?;
                    let (t, x) = actual_sample(gv)?;
                    if et != t || !value_close(ev, x) {
                        return mismatch(format!(
                            "series {labels:?}: expected point [{}, {ev}], got [{}, {x}]",
                            et / 1_000_000,
                            t / 1_000_000
                        ));
                    }
                }
            }
            Ok(())
        }
        "vector" => {
            let exp = result.as_array().ok_or("result must be an array")?;
            let got = actual.as_array().ok_or("actual result must be an array")?;
            if exp.len() != got.len() {
                return mismatch(format!("expected {} samples, got {}", exp.len(), got.len()));
            }
            for (e, g) in exp.iter().zip(got) {
                let labels = labels_of(&e["metric"])?;
                let et = sample_ts(&e["value"][0])?;
                let ev = e["value"][1].as_str().ok_or("value must be a string")?;
                let got_labels = result_labels(&g["metric"])?;
                let (t, x) = actual_sample(&g["value"])?;
                if labels != got_labels || et != t || !value_close(ev, x) {
                    return mismatch(format!(
                        "expected sample {labels:?} @{} {ev}",
                        et / 1_000_000
                    ));
                }
            }
            Ok(())
        }
        "scalar" => {
            let et = sample_ts(&result[0])?;
            let ev = result[1].as_str().ok_or("value must be a string")?;
            let (t, x) = actual_sample(actual)?;
            if et != t || !value_close(ev, x) {
                return mismatch(format!("expected scalar @{} {ev}", et / 1_000_000));
            }
            Ok(())
        }
        other => Err(format!("unknown expected resultType {other}")),
    }
}

/// One case, ready to send.
struct Case {
    instant: bool,
    params: Vec<(String, String)>,
    expected: Value,
}

impl Case {
    fn from_json(case: &Value) -> Result<Case, String> {
        let query = case["query"].as_str().ok_or("query missing")?.to_string();
        let instant = case.get("kind").and_then(Value::as_str) == Some("instant");
        let mut params = vec![("query".to_string(), query)];
        if instant {
            params.push(("time".into(), parse_time(&case["time"])?.to_string()));
        } else {
            params.push(("start".into(), parse_time(&case["start"])?.to_string()));
            params.push(("end".into(), parse_time(&case["end"])?.to_string()));
        }
        for key in ["step", "interval"] {
            if let Some(v) = case.get(key) {
                params.push((key.into(), duration_param(v)?));
            }
        }
        if let Some(limit) = case.get("limit") {
            let limit = limit.as_u64().ok_or("limit must be a number")?;
            params.push(("limit".into(), limit.to_string()));
        }
        if let Some(direction) = case.get("direction") {
            let direction = direction.as_str().ok_or("direction must be a string")?;
            params.push(("direction".into(), direction.to_string()));
        }
        Ok(Case {
            instant,
            params,
            expected: case["expected"].clone(),
        })
    }

    fn run(&self, p: &SluiceProcess) -> Result<(), String> {
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = if self.instant {
            p.query(&params, None)
        } else {
            p.query_range(&params, None)
        };
        if let Some(error) = self.expected.get("error").and_then(Value::as_str) {
            let status = self
                .expected
                .get("status")
                .and_then(Value::as_u64)
                .unwrap_or(400);
            let body = format!("{error}\n");
            if u64::from(r.status) == status && r.body == body {
                return Ok(());
            }
            return Err(format!(
                "expected {status} {body:?}\ngot {} {:?}",
                r.status, r.body
            ));
        }
        if r.status != 200 {
            return Err(format!("unexpected {} {:?}", r.status, r.body));
        }
        let v: Value = serde_json::from_str(&r.body)
            .map_err(|e| format!("body is not JSON ({e}): {:?}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("status is not success: {v}"));
        }
        compare(&self.expected, &v["data"])
    }
}

/// Cases sharing one input data set and limits: one process.
struct Group {
    streams: Value,
    max_query_series: u64,
    cases: Vec<(usize, Case)>,
}

fn config_yaml(max_query_series: u64) -> String {
    format!(
        "limits_config:\n  reject_old_samples: false\n  creation_grace_period: 100000h\n  \
         max_entries_limit_per_query: 5000\n  max_query_series: {max_query_series}\n\
         querier:\n  query_ingesters_within: 0s\n  engine:\n    max_look_back_period: 30s\n"
    )
}

/// Starts a process for the group, pushes its data and runs its cases.
fn run_group(group: &Group) -> Vec<(usize, Result<(), String>)> {
    let p =
        SluiceProcess::start(SluiceOptions::new().extra_yaml(&config_yaml(group.max_query_series)));
    let body = match push_body(&group.streams) {
        Ok(body) => body,
        Err(e) => {
            return group
                .cases
                .iter()
                .map(|(i, _)| (*i, Err(format!("bad input streams: {e}"))))
                .collect();
        }
    };
    let r = p.push_json(&body, false, None);
    if r.status != 204 {
        let e = format!("push failed: {} {:?}", r.status, r.body);
        return group
            .cases
            .iter()
            .map(|(i, _)| (*i, Err(e.clone())))
            .collect();
    }
    group
        .cases
        .iter()
        .map(|(i, case)| (*i, case.run(&p)))
        .collect()
}

#[test]
fn conformance_over_http() {
    let started = Instant::now();
    let dir: PathBuf = workspace_root().join("crates/logql/tests/conformance");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("conformance dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in {}", dir.display());

    // Every case in file order, grouped by (input data, max_query_series).
    let mut cases_meta: Vec<(String, String)> = Vec::new(); // (name, query)
    let mut groups: Vec<Group> = Vec::new();
    let mut setup_failures: Vec<(usize, String)> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read case file");
        let doc: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let file_streams = doc.get("streams").cloned().unwrap_or_else(|| json!([]));
        let fname = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for case in doc["cases"].as_array().expect("cases array") {
            let index = cases_meta.len();
            let parsed = Case::from_json(case);
            cases_meta.push((
                format!("{fname}: {}", case["name"].as_str().unwrap_or("?")),
                case["query"].as_str().unwrap_or("?").to_string(),
            ));
            let parsed = match parsed {
                Ok(c) => c,
                Err(e) => {
                    setup_failures.push((index, format!("bad case: {e}")));
                    continue;
                }
            };
            let streams = case.get("streams").unwrap_or(&file_streams);
            let mqs = case
                .get("max_query_series")
                .and_then(Value::as_u64)
                .unwrap_or(500);
            match groups
                .iter_mut()
                .find(|g| &g.streams == streams && g.max_query_series == mqs)
            {
                Some(g) => g.cases.push((index, parsed)),
                None => groups.push(Group {
                    streams: streams.clone(),
                    max_query_series: mqs,
                    cases: vec![(index, parsed)],
                }),
            }
        }
    }

    // One process per group, the groups side by side.
    let mut outcomes: Vec<Option<Result<(), String>>> = vec![None; cases_meta.len()];
    for (i, e) in setup_failures {
        outcomes[i] = Some(Err(e));
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|g| scope.spawn(move || run_group(g)))
            .collect();
        for h in handles {
            for (i, outcome) in h.join().expect("group thread panicked") {
                outcomes[i] = Some(outcome);
            }
        }
    });

    let mut passed = 0;
    let mut failed = Vec::new();
    for ((name, query), outcome) in cases_meta.iter().zip(outcomes) {
        match outcome.unwrap_or_else(|| Err("case was not run".into())) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("{name} [{query}]\n  {}", e.replace('\n', "\n  "))),
        }
    }
    println!(
        "conformance-http: {passed} passed, {} failed ({} processes, {:.1}s)",
        failed.len(),
        groups.len(),
        started.elapsed().as_secs_f64()
    );
    for f in &failed {
        println!("FAIL {f}");
    }
    assert!(
        failed.is_empty(),
        "{} conformance case(s) failed over HTTP:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
