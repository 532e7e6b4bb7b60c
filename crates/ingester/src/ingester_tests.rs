//! Tests of the ingester core against a real WAL directory and an
//! in-memory object store.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use sluice_chunk::{Direction, LabelMatcher};
use sluice_common::TenantId;
use sluice_proto::logproto::{
    EntryAdapter, PushRequest, QueryRequest, SampleQueryRequest, StreamAdapter,
};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos};
use sluice_storage::{select_series, ChunkStore, IndexCache, ObjectStorage, SchemaConfig};

use crate::config::{FsyncMode, IngesterConfig};
use crate::ingester::{Ingester, IngesterDeps};

fn config() -> IngesterConfig {
    let mut config = IngesterConfig::default();
    config.wal.fsync = FsyncMode::Never;
    // Tests look at memory right after a flush.
    config.chunk_retain_period = std::time::Duration::ZERO;
    config
}

fn memory_store() -> Arc<ChunkStore> {
    let backend = ObjectStorage::new(Arc::new(object_store::memory::InMemory::new()), "memory");
    Arc::new(ChunkStore::with_backend(&SchemaConfig::default(), backend).expect("default schema"))
}

async fn open(dir: &std::path::Path, store: Option<Arc<ChunkStore>>) -> Arc<Ingester> {
    open_with(config(), dir, store).await
}

async fn open_with(
    config: IngesterConfig,
    dir: &std::path::Path,
    store: Option<Arc<ChunkStore>>,
) -> Arc<Ingester> {
    let deps = IngesterDeps {
        store,
        wal_dir: dir.join("wal"),
        writer_id: "test".to_string(),
        limits: crate::limits::IngesterLimits::default(),
    };
    Ingester::open(config, deps, &mut Registry::default())
        .await
        .expect("ingester opens")
}

/// Reads every entry of a stream from the store through the index cache.
async fn read_store(
    store: &Arc<ChunkStore>,
    dir: &std::path::Path,
    job: &str,
) -> Vec<(i64, String)> {
    let cache = IndexCache::new(
        Arc::clone(store),
        dir.join("cache"),
        std::time::Duration::ZERO,
    );
    let readers = cache.readers("fake", 0, i64::MAX).await.unwrap();
    let accept = |value: &str| value == job;
    let mut entries = Vec::new();
    for series in select_series(&readers, &[LabelMatcher::new("job", &accept)], 0, i64::MAX) {
        for chunk_ref in &series.chunks {
            let chunk = store.get_chunk("fake", chunk_ref).await.unwrap();
            entries.extend(
                chunk
                    .iter(0, i64::MAX, Direction::Forward)
                    .unwrap()
                    .collect_all(),
            );
        }
    }
    entries.sort();
    entries
}

fn push(stream: &str, first: i64, count: i64) -> PushRequest {
    PushRequest {
        streams: vec![StreamAdapter {
            labels: stream.to_string(),
            entries: (first..first + count)
                .map(|i| EntryAdapter {
                    timestamp: Some(timestamp_from_nanos(1_000_000_000 + i)),
                    line: format!("line {i}"),
                    structured_metadata: Vec::new(),
                })
                .collect(),
            hash: 0,
        }],
    }
}

/// A query for everything `selector` matches, in `shards`.
fn query_all(selector: &str, shards: Vec<String>) -> QueryRequest {
    QueryRequest {
        selector: selector.to_string(),
        limit: 0,
        start: Some(timestamp_from_nanos(0)),
        end: Some(timestamp_from_nanos(i64::MAX)),
        direction: 0,
        shards,
        line_digests: false,
        pipeline_filter: false,
    }
}

