//! The compactor through the real binary: delete requests over HTTP (lines
//! hidden at once, then removed from storage), compaction by a separate
//! `-target=compactor` process with identical query results throughout,
//! and two compactors on one store taking turns.

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_integration_tests::durable::*;
use sluice_integration_tests::*;

/// A whole-second base timestamp ten minutes ago.
fn base() -> i64 {
    (now_ns() / SEC - 600) * SEC
}

fn index_files(store_dir: &Path) -> Vec<String> {
    sluice_integration_tests::s3::list_files(&store_dir.join("index"))
        .into_iter()
        .filter(|name| name.ends_with(".idx"))
        .collect()
}

/// Polls `check` every 100 ms until it returns `Some`, at most `timeout`.
fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A querier-only process reading the store at `store_dir`.
fn start_querier(store_dir: &Path, extra: &str) -> SluiceProcess {
    SluiceProcess::start(SluiceOptions::new().target("querier").extra_yaml(&format!(
        "storage_config:\n  filesystem:\n    directory: {}\n  index_shipper:\n    \
             cache_location: querier-index-cache\n{extra}",
        store_dir.display()
    )))
}

fn flush_and_wait(p: &SluiceProcess, streams: usize) {
    let stored = metric(p, "loki_ingester_chunks_stored");
    let r = post(p, "/flush");
    assert_eq!(r.status, 204, "POST /flush: {} {:?}", r.status, r.body);
    wait_metric(
        p,
        "loki_ingester_chunks_stored",
        Duration::from_secs(20),
        |v| v >= stored + streams as f64,
        "chunks stored after POST /flush",
    );
}

