//! Retention over 90 days of data for every row of the design notes'
//! retention table: after each compaction run exactly the expired chunks
//! are gone from queries (and, once `retention_delete_delay` has passed,
//! from object storage), and everything else is intact to the line.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_chunk::{ChunkRef, Labels};
use sluice_common::{LimitsConfig, RetentionOverride, StreamRetention};
use sluice_compactor::{Clock, CompactorConfig, ManualClock};
use support::*;

const TENANT: &str = "fake";

/// The design notes' table: `retention_overrides` for the tiers and the
/// agents service, `retention_stream` (Loki's form) for the other
/// services, 720h globally.
fn design_notes_limits() -> LimitsConfig {
    let hours = |h: u64| Duration::from_secs(h * 3600);
    LimitsConfig {
        retention_period: hours(720),
        retention_overrides: vec![
            RetentionOverride {
                selector: r#"{tier="debug"}"#.into(),
                retention: hours(72),
            },
            RetentionOverride {
                selector: r#"{tier="prod"}"#.into(),
                retention: hours(720),
            },
            RetentionOverride {
                selector: r#"{service="agents"}"#.into(),
                retention: hours(1440),
            },
        ],
        retention_stream: vec![
            StreamRetention {
                selector: r#"{service="sigmavault"}"#.into(),
                priority: 1,
                period: hours(60 * 24),
            },
            StreamRetention {
                selector: r#"{service="sigmalang"}"#.into(),
                priority: 1,
                period: hours(14 * 24),
            },
            StreamRetention {
                selector: r#"{service="ryot"}"#.into(),
                priority: 1,
                period: hours(30 * 24),
            },
        ],
        ..LimitsConfig::default()
    }
}

/// Streams and the period each must get.
fn streams() -> Vec<(Labels, i64)> {
    vec![
        (labels(r#"{service="app", tier="debug"}"#), 3 * DAY),
        (labels(r#"{service="api", tier="prod"}"#), 30 * DAY),
        (
            labels(r#"{service="agents", agent_name="planner"}"#),
            60 * DAY,
        ),
        (labels(r#"{service="agents", tier="debug"}"#), 3 * DAY),
        (
            labels(r#"{service="sigmavault", tier="security"}"#),
            60 * DAY,
        ),
        // A priority-1 service rule beats the priority-0 debug tier rule.
        (labels(r#"{service="sigmalang", tier="debug"}"#), 14 * DAY),
        (labels(r#"{service="ryot", tier="main"}"#), 30 * DAY),
        (labels(r#"{service="other"}"#), 30 * DAY),
    ]
}

/// 90 days of data before T0: one entry every 90 minutes per stream.
fn dataset() -> Dataset {
    let mut data = Dataset::new();
    for (index, (stream, _)) in streams().into_iter().enumerate() {
        let entries = (0..90 * 16)
            .map(|step| {
                let ts = T0 - 90 * DAY + step * 90 * 60 * SECOND + index as i64 * SECOND;
                (ts, format!("{stream} line {step}"))
            })
            .collect();
        data.insert(stream, entries);
    }
    data
}

#[tokio::test]
async fn design_notes_retention_table_over_90_days() {
    let test = TestStore::new();
    let data = dataset();
    // Chunks of 6 hours: some cross midnight, so they sit in two tables.
    let chunks = load(&test.store, TENANT, &data, 6 * HOUR, 3).await;
    let periods: BTreeMap<Labels, i64> = streams().into_iter().collect();
    let delay = Duration::from_secs(2 * 3600);
    let config = CompactorConfig {
        retention_enabled: true,
        retention_delete_delay: delay,
        ..CompactorConfig::default()
    };
    let clock = Arc::new(ManualClock::new(T0));
    let compactor = test.compactor(config, design_notes_limits(), Arc::clone(&clock));
    let all_keys: BTreeSet<String> = test.chunk_keys(TENANT).await;
    assert_eq!(all_keys.len(), chunks.len());

    // The model: when each chunk was first seen expired by a run.
    let mut marked_at: BTreeMap<String, i64> = BTreeMap::new();
    let key_of = |chunk: &ChunkRef| test.store.chunk_key(TENANT, chunk).to_path();
    let schedule = [
        0,
        2 * HOUR + SECOND,
        DAY,
        5 * DAY,
        10 * DAY + 3 * HOUR,
        20 * DAY,
        31 * DAY,
        45 * DAY,
        61 * DAY,
        91 * DAY,
        91 * DAY + 3 * HOUR,
    ];
    for offset in schedule {
        clock.set(T0 + offset);
        let now = clock.now_ns();
        let report = compactor.run_once().await.expect("compaction run");
        assert!(report.lease_held);
        assert_eq!(report.failures, 0, "{report:?}");

        let mut expected = Dataset::new();
        for (stream, chunk) in &chunks {
            let period = periods[stream];
            if now - chunk.through_ns > period {
                marked_at.entry(key_of(chunk)).or_insert(now);
            } else {
                let entries = data[stream]
                    .iter()
                    .filter(|(ts, _)| *ts >= chunk.from_ns && *ts <= chunk.through_ns)
                    .cloned();
                expected.entry(stream.clone()).or_default().extend(entries);
            }
        }
        for entries in expected.values_mut() {
            entries.sort();
        }
        let got = query(
            &test.index_cache(),
            TENANT,
            r#"{service=~".+"}"#,
            T0 - 100 * DAY,
            T0 + DAY,
        )
        .await;
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "streams at T0+{}h",
            offset / HOUR
        );
        for (stream, entries) in &expected {
            assert!(
                got[stream] == *entries,
                "stream {stream} at T0+{}h: {} entries, expected {}",
                offset / HOUR,
                got[stream].len(),
                entries.len()
            );
        }
        // Objects: every chunk not marked, plus those marked less than the
        // delay ago.
        let expected_keys: BTreeSet<String> = all_keys
            .iter()
            .filter(|key| {
                marked_at
                    .get(*key)
                    .is_none_or(|at| at + delay.as_nanos() as i64 > now)
            })
            .cloned()
            .collect();
        assert_eq!(
            test.chunk_keys(TENANT).await,
            expected_keys,
            "chunk objects at T0+{}h",
            offset / HOUR
        );
        assert_no_dangling_refs(&test, TENANT).await;
        // One file per table at most.
        for (table, files) in test.index_files().await {
            assert!(files.len() <= 1, "{table}: {files:?}");
        }
    }
    // By T0+91d everything has expired and been swept.
    assert!(test.chunk_keys(TENANT).await.is_empty());
    assert!(test.index_files().await.is_empty());
}
