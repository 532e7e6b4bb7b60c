//! Crash safety: a compactor killed before any write or delete of a run,
//! then restarted, ends in exactly the state of an uninterrupted run; and
//! at every crash point no index entry refers to a deleted chunk and no
//! line that must survive is missing.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_chunk::ChunkRef;
use sluice_common::{LimitsConfig, RetentionOverride};
use sluice_compactor::{CompactorConfig, DeleteRequestStatus, ManualClock};
use support::*;

const TENANT: &str = "fake";
const RUN_A: i64 = T0 + HOUR;
const RUN_B: i64 = T0 + 5 * HOUR;
/// Longer than the lease, so a restarted compactor can take it over.
const RESTART_GAP: Duration = Duration::from_secs(61);

fn limits() -> LimitsConfig {
    LimitsConfig {
        retention_overrides: vec![RetentionOverride {
            selector: r#"{tier="debug"}"#.into(),
            retention: Duration::from_secs(72 * 3600),
        }],
        ..LimitsConfig::default()
    }
}

fn config() -> CompactorConfig {
    CompactorConfig {
        retention_enabled: true,
        retention_delete_delay: Duration::from_secs(2 * 3600),
        delete_request_cancel_period: Duration::ZERO,
        ..CompactorConfig::default()
    }
}

/// Four days of four streams, a line every 30 minutes.
fn dataset() -> Dataset {
    let mut data = Dataset::new();
    let streams = [
        r#"{app="web", tier="prod"}"#,
        r#"{app="web", tier="debug"}"#,
        r#"{app="batch", tier="prod"}"#,
        r#"{app="db", tier="prod"}"#,
    ];
    for (index, stream) in streams.iter().enumerate() {
        let entries = (0..4 * 48)
            .map(|step| {
                let ts = T0 - 4 * DAY + step * 30 * 60 * SECOND + index as i64 * SECOND;
                let word = if step % 7 == 0 { "password" } else { "ok" };
                (ts, format!("{stream} {word} {step}"))
            })
            .collect();
        data.insert(labels(stream), entries);
    }
    data
}

/// A store loaded with the data set and two due delete requests.
async fn prepared() -> TestStore {
    let test = TestStore::new();
    load(&test.store, TENANT, &dataset(), 6 * HOUR, 2).await;
    let requests = sluice_compactor::DeleteRequestStore::new(test.backend.clone());
    let ms = |ns: i64| ns / 1_000_000;
    requests
        .add(
            TENANT,
            r#"{app="web"} |= "password""#,
            ms(T0 - 3 * DAY - 12 * HOUR),
            ms(T0 - DAY),
            ms(T0),
        )
        .await
        .unwrap();
    requests
        .add(
            TENANT,
            r#"{app="batch"}"#,
            ms(T0 - 3 * DAY - 2 * HOUR),
            ms(T0 - DAY - 12 * HOUR),
            ms(T0),
        )
        .await
        .unwrap();
    test
}

/// A table's file count and the chunk refs its files hold.
type TableState = (usize, BTreeSet<(u64, i64, i64, u32)>);

/// What a finished store looks like: live lines, chunk objects, the chunk
/// refs of each table's files (names carry upload times, so not compared),
/// and the requests' states.
#[derive(Debug, PartialEq, Eq)]
struct EndState {
    lines: Dataset,
    chunk_objects: BTreeSet<String>,
    index: BTreeMap<String, TableState>,
    requests: Vec<(String, DeleteRequestStatus)>,
}

async fn end_state(test: &TestStore) -> EndState {
    let mut index = BTreeMap::new();
    for table in test.store.list_tables().await.unwrap() {
        let files = test.store.list_index(table, TENANT).await.unwrap();
        let mut refs = BTreeSet::new();
        for (key, _) in &files {
            let bytes = test.store.get_index(table, key).await.unwrap();
            let reader = sluice_chunk::IndexReader::open_slice(&bytes).unwrap();
            for id in reader.series_ids() {
                refs.extend(reader.series(id).1.iter().map(|chunk: &ChunkRef| {
                    (
                        chunk.fingerprint,
                        chunk.from_ns,
                        chunk.through_ns,
                        chunk.checksum,
                    )
                }));
            }
        }
        index.insert(test.store.table_name(table), (files.len(), refs));
    }
    let mut requests: Vec<(String, DeleteRequestStatus)> =
        sluice_compactor::DeleteRequestStore::new(test.backend.clone())
            .list(TENANT)
            .await
            .unwrap()
            .into_iter()
            .map(|request| (request.query, request.status))
            .collect();
    requests.sort_by(|a, b| a.0.cmp(&b.0));
    EndState {
        lines: all_lines(test).await,
        chunk_objects: test.chunk_keys(TENANT).await,
        index,
        requests,
    }
}

