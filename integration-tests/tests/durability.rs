//! Durable storage: acknowledged pushes survive SIGKILL (WAL replay, with
//! and without a checkpoint), `/flush` and graceful shutdown put everything
//! into object storage, and a querier-only process (`-target=querier`) reads
//! it back identically.

use std::time::Duration;

use sluice_integration_tests::durable::*;
use sluice_integration_tests::*;
use sluice_loadgen::generator::{generate_service, Format};

/// A whole-second base timestamp ten minutes ago.
fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

/// Start a querier-only process reading the filesystem store at `store_dir`,
/// with a fresh index cache (a relative path: the process runs in its own
/// temp dir).
fn start_querier(store_dir: &std::path::Path) -> SluiceProcess {
    SluiceProcess::start(SluiceOptions::new().target("querier").extra_yaml(&format!(
        "storage_config:\n  filesystem:\n    directory: {}\n  index_shipper:\n    \
             cache_location: querier-index-cache\n",
        store_dir.display()
    )))
}

/// Test 1: thousands of acknowledged lines over several streams, SIGKILL,
/// restart on the same data dir and ports: each line exactly once, both
/// directions. Then more pushes, SIGKILL again, restart: still exactly once
/// (replayed data plus new appends).
#[test]
fn sigkill_after_acknowledged_pushes_loses_and_duplicates_nothing() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("kill9", 4, 1000, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 800, 20), &mut acked);
    assert_eq!(acked.values().map(Vec::len).sum::<usize>(), 3200);
    assert_exactly_once(&p, &ds.selector(), ds.range(), &acked, "before SIGKILL");

    kill9(&mut p);
    p.restart();
    let replayed = metric(&p, "loki_ingester_wal_records_replayed");
    assert!(
        replayed >= 40.0,
        "40 pushes were acknowledged; loki_ingester_wal_records_replayed = {replayed}"
    );
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after SIGKILL and restart",
    );

    // Append after replay, crash again.
    push_batches(&p, &ds.pushes(800, 1000, 25), &mut acked);
    assert_eq!(acked.values().map(Vec::len).sum::<usize>(), 4000);
    kill9(&mut p);
    p.restart();
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after a second SIGKILL and restart",
    );
    // Per stream too (a selector matching one stream only).
    for s in [0, 3] {
        let one: StreamSet = acked
            .iter()
            .filter(|(l, _)| **l == ds.labels(s))
            .map(|(l, e)| (l.clone(), e.clone()))
            .collect();
        assert_exactly_once(
            &p,
            &ds.stream_selector(s),
            ds.range(),
            &one,
            "single stream after restart",
        );
    }
}

/// Test 2: a checkpoint is written, more pushes land in segments after it,
/// SIGKILL, restart: checkpoint + segment replay gives each line exactly once.
#[test]
fn sigkill_after_checkpoint_replays_checkpoint_and_segments_exactly_once() {
    let mut p = SluiceProcess::start(
        SluiceOptions::new().extra_yaml("ingester:\n  wal:\n    checkpoint_duration: 1s\n"),
    );
    let ds = Dataset::new("ckpt", 3, 900, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 500, 50), &mut acked);
    let before = metric(&p, "loki_ingester_checkpoint_creations");
    wait_metric(
        &p,
        "loki_ingester_checkpoint_creations",
        Duration::from_secs(10),
        |v| v > before,
        "a checkpoint after the first pushes",
    );
    let wal_dir = p.data_dir().join("wal");
    let checkpoints: Vec<String> = std::fs::read_dir(&wal_dir)
        .expect("wal dir exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("checkpoint.") && !n.ends_with(".tmp"))
        .collect();
    assert!(
        !checkpoints.is_empty(),
        "a checkpoint file should exist in {}",
        wal_dir.display()
    );

    push_batches(&p, &ds.pushes(500, 900, 40), &mut acked);
    kill9(&mut p);
    p.restart();
    assert!(
        metric(&p, "loki_ingester_wal_records_replayed") > 0.0,
        "replay should report records"
    );
    assert_eq!(
        metric(&p, "loki_ingester_wal_replay_corruptions"),
        0.0,
        "a clean WAL must not report corruption"
    );
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after checkpoint, more pushes, SIGKILL and restart",
    );

    // A checkpoint taken after the replay, then another crash.
    let before = metric(&p, "loki_ingester_checkpoint_creations");
    wait_metric(
        &p,
        "loki_ingester_checkpoint_creations",
        Duration::from_secs(10),
        |v| v > before,
        "a checkpoint after restart",
    );
    kill9(&mut p);
    p.restart();
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "after a checkpoint of replayed data and a second SIGKILL",
    );
}

