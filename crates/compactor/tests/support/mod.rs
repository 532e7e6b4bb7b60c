//! Shared fixtures for the compactor's tests: a filesystem store with a
//! fault-injecting wrapper, data loaders that write chunks and index files
//! the way ingesters do, and a reader that queries through the querier's
//! index cache.

#![allow(dead_code)]

pub mod faulty;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use sluice_chunk::{
    Codec, Direction, IndexFileKind, IndexFileName, IndexWriter, LabelMatcher, Labels, MemChunk,
};
use sluice_common::LimitsConfig;
use sluice_compactor::{Compactor, CompactorConfig, CompactorDeps, ManualClock, TenantLimits};
use sluice_storage::{select_series, ChunkStore, IndexCache, ObjectStorage, SchemaConfig, Table};

pub use faulty::FaultyStore;

pub const SECOND: i64 = 1_000_000_000;
pub const HOUR: i64 = 3600 * SECOND;
pub const DAY: i64 = 24 * HOUR;
/// 2024-04-01T00:00:00Z.
pub const T0: i64 = 1_711_929_600 * SECOND;

/// A filesystem store in a temp dir, seen through a fault injector.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub faulty: Arc<FaultyStore>,
    pub store: Arc<ChunkStore>,
    pub backend: ObjectStorage,
}