async fn all_lines(test: &TestStore) -> Dataset {
    query(
        &test.index_cache(),
        TENANT,
        r#"{app=~".+"}"#,
        T0 - 5 * DAY,
        T0 + DAY,
    )
    .await
}

/// Checks what a crash may leave: no index entry without its chunk, every
/// line of the finished state still readable, no line that never existed.
async fn assert_crash_invariants(
    test: &TestStore,
    finished: &EndState,
    original: &Dataset,
    at: &str,
) {
    assert_no_dangling_refs(test, TENANT).await;
    let lines = all_lines(test).await;
    for (stream, entries) in &finished.lines {
        let got: BTreeSet<&(i64, String)> = lines
            .get(stream)
            .map(|e| e.iter().collect())
            .unwrap_or_default();
        for entry in entries {
            assert!(got.contains(entry), "{at}: {stream} lost {entry:?}");
        }
    }
    for (stream, entries) in &lines {
        let known: BTreeSet<&(i64, String)> = original[stream].iter().collect();
        assert!(
            entries.iter().all(|entry| known.contains(entry)),
            "{at}: {stream} has an unknown line"
        );
    }
}

/// Counts the writes and deletes each run makes, and the finished state.
async fn reference() -> (u64, u64, EndState) {
    let test = prepared().await;
    let clock = Arc::new(ManualClock::new(RUN_A));
    let compactor = test.compactor(config(), limits(), Arc::clone(&clock));
    let before = test.faulty.mutations();
    let report = compactor.run_once().await.unwrap();
    assert_eq!(report.failures, 0);
    assert_eq!(report.delete_requests_processed, 2, "{report:?}");
    assert!(
        report.chunks_rewritten > 0 && report.chunks_expired > 0,
        "{report:?}"
    );
    let run_a = test.faulty.mutations() - before;
    clock.set(RUN_B);
    let before = test.faulty.mutations();
    let report = compactor.run_once().await.unwrap();
    assert!(report.chunks_swept > 0, "{report:?}");
    let run_b = test.faulty.mutations() - before;
    (run_a, run_b, end_state(&test).await)
}

#[tokio::test]
async fn a_crash_before_any_write_of_a_run_ends_in_the_same_state() {
    let original = dataset();
    let (run_a, run_b, finished) = reference().await;
    // The deleted lines are gone and nothing else.
    let removed: usize = original.values().map(Vec::len).sum::<usize>()
        - finished.lines.values().map(Vec::len).sum::<usize>();
    assert!(removed > 0);
    for (stream, entries) in &finished.lines {
        let text = stream.to_string();
        for (ts, line) in entries {
            assert!(
                !(text.contains("web")
                    && line.contains("password")
                    && *ts >= T0 - 3 * DAY - 12 * HOUR
                    && *ts <= T0 - DAY),
                "{stream} kept a deleted line {line}"
            );
        }
    }

    // Crashes during the first run (compaction, retention, deletes).
    for crash_at in 0..run_a {
        let test = prepared().await;
        let clock = Arc::new(ManualClock::new(RUN_A));
        test.faulty.crash_after(crash_at);
        let crashed = test.compactor(config(), limits(), Arc::clone(&clock));
        let _ = crashed.run_once().await;
        drop(crashed);
        let at = format!("crash before write {crash_at} of run A");
        assert_crash_invariants(&test, &finished, &original, &at).await;
        test.faulty.recover();
        clock.advance(RESTART_GAP);
        let restarted = test.compactor(config(), limits(), Arc::clone(&clock));
        let report = restarted.run_once().await.unwrap();
        assert!(
            report.lease_held && report.failures == 0,
            "{at}: {report:?}"
        );
        clock.set(RUN_B);
        restarted.run_once().await.unwrap();
        assert_eq!(end_state(&test).await, finished, "{at}");
    }

    // Crashes during the second run (the sweep).
    for crash_at in 0..run_b {
        let test = prepared().await;
        let clock = Arc::new(ManualClock::new(RUN_A));
        let first = test.compactor(config(), limits(), Arc::clone(&clock));
        first.run_once().await.unwrap();
        clock.set(RUN_B);
        test.faulty.crash_after(crash_at);
        let _ = first.run_once().await;
        drop(first);
        let at = format!("crash before write {crash_at} of run B");
        assert_crash_invariants(&test, &finished, &original, &at).await;
        test.faulty.recover();
        clock.advance(RESTART_GAP);
        let restarted = test.compactor(config(), limits(), Arc::clone(&clock));
        let report = restarted.run_once().await.unwrap();
        assert!(
            report.lease_held && report.failures == 0,
            "{at}: {report:?}"
        );
        assert_eq!(end_state(&test).await, finished, "{at}");
    }
}