/// The response JSON without `data.stats` (timings differ between calls).
fn without_stats(mut v: Value) -> Value {
    if let Some(d) = v.get_mut("data").and_then(Value::as_object_mut) {
        d.remove("stats");
    }
    v
}

/// Everything the read API says about the data set: query_range in both
/// directions with a large and a small limit, with a line filter, labels,
/// label values and series.
fn read_api_snapshot(p: &SluiceProcess, ds: &Dataset) -> Vec<(String, u16, Value)> {
    let (start, end) = ds.range();
    let (s, e) = (start.to_string(), end.to_string());
    let sel = ds.selector();
    let filtered = format!(r#"{sel} |= "line 0001""#);
    let mut out = Vec::new();
    let mut record = |what: String, r: Resp| {
        let status = r.status;
        let v = if status == 200 {
            without_stats(r.json())
        } else {
            Value::String(r.body.clone())
        };
        out.push((what, status, v));
    };
    for dir in ["forward", "backward"] {
        for limit in ["5000", "137"] {
            for q in [&sel, &filtered, &ds.stream_selector(1)] {
                let r = p.query_range(
                    &[
                        ("query", q),
                        ("start", &s),
                        ("end", &e),
                        ("limit", limit),
                        ("direction", dir),
                    ],
                    None,
                );
                record(format!("query_range {q} {dir} limit={limit}"), r);
            }
        }
    }
    record(
        "labels".into(),
        p.labels(&[("start", &s), ("end", &e)], None),
    );
    for name in ["job", "stream"] {
        record(
            format!("label {name} values"),
            p.label_values(name, &[("start", &s), ("end", &e)], None),
        );
    }
    record(
        "series".into(),
        p.series(&[("match[]", &sel), ("start", &s), ("end", &e)], None),
    );
    record(
        "series one".into(),
        p.series(
            &[
                ("match[]", &ds.stream_selector(2)),
                ("start", &s),
                ("end", &e),
            ],
            None,
        ),
    );
    out
}

/// Test 3: POST /flush, wait for the chunks to be stored, SIGTERM, then a
/// querier-only process on the same store answers every read API exactly as
/// the all-in-one did.
#[test]
fn flushed_data_reads_identically_from_a_querier_only_process() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("flushq", 3, 700, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 700, 100), &mut acked);

    let stored_before = metric(&p, "loki_ingester_chunks_stored");
    let r = post(&p, "/flush");
    assert_eq!(r.status, 204, "POST /flush: {} {:?}", r.status, r.body);
    wait_metric(
        &p,
        "loki_ingester_chunks_stored",
        Duration::from_secs(20),
        |v| v >= stored_before + ds.streams as f64,
        "every stream's chunk stored after POST /flush",
    );
    let flushed = prom::find_all(&p.metrics_text(), "loki_ingester_chunks_flushed_total", &[]);
    assert!(
        !flushed.is_empty(),
        "loki_ingester_chunks_flushed_total should have a sample with a reason label"
    );
    let store_dir = p.data_dir().join("chunks");
    assert!(
        chunk_files(&store_dir, "fake").len() >= ds.streams,
        "at least one chunk object per stream under {}: {:?}",
        store_dir.display(),
        crate_list(&store_dir)
    );

    let before = read_api_snapshot(&p, &ds);
    // Sanity: the snapshot holds every line.
    assert_exactly_once(&p, &ds.selector(), ds.range(), &acked, "all-in-one");
    terminate_ok(&mut p);

    let q = start_querier(&store_dir);
    assert_exactly_once(&q, &ds.selector(), ds.range(), &acked, "querier-only");
    let after = read_api_snapshot(&q, &ds);
    let mut f = Failures::new();
    for ((what, st_b, v_b), (_, st_a, v_a)) in before.iter().zip(&after) {
        f.eq(
            &format!("{what}: querier-only vs all-in-one"),
            (st_a, v_a),
            (st_b, v_b),
        );
    }
    f.finish();
}

