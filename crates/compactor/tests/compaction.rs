//! Compaction: many ingester files per table become one, queries answer
//! the same before and after (no gap, no duplicate, even for a querier
//! whose cache holds the old files), only one compactor works at a time,
//! and a mark never deletes a chunk a live index file still refers to.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_chunk::{IndexFileKind, IndexFileName, IndexReader, IndexWriter};
use sluice_common::{LimitsConfig, RetentionOverride};
use sluice_compactor::{CompactorConfig, ManualClock};
use support::*;

const TENANT: &str = "tenant-a";

/// Three days of five streams; lines mention levels for line filters.
fn dataset() -> Dataset {
    let mut data = Dataset::new();
    for (index, stream) in [
        r#"{app="web", env="prod"}"#,
        r#"{app="web", env="dev"}"#,
        r#"{app="db", env="prod"}"#,
        r#"{app="queue", env="prod", zone="b"}"#,
        r#"{app="cron"}"#,
    ]
    .iter()
    .enumerate()
    {
        let entries = (0..3 * 96)
            .map(|step| {
                let ts = T0 - 3 * DAY + step * 15 * 60 * SECOND + index as i64 * 7 * SECOND;
                let level = ["info", "warn", "error"][(step % 3) as usize];
                (ts, format!("level={level} stream={index} step={step}"))
            })
            .collect();
        data.insert(labels(stream), entries);
    }
    data
}

const QUERIES: &[&str] = &[
    r#"{app=~".+"}"#,
    r#"{app="web"}"#,
    r#"{env="prod"} |= "error""#,
    r#"{app!="db", env=~"p.*"} != "info""#,
    r#"{zone="b"} |~ "step=1[0-9]+$""#,
    r#"{app="cron"} |= "warn""#,
];

async fn answers(index: &sluice_storage::IndexCache) -> Vec<Dataset> {
    let mut out = Vec::new();
    for selector in QUERIES {
        for (from, through) in [
            (T0 - 4 * DAY, T0 + DAY),
            (T0 - 2 * DAY - 5 * HOUR, T0 - DAY + 3 * HOUR),
            (T0 - DAY - 1, T0 - DAY + 1),
        ] {
            out.push(query(index, TENANT, selector, from, through).await);
        }
    }
    out
}

#[tokio::test]
async fn compacted_and_uncompacted_index_answer_identically() {
    let test = TestStore::new();
    load(&test.store, TENANT, &dataset(), 5 * HOUR, 4).await;
    let files_before = test.index_files().await;
    assert!(
        files_before.values().all(|files| files.len() >= 3),
        "{files_before:?}"
    );

    // A querier that has synced the uncompacted files and keeps them
    // until it next re-lists (an hour here), and one that re-lists always.
    let stale = sluice_storage::IndexCache::new(
        Arc::clone(&test.store),
        test.root().join("stale-cache"),
        Duration::from_secs(3600),
    );
    let before = answers(&test.index_cache()).await;
    assert_same(
        &answers(&stale).await,
        &before,
        "stale querier before compaction",
    );
    let expected_lines: usize = dataset().values().map(Vec::len).sum();
    assert_eq!(
        before[0].values().map(Vec::len).sum::<usize>(),
        expected_lines
    );

    let clock = Arc::new(ManualClock::new(T0));
    let compactor = test.compactor(
        CompactorConfig::default(),
        LimitsConfig::default(),
        Arc::clone(&clock),
    );
    let report = compactor.run_once().await.unwrap();
    assert_eq!(report.failures, 0);
    assert_eq!(report.tables_compacted, files_before.len());
    assert_eq!(report.chunks_marked, 0, "compaction alone removes no chunk");

    let files_after = test.index_files().await;
    assert_eq!(
        files_after.keys().collect::<Vec<_>>(),
        files_before.keys().collect::<Vec<_>>()
    );
    for (table, files) in &files_after {
        assert_eq!(files.len(), 1, "{table}: {files:?}");
        let name = IndexFileName::parse(&files[0]).unwrap();
        assert!(name.is_compacted(), "{table}: {files:?}");
    }
    assert_same(
        &answers(&test.index_cache()).await,
        &before,
        "after compaction",
    );
    assert_same(
        &answers(&stale).await,
        &before,
        "a querier with cached originals",
    );

    // Nothing left to do: a second run rewrites nothing.
    let again = compactor.run_once().await.unwrap();
    assert_eq!(again.tables_compacted, 0);
    assert_eq!(test.index_files().await, files_after);

    // New ingester uploads are merged into the compacted file next run.
    let extra = labels(r#"{app="late"}"#);
    let mut late = Dataset::new();
    late.insert(extra.clone(), vec![(T0 - DAY + 5, "late line".to_string())]);
    load(&test.store, TENANT, &late, 5 * HOUR, 1).await;
    clock.advance(Duration::from_secs(600));
    let report = compactor.run_once().await.unwrap();
    assert_eq!(report.tables_compacted, 1);
    assert!(test
        .index_files()
        .await
        .values()
        .all(|files| files.len() == 1));
    let found = query(
        &test.index_cache(),
        TENANT,
        r#"{app="late"}"#,
        T0 - 2 * DAY,
        T0,
    )
    .await;
    assert_eq!(found[&extra], vec![(T0 - DAY + 5, "late line".to_string())]);
    let mut after = answers(&test.index_cache()).await;
    for answer in &mut after {
        answer.remove(&extra);
    }
    assert_same(&after, &before, "after merging a late upload");
}

#[tokio::test]
async fn only_one_compactor_works_and_another_takes_over() {
    let test = TestStore::new();
    load(&test.store, TENANT, &dataset(), 5 * HOUR, 3).await;
    let clock = Arc::new(ManualClock::new(T0));
    let first = test.compactor(
        CompactorConfig::default(),
        LimitsConfig::default(),
        Arc::clone(&clock),
    );
    let second = test.compactor(
        CompactorConfig::default(),
        LimitsConfig::default(),
        Arc::clone(&clock),
    );
    let (a, b) = tokio::join!(first.run_once(), second.run_once());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.lease_held ^ b.lease_held,
        "exactly one works: {a:?} {b:?}"
    );
    let (holder, standby) = if a.lease_held {
        (first, second)
    } else {
        (second, first)
    };
    clock.advance(Duration::from_secs(30));
    assert!(!standby.run_once().await.unwrap().lease_held);
    assert!(holder.run_once().await.unwrap().lease_held);
    // The holder dies without giving the lease up: after it expires the
    // standby takes over.
    drop(holder);
    clock.advance(Duration::from_secs(30));
    assert!(!standby.run_once().await.unwrap().lease_held);
    clock.advance(Duration::from_secs(31));
    assert!(standby.run_once().await.unwrap().lease_held);
}