impl TestStore {
    pub fn new() -> TestStore {
        // Memory-backed when the machine has it: these tests write and
        // delete thousands of small objects.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .expect("temp dir");
        let faulty = Arc::new(FaultyStore::new(dir.path()));
        let backend = ObjectStorage::new(faulty.clone(), "faulty filesystem");
        let store = Arc::new(
            ChunkStore::with_backend(&SchemaConfig::default(), backend.clone()).expect("store"),
        );
        TestStore {
            dir,
            faulty,
            store,
            backend,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Builds a compactor over this store.
    pub fn compactor(
        &self,
        config: CompactorConfig,
        limits: LimitsConfig,
        clock: Arc<ManualClock>,
    ) -> Arc<Compactor> {
        let limits: Arc<dyn TenantLimits> = Arc::new(limits);
        Compactor::new(
            config,
            CompactorDeps {
                store: Arc::clone(&self.store),
                control: self.backend.clone(),
                limits,
                clock,
                instance_id: "test".to_string(),
            },
            &mut Registry::default(),
        )
        .expect("compactor")
    }

    /// Returns every object key under `prefix`.
    pub async fn keys(&self, prefix: &str) -> BTreeSet<String> {
        self.backend
            .list(prefix)
            .await
            .expect("list")
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    /// Returns the chunk object keys of a tenant.
    pub async fn chunk_keys(&self, tenant: &str) -> BTreeSet<String> {
        self.keys(&format!("{tenant}/chunks/")).await
    }

    /// Returns the index file names per `<table>/<tenant>` directory.
    pub async fn index_files(&self) -> BTreeMap<String, Vec<String>> {
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in self.keys("index/").await {
            let parts: Vec<&str> = key.split('/').collect();
            if parts.len() == 4 && parts[1] != "compactor" && parts[1] != "delete_requests" {
                tables
                    .entry(format!("{}/{}", parts[1], parts[2]))
                    .or_default()
                    .push(parts[3].to_string());
            }
        }
        tables
    }

    /// A fresh querier view of the index (resyncs on every call).
    pub fn index_cache(&self) -> IndexCache {
        IndexCache::new(
            Arc::clone(&self.store),
            self.dir.path().join("querier-cache"),
            Duration::ZERO,
        )
    }
}

/// One stream's entries: labels and (ts, line), sorted by time.
pub type Dataset = BTreeMap<Labels, Vec<(i64, String)>>;

/// Writes each stream's entries as chunks of `chunk_span` ns (one chunk per
/// span) and indexes them like ingesters: `files_per_table` index files per
/// (table, tenant), each chunk in one of them, plus every chunk of the
/// first stream indexed twice (a retried flush). Returns the chunk refs.
pub async fn load(
    store: &ChunkStore,
    tenant: &str,
    data: &Dataset,
    chunk_span: i64,
    files_per_table: usize,
) -> Vec<(Labels, sluice_chunk::ChunkRef)> {
    let mut written = Vec::new();
    let mut writers: BTreeMap<(Table, usize), IndexWriter> = BTreeMap::new();
    for (stream_index, (labels, entries)) in data.iter().enumerate() {
        let mut by_span: BTreeMap<i64, Vec<&(i64, String)>> = BTreeMap::new();
        for entry in entries {
            by_span
                .entry(entry.0.div_euclid(chunk_span))
                .or_default()
                .push(entry);
        }
        for (span_index, (_, span_entries)) in by_span.into_iter().enumerate() {
            let mut chunk = MemChunk::new(Codec::Snappy, 4096, 0);
            for (ts, line) in &span_entries {
                chunk.append(*ts, line);
            }
            let (from, through) = chunk.bounds().expect("entries");
            let chunk_ref = store
                .put_encoded_chunk(
                    tenant,
                    labels.fingerprint(),
                    from,
                    through,
                    chunk.entries(),
                    chunk.uncompressed_bytes(),
                    chunk.encode(),
                )
                .await
                .expect("put chunk");
            for table in store.tables_for_chunk(from, through) {
                let slot = (stream_index + span_index) % files_per_table;
                writers
                    .entry((table, slot))
                    .or_insert_with(|| IndexWriter::new(tenant, table.number))
                    .add(labels, chunk_ref);
                if stream_index == 0 {
                    let duplicate = (slot + 1) % files_per_table;
                    writers
                        .entry((table, duplicate))
                        .or_insert_with(|| IndexWriter::new(tenant, table.number))
                        .add(labels, chunk_ref);
                }
            }
            written.push((labels.clone(), chunk_ref));
        }
    }
    for ((table, slot), writer) in writers {
        let name = IndexFileName {
            writer: format!("ingester-{slot}"),
            upload_ns: T0 - 100 * DAY + slot as i64,
            kind: IndexFileKind::Ingester,
        };
        store
            .put_index(table, tenant, &name, writer.finish())
            .await
            .expect("put index");
    }
    written
}

/// Reads every entry of the streams matching `selector` (line filters
/// applied) in `[from, through)` through the querier's index cache,
/// deduplicated like the querier does.
pub async fn query(
    index: &IndexCache,
    tenant: &str,
    selector: &str,
    from: i64,
    through: i64,
) -> Dataset {
    let log = match sluice_logql::parse_expr(selector).expect("query parses") {
        sluice_logql::Expr::Log(log) => log,
        other => panic!("not a log query: {other:?}"),
    };
    let filters = log.line_filters();
    let predicates: Vec<_> = log
        .matchers
        .iter()
        .map(|matcher| move |value: &str| matcher.matches(value))
        .collect();
    let matchers: Vec<LabelMatcher<'_>> = log
        .matchers
        .iter()
        .zip(&predicates)
        .map(|(matcher, predicate)| LabelMatcher::new(&matcher.name, predicate))
        .collect();
    let readers = index
        .readers(tenant, from, through)
        .await
        .expect("index readers");
    let mut out: Dataset = BTreeMap::new();
    for series in select_series(&readers, &matchers, from, through) {
        let mut entries = Vec::new();
        for chunk_ref in &series.chunks {
            let chunk = index
                .store()
                .get_chunk(tenant, chunk_ref)
                .await
                .unwrap_or_else(|err| panic!("index refers to a chunk that cannot be read: {err}"));
            let mut iter = chunk.iter(from, through, Direction::Forward).expect("iter");
            while let Some((ts, line)) = iter.try_next_entry().expect("entry") {
                if filters.matches(line.as_bytes()) {
                    entries.push((ts, line.to_string()));
                }
            }
        }
        entries.sort();
        entries.dedup();
        if !entries.is_empty() {
            out.entry(series.labels).or_default().extend(entries);
        }
    }
    for entries in out.values_mut() {
        entries.sort();
        entries.dedup();
    }
    out
}

/// Parses `{a="1", b="2"}`.
pub fn labels(text: &str) -> Labels {
    Labels::parse(text).expect("labels parse")
}

/// Checks that every chunk any live index file refers to exists.
pub async fn assert_no_dangling_refs(test_store: &TestStore, tenant: &str) {
    let store = &test_store.store;
    for table in store.list_tables().await.expect("tables") {
        for (key, _) in store.list_index(table, tenant).await.expect("list") {
            let bytes = store.get_index(table, &key).await.expect("index file");
            let reader = sluice_chunk::IndexReader::open_slice(&bytes).expect("valid index");
            for id in reader.series_ids() {
                for chunk in reader.series(id).1 {
                    if let Err(err) = store.get_chunk(tenant, chunk).await {
                        panic!("{key} refers to a chunk that cannot be read: {err}");
                    }
                }
            }
        }
    }
}

/// Compares query answers, reporting the first difference briefly.
pub fn assert_same(got: &[Dataset], expected: &[Dataset], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: number of answers");
    for (index, (got, expected)) in got.iter().zip(expected).enumerate() {
        let got_streams: Vec<String> = got.keys().map(ToString::to_string).collect();
        let expected_streams: Vec<String> = expected.keys().map(ToString::to_string).collect();
        assert_eq!(
            got_streams, expected_streams,
            "{what}: streams of answer {index}"
        );
        for (stream, entries) in expected {
            let found = &got[stream];
            if found != entries {
                let missing = entries.iter().find(|entry| !found.contains(entry));
                let extra = found.iter().find(|entry| !entries.contains(entry));
                panic!(
                    "{what}: answer {index}, stream {stream}: {} entries, expected {}; first missing {missing:?}, first extra {extra:?}",
                    found.len(),
                    entries.len()
                );
            }
        }
    }
}