fn crate_list(dir: &std::path::Path) -> Vec<String> {
    sluice_integration_tests::s3::list_files(dir)
}

/// Test 4: no /flush; SIGTERM alone flushes (wal.flush_on_shutdown default
/// true): a querier-only process returns every line. Restarting the
/// all-in-one on the same data dir afterwards still returns each line once
/// (what was flushed is not replayed into memory a second time).
#[test]
fn graceful_shutdown_flushes_everything_to_the_store() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("termflush", 4, 600, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 600, 60), &mut acked);
    assert_eq!(
        metric(&p, "loki_ingester_chunks_stored"),
        0.0,
        "nothing should be flushed before shutdown (idle period 30m)"
    );
    terminate_ok(&mut p);
    let store_dir = p.data_dir().join("chunks");
    assert!(
        chunk_files(&store_dir, "fake").len() >= ds.streams,
        "chunk objects after SIGTERM under {}: {:?}",
        store_dir.display(),
        crate_list(&store_dir)
    );

    let q = start_querier(&store_dir);
    assert_exactly_once(
        &q,
        &ds.selector(),
        ds.range(),
        &acked,
        "querier-only after graceful shutdown",
    );
    drop(q);

    p.restart();
    assert_exactly_once(
        &p,
        &ds.selector(),
        ds.range(),
        &acked,
        "all-in-one restarted after a flushing shutdown",
    );
}

/// `POST /ingester/shutdown` flushes everything, answers 204 and the process
/// exits by itself (status 0); a querier-only process then reads every line.
#[test]
fn ingester_shutdown_endpoint_flushes_then_exits() {
    let mut p = SluiceProcess::start_default();
    let ds = Dataset::new("shutdownep", 2, 400, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 400, 100), &mut acked);
    let r = post(&p, "/ingester/shutdown");
    assert_eq!(
        r.status, 204,
        "POST /ingester/shutdown: {} {:?}",
        r.status, r.body
    );
    let status = p
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("sluice did not exit after POST /ingester/shutdown"));
    assert!(
        status.success(),
        "exit status after /ingester/shutdown: {status}"
    );
    let store_dir = p.data_dir().join("chunks");
    let q = start_querier(&store_dir);
    assert_exactly_once(
        &q,
        &ds.selector(),
        ds.range(),
        &acked,
        "querier-only after /ingester/shutdown",
    );
}