#[test]
fn delete_request_hides_then_removes_exactly_the_matching_lines() {
    let p = SluiceProcess::start(SluiceOptions::new().extra_yaml(
        "compactor:\n  retention_enabled: true\n  compaction_interval: 1s\n  \
         delete_request_cancel_period: 0s\n  retention_delete_delay: 1s\n",
    ));
    let base = base();
    let streams = [
        r#"{job="app", pod="a"}"#,
        r#"{job="app", pod="b"}"#,
        r#"{job="other"}"#,
    ];
    let mut all = StreamSet::new();
    let mut pushes = Vec::new();
    for (index, stream) in streams.iter().enumerate() {
        let entries: Vec<(i64, String)> = (0..300)
            .map(|i| {
                let ts = base + i * SEC + index as i64 * 1000;
                let line = if i % 3 == 0 {
                    format!("user=ann token=secret-{i}")
                } else {
                    format!("user=ann action=read n={i}")
                };
                (ts, line)
            })
            .collect();
        all.insert(parse_label_text(stream), entries.clone());
        pushes.push(Stream::new(stream, entries));
    }
    p.push_proto_ok(&pushes, None);
    flush_and_wait(&p, streams.len());
    let range = (base - SEC, base + 400 * SEC);
    assert_exactly_once(
        &p,
        r#"{job=~".+"}"#,
        range,
        &all,
        "before the delete request",
    );

    // Delete the secret lines of job=app between +60s and +240s.
    let (from_s, to_s) = (base / SEC + 60, base / SEC + 240);
    let r = p.send(
        p.client()
            .post(format!("{}/loki/api/v1/delete", p.http_url()))
            .query(&[
                ("query", r#"{job="app"} |= "secret""#),
                ("start", &from_s.to_string()),
                ("end", &to_s.to_string()),
            ]),
    );
    assert_eq!((r.status, r.body.as_str()), (204, ""), "POST delete");
    let expected: StreamSet = all
        .iter()
        .map(|(labels, entries)| {
            let is_app = labels.get("job").map(String::as_str) == Some("app");
            let kept = entries
                .iter()
                .filter(|(ts, line)| {
                    !(is_app && line.contains("secret") && *ts >= from_s * SEC && *ts <= to_s * SEC)
                })
                .cloned()
                .collect();
            (labels.clone(), kept)
        })
        .collect();
    let removed =
        all.values().map(Vec::len).sum::<usize>() - expected.values().map(Vec::len).sum::<usize>();
    // Pod a's lines at +60 s … +240 s (61), pod b's 1 µs later: its +240 s
    // line is past the inclusive end (60).
    assert_eq!(removed, 61 + 60, "secret lines the request covers");
    // Hidden from queries at once.
    assert_exactly_once(
        &p,
        r#"{job=~".+"}"#,
        range,
        &expected,
        "right after the request",
    );
    // Metric queries with a parser count only the lines left visible.
    let visible = |job: &str| -> usize {
        expected
            .iter()
            .filter(|(labels, _)| labels.get("job").map(String::as_str) == Some(job))
            .map(|(_, entries)| entries.len())
            .sum()
    };
    let time = (base + 400 * SEC).to_string();
    let counted = p
        .query(
            &[
                (
                    "query",
                    r#"sum by (job) (count_over_time({job=~".+"} | logfmt [1h]))"#,
                ),
                ("time", time.as_str()),
            ],
            None,
        )
        .ok_json();
    for job in ["app", "other"] {
        let value = counted["data"]["result"]
            .as_array()
            .and_then(|series| {
                series
                    .iter()
                    .find(|one| one["metric"]["job"].as_str() == Some(job))
            })
            .and_then(|one| one["value"][1].as_str())
            .map(str::to_string);
        assert_eq!(
            value,
            Some(visible(job).to_string()),
            "{job}: lines counted through a parser right after the request: {counted}"
        );
    }

    // Listed, then processed by the compactor.
    let listed = p.get("/loki/api/v1/delete", &[], None).ok_json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["query"], r#"{job="app"} |= "secret""#);
    assert_eq!(listed[0]["start_time"], from_s);
    assert_eq!(listed[0]["end_time"], to_s);
    let id = listed[0]["request_id"]
        .as_str()
        .expect("request_id")
        .to_string();
    wait_for(Duration::from_secs(30), "delete request processed", || {
        let listed = p.get("/loki/api/v1/delete", &[], None).ok_json();
        (listed[0]["status"] == "processed").then_some(())
    });
    assert_eq!(metric(&p, "loki_compactor_delete_requests_processed"), 1.0);
    assert_eq!(metric(&p, "loki_compactor_deleted_lines"), removed as f64);
    let r = p.send(
        p.client()
            .delete(format!("{}/loki/api/v1/delete", p.http_url()))
            .query(&[("request_id", id.as_str())]),
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            "deletion of request which is in process or already processed is not allowed\n"
        )
    );
    assert_exactly_once(&p, r#"{job=~".+"}"#, range, &expected, "after processing");

    // Gone from storage: a querier that applies no delete filter (retention
    // and so deletes are off there) reads exactly the remaining lines.
    let store_dir = p.data_dir().join("chunks");
    let q = start_querier(&store_dir, "");
    assert_exactly_once(
        &q,
        r#"{job=~".+"}"#,
        range,
        &expected,
        "querier-only, from storage",
    );
}

#[test]
fn a_separate_compactor_merges_index_files_with_identical_query_results() {
    let p = SluiceProcess::start(
        SluiceOptions::new()
            .target("distributor,ingester,querier")
            .extra_yaml("storage_config:\n  index_shipper:\n    resync_interval: 1s\n"),
    );
    let store_dir = p.data_dir().join("chunks");
    let ds = Dataset::new("compact", 3, 600, base());
    let mut acked = StreamSet::new();
    for batch in 0..6 {
        push_batches(
            &p,
            &ds.pushes(batch * 100, (batch + 1) * 100, 50),
            &mut acked,
        );
        flush_and_wait(&p, ds.streams);
    }
    let files_before = wait_for(Duration::from_secs(10), "index files shipped", || {
        let files = index_files(&store_dir);
        (files.len() >= 6).then_some(files)
    });
    let queries = [
        ds.selector(),
        format!(r#"{} |= "line 0001""#, ds.selector()),
        ds.stream_selector(1),
    ];
    let snapshot = |process: &SluiceProcess| -> Vec<StreamSet> {
        let mut out = Vec::new();
        for query in &queries {
            for direction in ["forward", "backward"] {
                out.push(query_dir(process, query, ds.range(), direction, MAX_LIMIT));
            }
        }
        out
    };
    let before = snapshot(&p);
    assert_exactly_once(&p, &ds.selector(), ds.range(), &acked, "before compaction");

    let compactor = SluiceProcess::start(SluiceOptions::new().target("compactor").extra_yaml(
        &format!(
            "storage_config:\n  filesystem:\n    directory: {}\ncompactor:\n  compaction_interval: 1s\n",
            store_dir.display()
        ),
    ));
    // Query all along: every answer, during and after the swap, is the same.
    let compacted = wait_for(
        Duration::from_secs(30),
        "one compacted file per table",
        || {
            assert_eq!(snapshot(&p), before, "answers changed while compacting");
            let files = index_files(&store_dir);
            let tables: std::collections::BTreeSet<String> = files_before
                .iter()
                .map(|name| name.rsplit_once('/').expect("dir").0.to_string())
                .collect();
            let done = files.len() == tables.len()
                && files.iter().all(|name| name.contains("-compactor."));
            done.then_some(files)
        },
    );
    assert!(
        compacted.len() < files_before.len(),
        "{compacted:?} from {files_before:?}"
    );
    assert!(metric(&compactor, "loki_boltdb_shipper_compact_tables_operation") >= 1.0);
    assert_eq!(
        metric(&compactor, "loki_boltdb_shipper_compactor_running"),
        1.0
    );
    // The all-in-one re-lists within its 1s resync; keep checking a while.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(snapshot(&p), before, "answers changed after compacting");
        std::thread::sleep(Duration::from_millis(200));
    }
    let q = start_querier(&store_dir, "");
    assert_eq!(
        snapshot(&q),
        before,
        "a fresh querier on the compacted index"
    );
}

#[test]
fn two_compactors_on_one_store_take_turns() {
    let yaml = "compactor:\n  compaction_interval: 1s\n";
    let mut first = SluiceProcess::start(SluiceOptions::new().target("compactor").extra_yaml(yaml));
    let store_dir = first.data_dir().join("chunks");
    let second = SluiceProcess::start(SluiceOptions::new().target("compactor").extra_yaml(
        &format!(
            "{yaml}storage_config:\n  filesystem:\n    directory: {}\n",
            store_dir.display()
        ),
    ));
    let running = |p: &SluiceProcess| metric(p, "loki_boltdb_shipper_compactor_running");
    wait_for(
        Duration::from_secs(15),
        "one compactor holds the lease",
        || (running(&first) + running(&second) == 1.0).then_some(()),
    );
    // Several intervals later still exactly one works.
    std::thread::sleep(Duration::from_secs(3));
    let (holder_is_first, runs) = if running(&first) == 1.0 {
        (
            true,
            metric(&second, "loki_boltdb_shipper_compact_tables_operation"),
        )
    } else {
        (
            false,
            metric(&first, "loki_boltdb_shipper_compact_tables_operation"),
        )
    };
    assert_eq!(running(&first) + running(&second), 1.0);
    assert_eq!(runs, 0.0, "the standby never ran a compaction");
    // The holder stops (and gives the lease up); the other takes over.
    if holder_is_first {
        terminate_ok(&mut first);
        wait_metric(
            &second,
            "loki_boltdb_shipper_compactor_running",
            Duration::from_secs(15),
            |v| v == 1.0,
            "standby takes over",
        );
    } else {
        let mut second = second;
        terminate_ok(&mut second);
        wait_metric(
            &first,
            "loki_boltdb_shipper_compactor_running",
            Duration::from_secs(15),
            |v| v == 1.0,
            "standby takes over",
        );
    }
}