fn read_all(ingester: &Ingester, selector: &str) -> Vec<(i64, String)> {
    let mut entries = Vec::new();
    let request = query_all(selector, Vec::new());
    ingester
        .query(&TenantId::fake(), &request, |batch| {
            for stream in batch.streams {
                entries.extend(
                    stream
                        .entries
                        .into_iter()
                        .map(|entry| (timestamp_to_nanos(entry.timestamp.as_ref()), entry.line)),
                );
            }
            true
        })
        .expect("query runs");
    entries.sort();
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_push_survives_a_crash_exactly_once_across_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    {
        let ingester = open(dir.path(), None).await;
        ingester.push(&tenant, &push("{job=\"a\"}", 0, 50)).unwrap();
        ingester.push(&tenant, &push("{job=\"b\"}", 0, 10)).unwrap();
        ingester.checkpoint().await.unwrap();
        // After the checkpoint: more for an existing stream and a new one.
        ingester
            .push(&tenant, &push("{job=\"a\"}", 50, 25))
            .unwrap();
        ingester.push(&tenant, &push("{job=\"c\"}", 0, 5)).unwrap();
        // Dropped without stop(): as after kill -9.
    }
    let ingester = open(dir.path(), None).await;
    let a = read_all(&ingester, "{job=\"a\"}");
    assert_eq!(
        a.len(),
        75,
        "checkpoint + segment replay, no loss, no duplicate"
    );
    assert_eq!(a.first().map(|entry| entry.1.as_str()), Some("line 0"));
    assert_eq!(a.last().map(|entry| entry.1.as_str()), Some("line 74"));
    assert_eq!(read_all(&ingester, "{job=\"b\"}").len(), 10);
    assert_eq!(read_all(&ingester, "{job=\"c\"}").len(), 5);
    // The sequence continues after replay: a new push is applied, and a
    // second restart still sees everything once.
    ingester.push(&tenant, &push("{job=\"a\"}", 75, 5)).unwrap();
    drop(ingester);
    let ingester = open(dir.path(), None).await;
    assert_eq!(read_all(&ingester, "{job=\"a\"}").len(), 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_chunks_are_indexed_in_the_store_and_leave_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory_store();
    let ingester = open(dir.path(), Some(Arc::clone(&store))).await;
    let tenant = TenantId::fake();
    ingester
        .push(&tenant, &push("{job=\"a\"}", 0, 100))
        .unwrap();
    let outcome = ingester.sweep(true).await;
    assert_eq!(
        (outcome.uploaded, outcome.failed, outcome.index_files),
        (1, 0, 1)
    );
    assert!(
        read_all(&ingester, "{job=\"a\"}").is_empty(),
        "retain period 0: the flushed chunk left memory"
    );

    let cache = IndexCache::new(
        Arc::clone(&store),
        dir.path().join("cache"),
        std::time::Duration::from_secs(60),
    );
    let readers = cache.readers("fake", 0, i64::MAX).await.unwrap();
    let accept = |value: &str| value == "a";
    let series = select_series(&readers, &[LabelMatcher::new("job", &accept)], 0, i64::MAX);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].chunks.len(), 1);
    let chunk = store.get_chunk("fake", &series[0].chunks[0]).await.unwrap();
    let entries = chunk
        .iter(0, i64::MAX, Direction::Forward)
        .unwrap()
        .collect_all();
    assert_eq!(entries.len(), 100);
    assert_eq!(entries[99].1, "line 99");

    // A crash now must not resurrect flushed data from the WAL twice: the
    // stop() checkpoint holds no flushed chunks, so replay leaves memory
    // empty while the store keeps everything.
    ingester.stop().await;
    drop(ingester);
    let reopened = open(dir.path(), Some(store)).await;
    let replayed = read_all(&reopened, "{job=\"a\"}");
    assert!(
        replayed.is_empty(),
        "got {} replayed entries",
        replayed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_past_the_memory_ceiling_flushes_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = memory_store();
    let tenant = TenantId::fake();
    {
        let ingester = open(dir.path(), Some(Arc::clone(&store))).await;
        for batch in 0..10 {
            ingester
                .push(&tenant, &push("{job=\"a\"}", batch * 20, 20))
                .unwrap();
        }
        // Crash: nothing flushed yet.
    }
    assert!(read_store(&store, dir.path(), "a").await.is_empty());
    let mut tight = config();
    tight.wal.replay_memory_ceiling = 100;
    let ingester = open_with(tight, dir.path(), Some(Arc::clone(&store))).await;
    let stored = read_store(&store, dir.path(), "a").await;
    assert!(!stored.is_empty(), "replay flushed once past the ceiling");
    let mut all: Vec<(i64, String)> = stored;
    all.extend(read_all(&ingester, "{job=\"a\"}"));
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        200,
        "every acknowledged entry is in the store or in memory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_are_refused_once_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let ingester = open(dir.path(), None).await;
    ingester.stop().await;
    let err = ingester
        .push(&TenantId::fake(), &push("{job=\"a\"}", 0, 1))
        .unwrap_err();
    assert!(err.to_string().contains("shutting down"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_receives_pushes_to_the_streams_it_selects_until_its_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    let ingester = open(dir.path(), None).await;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(crate::tail::TAIL_BUFFER);
    ingester
        .tail(&tenant, "{job=\"a\"} |= \"line 1\"", sender)
        .unwrap();
    assert_eq!(ingester.tailers_count(&tenant), 1);
    assert_eq!(ingester.tailers_count(&TenantId::new("other").unwrap()), 0);
    ingester.push(&tenant, &push("{job=\"a\"}", 0, 12)).unwrap();
    ingester.push(&tenant, &push("{job=\"b\"}", 0, 12)).unwrap();
    let response = receiver.recv().await.unwrap().unwrap();
    let stream = response.stream.unwrap();
    assert_eq!(stream.labels, "{job=\"a\"}");
    let lines: Vec<&str> = stream.entries.iter().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, vec!["line 1", "line 10", "line 11"]);
    assert!(receiver.try_recv().is_err(), "nothing from {{job=\"b\"}}");
    drop(receiver);
    assert_eq!(
        ingester.tailers_count(&tenant),
        0,
        "a gone reader ends the tail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_volumes_cover_unflushed_chunks_and_chunk_stats_all() {
    use sluice_proto::logproto::{ChunkStatsRequest, IndexStatsRequest, VolumeRequest};
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    let store = memory_store();
    let config = IngesterConfig {
        chunk_retain_period: std::time::Duration::from_secs(3600),
        ..config()
    };
    let ingester = open_with(config, dir.path(), Some(store)).await;
    ingester
        .push(&tenant, &push("{job=\"a\", pod=\"1\"}", 0, 50))
        .unwrap();
    ingester
        .push(&tenant, &push("{job=\"a\", pod=\"2\"}", 0, 10))
        .unwrap();
    let stats = |ingester: &Ingester| {
        ingester
            .index_stats(
                &tenant,
                &IndexStatsRequest {
                    from: 0,
                    through: 10_000,
                    matchers: "{job=\"a\"}".to_string(),
                },
            )
            .unwrap()
    };
    let before = stats(&ingester);
    assert_eq!((before.streams, before.chunks, before.entries), (2, 2, 60));
    assert!(before.bytes > 60 * 6, "{before:?}");
    let volume = ingester
        .volume(
            &tenant,
            &VolumeRequest {
                from: 0,
                through: 10_000,
                matchers: "{}".to_string(),
                limit: 1,
                step: 0,
                target_labels: vec!["pod".to_string()],
                aggregate_by: "series".to_string(),
            },
        )
        .unwrap();
    assert_eq!(volume.volumes.len(), 1, "limit");
    assert_eq!(volume.volumes[0].name, "{pod=\"1\"}");
    let bad = VolumeRequest {
        aggregate_by: "pods".to_string(),
        ..VolumeRequest::default()
    };
    assert_eq!(
        ingester.volume(&tenant, &bad).unwrap_err().to_string(),
        "invalid aggregation option"
    );

    // Flushed chunks are the store's to count (Loki); GetChunkStats still
    // reports them while they stay in memory.
    ingester.sweep(true).await;
    let after = stats(&ingester);
    assert_eq!((after.streams, after.chunks, after.entries), (0, 0, 0));
    let all = ingester
        .chunk_stats(
            &tenant,
            &ChunkStatsRequest {
                from: 0,
                through: i64::MAX,
                matchers: String::new(),
            },
        )
        .unwrap();
    let entries: u64 = all
        .streams
        .iter()
        .flat_map(|stream| stream.chunks.iter().map(|chunk| chunk.entries))
        .sum();
    assert_eq!((all.streams.len(), entries), (2, 60));
}

/// The labels of the streams a query for `shards` returns.
fn streams_in(
    ingester: &Ingester,
    selector: &str,
    shards: Vec<String>,
) -> Result<Vec<String>, String> {
    let request = query_all(selector, shards);
    let mut labels = Vec::new();
    ingester
        .query(&TenantId::fake(), &request, |batch| {
            labels.extend(batch.streams.into_iter().map(|stream| stream.labels));
            true
        })
        .map_err(|err| err.to_string())?;
    labels.sort();
    labels.dedup();
    Ok(labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_query_reads_each_stream_in_exactly_one_shard() {
    let dir = tempfile::tempdir().unwrap();
    let ingester = open(dir.path(), None).await;
    let tenant = TenantId::fake();
    for pod in 0..40 {
        ingester
            .push(
                &tenant,
                &push(&format!("{{job=\"s\", pod=\"p{pod}\"}}"), 0, 3),
            )
            .unwrap();
    }
    let all = streams_in(&ingester, "{job=\"s\"}", Vec::new()).unwrap();
    assert_eq!(all.len(), 40);
    let mut union = Vec::new();
    for index in 0..3 {
        let part = streams_in(&ingester, "{job=\"s\"}", vec![format!("{index}_of_3")]).unwrap();
        assert!(
            !part.is_empty() && part.len() < 40,
            "shard {index}: {part:?}"
        );
        union.extend(part);
    }
    union.sort();
    assert_eq!(union, all, "the shards partition the streams");
    let err = streams_in(&ingester, "{job=\"s\"}", vec!["3_of_3".to_string()]).unwrap_err();
    assert!(err.contains("invalid shard \"3_of_3\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_over_the_memory_limit_are_compressed_early_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    let mut config = config();
    config.max_head_memory_mb = 1;
    let ingester = open_with(config, dir.path(), None).await;
    // 100 streams of ~20 KB each: ~2 MB of heads, none near the 256 KiB
    // block size, so only the memory limit can cut them.
    for s in 0..100 {
        ingester
            .push(
                &tenant,
                &push(&format!("{{job=\"heads\", s=\"{s}\"}}"), 0, 1500),
            )
            .unwrap();
    }
    let total_heads = |ingester: &Ingester| -> usize {
        ingester
            .all_instances()
            .iter()
            .flat_map(|instance| instance.all_streams())
            .map(|stream| stream.data.lock().head_bytes())
            .sum()
    };
    let before = total_heads(&ingester);
    assert!(
        before > 1 << 20,
        "heads hold {before} bytes before the check"
    );
    let before_entries = read_all(&ingester, "{job=\"heads\"}");
    assert_eq!(before_entries.len(), 150_000);

    let compressed = ingester.trim_heads();
    let after = total_heads(&ingester);
    assert!(compressed > 0, "no stream was compressed");
    assert!(
        after <= (1 << 20) / 4 * 3,
        "heads hold {after} bytes after the check (limit 1 MiB, goal 3/4)"
    );
    assert!(after > 0, "only as many heads as needed are compressed");
    // Every entry is still there, and a second check has nothing to do.
    assert_eq!(read_all(&ingester, "{job=\"heads\"}"), before_entries);
    assert_eq!(ingester.trim_heads(), 0);

    // Pushes after an early cut go to the same chunks, in order.
    ingester
        .push(&tenant, &push("{job=\"heads\", s=\"0\"}", 1500, 10))
        .unwrap();
    assert_eq!(read_all(&ingester, "{job=\"heads\", s=\"0\"}").len(), 1510);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_filter_sends_the_newest_kept_lines_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    let ingester = open(dir.path(), None).await;
    let lines: Vec<EntryAdapter> = (0..100)
        .map(|i| EntryAdapter {
            timestamp: Some(timestamp_from_nanos(i)),
            line: format!(
                r#"{{"n":{i},"level":"{}"}}"#,
                if i % 10 == 3 { "error" } else { "info" }
            ),
            structured_metadata: Vec::new(),
        })
        .collect();
    let request = PushRequest {
        streams: vec![StreamAdapter {
            labels: r#"{job="a"}"#.to_string(),
            entries: lines,
            hash: 0,
        }],
    };
    ingester.push(&tenant, &request).unwrap();

    let selector = r#"{job="a"} | json | level="error" | line_format "{{.n}}""#;
    let mut query = query_all(selector, Vec::new());
    // Without the flag the ingester refuses a pipeline it cannot run.
    let refused = ingester.query(&tenant, &query, |_| true).unwrap_err();
    assert!(refused.to_string().contains("pipeline_filter"), "{refused}");

    query.pipeline_filter = true;
    query.limit = 3;
    query.direction = sluice_proto::logproto::Direction::Backward as i32;
    let mut got = Vec::new();
    ingester
        .query(&tenant, &query, |batch| {
            for stream in batch.streams {
                got.extend(
                    stream
                        .entries
                        .into_iter()
                        .map(|entry| (timestamp_to_nanos(entry.timestamp.as_ref()), entry.line)),
                );
            }
            true
        })
        .unwrap();
    // The three newest error lines, as pushed (the querier formats them).
    assert_eq!(
        got,
        [93, 83, 73]
            .map(|n| (n, format!(r#"{{"n":{n},"level":"error"}}"#)))
            .to_vec()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_queries_send_extracted_values_per_series_with_line_digests() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::fake();
    let ingester = open(dir.path(), None).await;
    let line = |i: i64| {
        format!(
            r#"{{"n":{i},"level":"{}"}}"#,
            if i % 10 == 3 { "error" } else { "info" }
        )
    };
    let request = PushRequest {
        streams: ["a", "b"]
            .iter()
            .map(|job| StreamAdapter {
                labels: format!(r#"{{job="{job}"}}"#),
                entries: (0..100)
                    .map(|i| EntryAdapter {
                        timestamp: Some(timestamp_from_nanos(i)),
                        line: line(i),
                        structured_metadata: Vec::new(),
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    ingester.push(&tenant, &request).unwrap();

    let query = |selector: &str, start: i64, end: i64| SampleQueryRequest {
        selector: selector.to_string(),
        start: Some(timestamp_from_nanos(start)),
        end: Some(timestamp_from_nanos(end)),
        shards: Vec::new(),
    };
    let run = |request: SampleQueryRequest| {
        let mut got = Vec::new();
        ingester
            .query_samples(&tenant, &request, |batch| {
                got.extend(batch.series);
                true
            })
            .map(|()| got)
    };
    // The outer sum's grouping applies: one series per level and stream.
    let mut series = run(query(
        r#"sum by (level) (sum_over_time({job=~"a|b"} | json | unwrap n [1m]))"#,
        10,
        50,
    ))
    .unwrap();
    series.sort_by(|x, y| (&x.labels, x.stream_hash).cmp(&(&y.labels, y.stream_hash)));
    assert_eq!(series.len(), 4, "{series:?}");
    for one in &series {
        let (expected, level): (Vec<i64>, &str) = if one.labels.contains("error") {
            ((10..50).filter(|i| i % 10 == 3).collect(), "error")
        } else {
            ((10..50).filter(|i| i % 10 != 3).collect(), "info")
        };
        assert_eq!(one.labels, format!(r#"{{level="{level}"}}"#));
        let got: Vec<(i64, f64, u64)> = one
            .samples
            .iter()
            .map(|sample| (sample.timestamp, sample.value, sample.hash))
            .collect();
        let want: Vec<(i64, f64, u64)> = expected
            .iter()
            .map(|i| (*i, *i as f64, sluice_chunk::line_hash(&line(*i))))
            .collect();
        assert_eq!(got, want);
    }
    assert_ne!(series[0].stream_hash, series[1].stream_hash);

    // Only a range aggregation (or a sum that pushes into one) is an
    // extraction.
    let refused = run(query(r#"{job="a"} | json"#, 0, 100)).unwrap_err();
    assert!(
        refused.to_string().contains("not a sample extraction"),
        "{refused}"
    );
    let refused = run(query(
        r#"max(count_over_time({job="a"} | json [1m]))"#,
        0,
        100,
    ))
    .unwrap_err();
    assert!(
        refused.to_string().contains("not a sample extraction"),
        "{refused}"
    );
}