/// A querier-only process running next to the all-in-one sees chunks
/// flushed after it started: tables near "now" are re-listed at least every
/// 10 s, whatever `resync_interval` says.
#[test]
fn running_querier_sees_later_flushes_within_the_recent_resync() {
    let p = SluiceProcess::start_default();
    let store_dir = p.data_dir().join("chunks");
    let ds = Dataset::new("resync", 2, 400, base());
    let mut acked = StreamSet::new();
    push_batches(&p, &ds.pushes(0, 200, 100), &mut acked);
    assert_eq!(post(&p, "/flush").status, 204);
    wait_metric(
        &p,
        "loki_ingester_chunks_stored",
        Duration::from_secs(20),
        |v| v >= ds.streams as f64,
        "first flush",
    );
    // Index shipped too: wait for an index file.
    let index_dir = store_dir.join("index");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sluice_integration_tests::s3::list_files(&index_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no index file under {}",
            index_dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let q = start_querier(&store_dir);
    assert_exactly_once(
        &q,
        &ds.selector(),
        ds.range(),
        &acked,
        "querier, first flush",
    );

    push_batches(&p, &ds.pushes(200, 400, 100), &mut acked);
    let stored = metric(&p, "loki_ingester_chunks_stored");
    assert_eq!(post(&p, "/flush").status, 204);
    wait_metric(
        &p,
        "loki_ingester_chunks_stored",
        Duration::from_secs(20),
        |v| v >= stored + ds.streams as f64,
        "second flush",
    );
    // Bounded poll: the new chunks must show up within ~10 s (+ margin).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = query_dir(&q, &ds.selector(), ds.range(), "forward", MAX_LIMIT);
        match diff(&got, &acked) {
            None => break,
            Some(d) if std::time::Instant::now() >= deadline => {
                panic!("querier-only did not pick up the second flush within 15 s:\n  {d}")
            }
            Some(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    assert_exactly_once(
        &q,
        &ds.selector(),
        ds.range(),
        &acked,
        "querier, second flush",
    );
}

/// A limited log query over a long range reads the store in windows,
/// newest first going backward, and stops early: its answer must still be
/// exactly the `limit` newest (oldest) entries over all streams, with and
/// without a line filter, whatever the limit.
#[test]
fn limited_log_queries_over_hours_of_flushed_data_are_exact() {
    const STREAMS: usize = 4;
    const PER_STREAM: usize = 300;
    const STEP: i64 = 120 * SEC;
    let mut p = SluiceProcess::start_default();
    let first = (now_ns() / SEC - 11 * 3600) * SEC;
    let entry = |s: usize, i: usize| {
        let marker = if i % 37 == s { " needle" } else { "" };
        (
            first + i as i64 * STEP + s as i64 * 1_000,
            format!("windows s{s} line {i:04}{marker}"),
        )
    };
    let mut all: Vec<(Labels, (i64, String))> = Vec::new();
    for start in (0..PER_STREAM).step_by(50) {
        let streams: Vec<Stream> = (0..STREAMS)
            .map(|s| {
                let entries: Vec<_> = (start..start + 50).map(|i| entry(s, i)).collect();
                for e in &entries {
                    all.push((
                        labels(&[("job", "windows"), ("stream", &format!("s{s}"))]),
                        e.clone(),
                    ));
                }
                Stream::new(&format!(r#"{{job="windows", stream="s{s}"}}"#), entries)
            })
            .collect();
        let r = p.push_proto(&streams, None);
        assert_eq!(r.status, 204, "push: {} {}", r.status, r.body);
    }
    terminate_ok(&mut p);
    let q = start_querier(&p.data_dir().join("chunks"));
    let range = (first - SEC, now_ns());

    let mut f = Failures::new();
    for (query, needle_only) in [
        (r#"{job="windows"}"#, false),
        (r#"{job="windows"} |= "needle""#, true),
    ] {
        let mut matching: Vec<&(Labels, (i64, String))> = all
            .iter()
            .filter(|(_, (_, line))| !needle_only || line.contains("needle"))
            .collect();
        matching.sort_by_key(|(_, (ts, _))| *ts);
        for limit in [1, 7, 40, 150, 5000] {
            for direction in ["backward", "forward"] {
                let picked: Vec<_> = if direction == "backward" {
                    matching.iter().rev().take(limit).collect()
                } else {
                    matching.iter().take(limit).collect()
                };
                let mut expected = StreamSet::new();
                for (labels, e) in picked {
                    expected.entry(labels.clone()).or_default().push(e.clone());
                }
                for entries in expected.values_mut() {
                    entries.sort();
                }
                let mut got = query_dir(&q, query, range, direction, limit);
                for entries in got.values_mut() {
                    entries.sort();
                }
                f.eq(&format!("{query} limit {limit} {direction}"), got, expected);
            }
        }
    }
    f.finish();
}

/// JSON service lines for the parser tests: three streams `{job, stream="sN"}`
/// of 240 lines, 10 s apart and interleaved, starting three hours ago. A
/// line is level "error" when `(i + s) % 7 == 0`, else "info"; every 50th
/// is malformed after its level (the parser keeps `level="info"` and sets
/// `__error__`).
/// Runs `check` against the all-in-one `p` (ingester memory and the store),
/// then stops it and runs `check` against a querier-only process reading
/// its store; reports every failure of both at the end.
fn check_then_store_only(
    mut p: SluiceProcess,
    check: impl Fn(&mut Failures, &SluiceProcess, &str),
) {
    let mut f = Failures::new();
    check(&mut f, &p, "ingester and store");
    terminate_ok(&mut p);
    let q = start_querier(&p.data_dir().join("chunks"));
    check(&mut f, &q, "store only");
    f.finish();
}

struct JsonLines {
    job: &'static str,
    first: i64,
}

impl JsonLines {
    const STREAMS: usize = 3;
    const PER_STREAM: usize = 240;

    fn new(job: &'static str) -> JsonLines {
        JsonLines {
            job,
            first: (now_ns() / SEC - 3 * 3600) * SEC,
        }
    }

    fn malformed(i: usize) -> bool {
        i % 50 == 49
    }

    fn level(&self, s: usize, i: usize) -> &'static str {
        if (i + s) % 7 == 0 {
            "error"
        } else {
            "info"
        }
    }

    /// Every `(stream, line)` pair.
    fn all(&self) -> impl Iterator<Item = (usize, usize)> {
        (0..Self::STREAMS).flat_map(|s| (0..Self::PER_STREAM).map(move |i| (s, i)))
    }

    fn entry(&self, s: usize, i: usize) -> (i64, String) {
        let line = if Self::malformed(i) {
            format!(r#"{{"level":"info","n":{i} broken"#)
        } else {
            format!(
                r#"{{"level":"{}","n":{i},"msg":"request {i} of s{s}"}}"#,
                self.level(s, i)
            )
        };
        (self.first + (i * Self::STREAMS + s) as i64 * 10 * SEC, line)
    }

    fn push(&self, p: &SluiceProcess, lines: std::ops::Range<usize>) {
        let streams: Vec<Stream> = (0..Self::STREAMS)
            .map(|s| {
                Stream::new(
                    &format!(r#"{{job="{}", stream="s{s}"}}"#, self.job),
                    lines.clone().map(|i| self.entry(s, i)).collect::<Vec<_>>(),
                )
            })
            .collect();
        p.push_proto_ok(&streams, None);
    }

    /// The older half flushed to the store, the newer half in memory.
    fn push_half_flushed(&self, p: &SluiceProcess) {
        self.push(p, 0..Self::PER_STREAM / 2);
        let r = post(p, "/flush");
        assert_eq!(r.status, 204, "flush: {}", r.body);
        self.push(p, Self::PER_STREAM / 2..Self::PER_STREAM);
    }
}

/// A limited log query with a parser and a label filter is answered from
/// the ingesters and the store, which run the pipeline as a filter and
/// stop at the limit: the answer must be exactly the `limit` newest
/// (oldest) entries the whole pipeline keeps, formatted by it, whether
/// the data is in memory, flushed, or both.
#[test]
fn limited_log_queries_with_parsers_are_exact_in_memory_and_flushed() {
    let p = SluiceProcess::start_default();
    let data = JsonLines::new("pipe");
    let query = r#"{job="pipe"} | json | level="error" | line_format "n={{.n}} {{.msg}}" | keep job, stream, level"#;
    // What the whole pipeline returns, oldest first.
    let mut kept: Vec<(Labels, (i64, String))> = data
        .all()
        .filter(|&(s, i)| data.level(s, i) == "error" && !JsonLines::malformed(i))
        .map(|(s, i)| {
            let labels = labels(&[
                ("job", "pipe"),
                ("level", "error"),
                ("stream", &format!("s{s}")),
            ]);
            (
                labels,
                (data.entry(s, i).0, format!("n={i} request {i} of s{s}")),
            )
        })
        .collect();
    kept.sort_by_key(|(_, (ts, _))| *ts);
    data.push_half_flushed(&p);

    let range = (data.first - SEC, now_ns());
    let check = |f: &mut Failures, p: &SluiceProcess, what: &str| {
        for limit in [1, 5, 30, 5000] {
            for direction in ["backward", "forward"] {
                let picked: Vec<_> = if direction == "backward" {
                    kept.iter().rev().take(limit).collect()
                } else {
                    kept.iter().take(limit).collect()
                };
                let mut expected = StreamSet::new();
                for (labels, e) in picked {
                    expected.entry(labels.clone()).or_default().push(e.clone());
                }
                for entries in expected.values_mut() {
                    entries.sort();
                }
                let mut got = query_dir(p, query, range, direction, limit);
                for entries in got.values_mut() {
                    entries.sort();
                }
                f.eq(&format!("{what}: limit {limit} {direction}"), got, expected);
            }
        }
    };
    check_then_store_only(p, check);
}

/// Metric queries with parsers (whose samples the ingester extracts and
/// the querier extracts from the store) give exact values over data half
/// flushed and half in memory, then from a querier reading only the store.
#[test]
fn metric_queries_with_parsers_are_exact_in_memory_and_flushed() {
    use std::collections::BTreeMap;
    let p = SluiceProcess::start_default();
    let data = JsonLines::new("samp");
    data.push_half_flushed(&p);

    // What each query must return: label value of its grouping → value.
    let mut per_level: BTreeMap<String, usize> = BTreeMap::new();
    let mut sum_per_stream: BTreeMap<String, usize> = BTreeMap::new();
    let mut max_error_per_stream: BTreeMap<String, usize> = BTreeMap::new();
    for (s, i) in data.all().filter(|&(_, i)| !JsonLines::malformed(i)) {
        *per_level.entry(data.level(s, i).to_string()).or_default() += 1;
        *sum_per_stream.entry(format!("s{s}")).or_default() += i;
        if data.level(s, i) == "error" {
            let max = max_error_per_stream.entry(format!("s{s}")).or_default();
            *max = (*max).max(i);
        }
    }
    let text = |map: &BTreeMap<String, usize>| -> BTreeMap<String, String> {
        map.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    };
    let cases: Vec<(&str, &str, BTreeMap<String, String>)> = vec![
        (
            r#"sum by (level) (count_over_time({job="samp"} | json | __error__="" [4h]))"#,
            "level",
            text(&per_level),
        ),
        (
            r#"sum by (stream) (sum_over_time({job="samp"} | json | unwrap n | __error__="" [4h]))"#,
            "stream",
            text(&sum_per_stream),
        ),
        (
            r#"max_over_time({job="samp"} | json | level="error" | unwrap n [4h]) by (stream)"#,
            "stream",
            text(&max_error_per_stream),
        ),
        (
            r#"sum(count_over_time({job="samp"} | json [4h]))"#,
            "",
            [(
                String::new(),
                (JsonLines::STREAMS * JsonLines::PER_STREAM).to_string(),
            )]
            .into(),
        ),
    ];
    let time = now_ns().to_string();
    let check = |f: &mut Failures, p: &SluiceProcess, what: &str| {
        for (query, label, expected) in &cases {
            let json = p
                .query(&[("query", query), ("time", &time)], None)
                .ok_json();
            let got: BTreeMap<String, String> = json["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|one| {
                    (
                        one["metric"][label]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        one["value"][1].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            f.eq(&format!("{what}: {query}"), got, expected.clone());
        }
        // Samples carrying `__error__` fail the query, as entries do.
        let r = p.query(
            &[
                ("query", r#"count_over_time({job="samp"} | json [4h])"#),
                ("time", &time),
            ],
            None,
        );
        f.eq(
            &format!("{what}: pipeline error status"),
            (
                r.status,
                r.text().contains("pipeline error: 'JSONParserErr'"),
            ),
            (400, true),
        );
    };
    check_then_store_only(p, check);
}

/// Realistic service log lines (the load tool's generator), re-based to
/// start at `first`.
fn service_lines(format: Format, seed: u64, count: usize, first: i64) -> Vec<(i64, String)> {
    let lines = generate_service(format, count * 400, seed);
    let origin = lines[0].0;
    lines
        .into_iter()
        .take(count)
        .map(|(ts, line)| (ts - origin + first, line))
        .collect()
}

/// Polls `done` every 100 ms until it holds, failing after `limit`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The version byte of every chunk object in the store.
fn chunk_versions(store_dir: &std::path::Path) -> std::collections::BTreeSet<u8> {
    chunk_files(store_dir, "fake")
        .iter()
        .map(|path| std::fs::read(path).expect("chunk object")[4])
        .collect()
}

/// Line filters over the `formats` streams: version-3 blocks skip the
/// lines whose template and values cannot hold the word; what comes back
/// must still be exactly the lines that hold it.
fn check_line_filters(p: &SluiceProcess, acked: &StreamSet, range: (i64, i64), what: &str) {
    for (format, word) in [("text", "ERROR"), ("json", "error"), ("text", "needle")] {
        let query = format!(r#"{{job="formats", format="{format}"}} |= "{word}""#);
        let expected: StreamSet = acked
            .iter()
            .filter(|(stream, _)| stream.get("format").map(String::as_str) == Some(format))
            .map(|(stream, entries)| {
                let kept: Vec<(i64, String)> = entries
                    .iter()
                    .rev()
                    .filter(|(_, line)| line.contains(word))
                    .cloned()
                    .collect();
                (stream.clone(), kept)
            })
            .filter(|(_, kept)| !kept.is_empty())
            .collect();
        assert_eq!(expected.is_empty(), word == "needle", "{query}: test data");
        let got = query_dir(p, &query, range, "backward", MAX_LIMIT);
        if let Some(difference) = diff(&got, &expected) {
            panic!("{what}: {query}: {difference}");
        }
    }
}

/// Chunk format v3 end to end: an all-in-one started with
/// `chunk_format: v3` stores realistic JSON and text service logs in
/// version-3 chunks; one started in the default format adds version-2
/// chunks to the same store (one stream gets both); a querier-only process
/// then reads every line back exactly once and answers a metric query with
/// a parser (samples extracted from the chunks) with the right count.
#[test]
fn chunks_in_format_v3_read_back_exactly_beside_format_v2() {
    let first = (now_ns() / SEC - 3600) * SEC;
    let text = service_lines(Format::Text, 11, 1500, first);
    let json = service_lines(Format::Json, 7, 1500, first);
    let later = service_lines(Format::Text, 12, 1000, text.last().expect("lines").0 + SEC);
    let push = |p: &SluiceProcess, labels: &str, lines: &[(i64, String)], acked: &mut StreamSet| {
        let batches: Vec<Vec<Stream>> = lines
            .chunks(250)
            .map(|batch| vec![Stream::new(labels, batch.iter().cloned())])
            .collect();
        push_batches(p, &batches, acked);
    };
    let flush = |p: &SluiceProcess| {
        let r = post(p, "/flush");
        assert_eq!(r.status, 204, "POST /flush: {}", r.body);
    };
    let text_labels = r#"{job="formats", format="text"}"#;
    let json_labels = r#"{job="formats", format="json"}"#;
    let mut acked = StreamSet::new();

    // Small blocks: every chunk holds several version-3 blocks.
    let v3_yaml = "ingester:\n  chunk_format: v3\n  chunk_block_size: 16384\n";
    let mut v3 = SluiceProcess::start(SluiceOptions::new().extra_yaml(v3_yaml));
    push(&v3, text_labels, &text, &mut acked);
    push(&v3, json_labels, &json, &mut acked);
    flush(&v3);
    let store_dir = v3.data_dir().join("chunks");
    wait_for(
        Duration::from_secs(20),
        "both streams' chunks stored",
        || chunk_files(&store_dir, "fake").len() >= 2,
    );
    assert_eq!(chunk_versions(&store_dir), [3].into());
    let range = (first - SEC, now_ns());
    assert_exactly_once(&v3, r#"{job="formats"}"#, range, &acked, "v3 all-in-one");
    // The ingester still holds the flushed chunks (chunk_retain_period).
    check_line_filters(&v3, &acked, range, "v3 all-in-one");
    terminate_ok(&mut v3);

    let mut v2 = SluiceProcess::start(SluiceOptions::new().extra_yaml(&format!(
        "storage_config:\n  filesystem:\n    directory: {}\n",
        store_dir.display()
    )));
    push(&v2, text_labels, &later, &mut acked);
    flush(&v2);
    wait_for(Duration::from_secs(20), "version-2 chunks stored", || {
        chunk_versions(&store_dir).contains(&2)
    });
    assert_eq!(chunk_versions(&store_dir), [2, 3].into());
    terminate_ok(&mut v2);

    let q = start_querier(&store_dir);
    assert_exactly_once(
        &q,
        r#"{job="formats"}"#,
        range,
        &acked,
        "querier-only, v2 and v3",
    );
    check_line_filters(&q, &acked, range, "querier-only");
    let errors = json
        .iter()
        .filter(|(_, line)| line.contains(r#""level":"error""#))
        .count();
    assert!(errors > 0, "the generator writes some error lines");
    let query = format!(r#"sum(count_over_time({json_labels} | json | level="error" [2h]))"#);
    let r = q.query(&[("query", &query), ("time", &range.1.to_string())], None);
    let value = &r.ok_json()["data"]["result"][0]["value"][1];
    assert_eq!(
        value.as_str(),
        Some(errors.to_string().as_str()),
        "{query}: {}",
        r.body
    );
}