#[tokio::test]
async fn a_mark_never_deletes_a_chunk_the_index_still_refers_to() {
    let test = TestStore::new();
    load(&test.store, TENANT, &dataset(), 5 * HOUR, 3).await;
    let limits = LimitsConfig {
        retention_overrides: vec![RetentionOverride {
            selector: r#"{env="dev"}"#.into(),
            retention: Duration::from_secs(24 * 3600),
        }],
        ..LimitsConfig::default()
    };
    let retention = CompactorConfig {
        retention_enabled: true,
        ..CompactorConfig::default()
    };
    // Where does a run write its first marks? Ask a twin store.
    let probe = TestStore::new();
    load(&probe.store, TENANT, &dataset(), 5 * HOUR, 3).await;
    let clock = Arc::new(ManualClock::new(T0));
    let loaded = probe.faulty.mutations() as usize;
    let report = probe
        .compactor(retention.clone(), limits.clone(), Arc::clone(&clock))
        .run_once()
        .await
        .unwrap();
    assert!(report.chunks_marked > 0);
    let first_mark = probe
        .faulty
        .mutation_log()
        .iter()
        .position(|key| key.contains("/markers/"))
        .expect("a marker was written")
        - loaded;

    // Crash right after those marks, before the files they replace go.
    test.faulty.crash_after(first_mark as u64 + 1);
    let crashed = test.compactor(retention, limits, Arc::clone(&clock));
    if let Ok(report) = crashed.run_once().await {
        assert!(report.failures > 0, "{report:?}");
    }
    drop(crashed);
    test.faulty.recover();
    assert_eq!(test.keys("index/compactor/markers/").await.len(), 1);
    assert_no_dangling_refs(&test, TENANT).await;

    // Retention is switched off; past the delay, a run merges the old files
    // back (the chunks return to the index) and sweeps the due marks.
    clock.advance(Duration::from_secs(3 * 3600));
    let plain = test.compactor(
        CompactorConfig::default(),
        LimitsConfig::default(),
        Arc::clone(&clock),
    );
    let report = plain.run_once().await.unwrap();
    assert_eq!(report.chunks_swept, 0, "{report:?}");
    assert!(test.keys("index/compactor/markers/").await.is_empty());
    assert_no_dangling_refs(&test, TENANT).await;
    let all = query(
        &test.index_cache(),
        TENANT,
        r#"{app=~".+"}"#,
        T0 - 4 * DAY,
        T0 + DAY,
    )
    .await;
    assert_same(&[all], &[dataset()], "after the stale marks were swept");
}

#[tokio::test]
async fn a_querier_syncing_while_files_are_replaced_sees_no_gap() {
    let test = TestStore::new();
    load(&test.store, TENANT, &dataset(), 5 * HOUR, 3).await;
    let table = test.store.table_for(T0 - DAY);
    let files = test.store.list_index(table, TENANT).await.unwrap();
    assert_eq!(files.len(), 3);
    // The compacted file a compactor would write for that table.
    let mut merged = IndexWriter::new(TENANT, table.number);
    for (key, _) in &files {
        let bytes = test.store.get_index(table, key).await.unwrap();
        merged.merge_from(&IndexReader::open_slice(&bytes).unwrap());
    }
    let (from_ns, through_ns) = merged.time_range().unwrap();
    let bytes = merged.finish();
    let name = IndexFileName {
        writer: "compactor".into(),
        upload_ns: T0,
        kind: IndexFileKind::Compacted {
            from_ns,
            through_ns,
            checksum: crc32fast::hash(&bytes),
        },
    };
    let compacted_key = format!(
        "{}{}",
        test.store.index_dir(table, TENANT),
        name.to_file_name()
    );
    // The querier lists three files; as it downloads the second, the
    // compacted file appears and the three vanish.
    test.faulty.replace_on_get(
        &files[1].0,
        vec![(compacted_key, Bytes::from(bytes))],
        files.iter().map(|(key, _)| key.clone()).collect(),
    );
    let index = test.index_cache();
    let (from, through) = (T0 - DAY, T0);
    let got = query(&index, TENANT, r#"{app=~".+"}"#, from, through).await;
    let mut expected = Dataset::new();
    for (stream, entries) in dataset() {
        let kept: Vec<_> = entries
            .into_iter()
            .filter(|(ts, _)| *ts >= from && *ts < through)
            .collect();
        if !kept.is_empty() {
            expected.insert(stream, kept);
        }
    }
    assert_same(&[got], &[expected], "a sync racing with a compaction");
    assert_eq!(test.store.list_index(table, TENANT).await.unwrap().len(), 1);
}
