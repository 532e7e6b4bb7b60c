//! Marks: the chunks a compaction removed from the index, waiting for
//! `retention_delete_delay` before their objects are deleted.
//!
//! A marker object `index/compactor/markers/<created ns>-<crc>.json` in the
//! control store lists one tenant's removed chunks. The compactor writes it
//! after the new index file is uploaded and before the files it replaces
//! are deleted, so every chunk that leaves the index is marked first. The
//! sweeper deletes a marked chunk only once the delay has passed and no
//! live index file of any table the chunk spans still refers to it, then
//! deletes the marker. A chunk still referenced is dropped from the marker:
//! the compaction that eventually removes it from the index marks it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sluice_chunk::{ChunkRef, IndexReader};
use sluice_storage::{ChunkStore, ObjectStorage, StorageError, Table};

use crate::error::CompactorError;
use crate::metrics::CompactorMetrics;

const MARKER_DIR: &str = "index/compactor/markers/";

/// A chunk's identity within a tenant: what its object key is made of.
pub(crate) type ChunkId = (u64, i64, i64, u32);

pub(crate) fn chunk_id(chunk: &ChunkRef) -> ChunkId {
    (
        chunk.fingerprint,
        chunk.from_ns,
        chunk.through_ns,
        chunk.checksum,
    )
}

/// One marked chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct MarkedChunk {
    fingerprint: u64,
    from_ns: i64,
    through_ns: i64,
    checksum: u32,
}

/// A marker object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MarkerFile {
    created_ns: i64,
    tenant: String,
    /// The table whose compaction removed the chunks (for logs).
    table: String,
    chunks: Vec<MarkedChunk>,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SweepOutcome {
    /// Marker files whose delay had passed.
    pub(crate) markers_due: usize,
    /// Chunk objects deleted.
    pub(crate) chunks_deleted: usize,
    /// Marked chunks kept because a live index file still refers to them.
    pub(crate) chunks_still_referenced: usize,
}

/// Writes and sweeps marker objects.
#[derive(Debug, Clone)]
pub(crate) struct Markers {
    control: ObjectStorage,
    store: Arc<ChunkStore>,
}

impl Markers {
    pub(crate) fn new(control: ObjectStorage, store: Arc<ChunkStore>) -> Markers {
        Markers { control, store }
    }

    /// Records chunks removed from a table's index; returns the marker key.
    pub(crate) async fn mark(
        &self,
        tenant: &str,
        table: Table,
        chunks: &[ChunkRef],
        now_ns: i64,
    ) -> Result<String, CompactorError> {
        let file = MarkerFile {
            created_ns: now_ns,
            tenant: tenant.to_string(),
            table: self.store.table_name(table),
            chunks: chunks
                .iter()
                .map(|chunk| MarkedChunk {
                    fingerprint: chunk.fingerprint,
                    from_ns: chunk.from_ns,
                    through_ns: chunk.through_ns,
                    checksum: chunk.checksum,
                })
                .collect(),
        };
        let bytes = serde_json::to_vec(&file).map_err(|err| CompactorError::Corrupt {
            what: "marker",
            key: MARKER_DIR.to_string(),
            reason: err.to_string(),
        })?;
        let key = format!(
            "{MARKER_DIR}{:020}-{:08x}.json",
            now_ns.max(0),
            crc32fast::hash(&bytes)
        );
        self.control.put(&key, Bytes::from(bytes)).await?;
        Ok(key)
    }

    /// Returns the marker keys with their creation times, oldest first.
    async fn list(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let mut markers: Vec<(String, i64)> = self
            .control
            .list(MARKER_DIR)
            .await?
            .into_iter()
            .filter_map(|(key, _)| {
                let created = key
                    .rsplit('/')
                    .next()?
                    .split('-')
                    .next()?
                    .parse::<i64>()
                    .ok()?;
                Some((key, created))
            })
            .collect();
        markers.sort_by_key(|(key, created)| (*created, key.clone()));
        Ok(markers)
    }

    /// Deletes the chunks of every marker older than `delay_ns`, with at
    /// most `workers` deletions at once. `keep_lease` is called before each
    /// marker; an error from it stops the sweep.
    pub(crate) async fn sweep<F, Fut>(
        &self,
        delay_ns: i64,
        now_ns: i64,
        workers: usize,
        metrics: &CompactorMetrics,
        keep_lease: F,
    ) -> Result<SweepOutcome, CompactorError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), CompactorError>>,
    {
        let mut outcome = SweepOutcome::default();
        let due: Vec<(String, i64)> = self
            .list()
            .await?
            .into_iter()
            .filter(|(_, created)| created.saturating_add(delay_ns) <= now_ns)
            .collect();
        outcome.markers_due = due.len();
        metrics.marker_files_current.set(due.len() as i64);
        // Live references per (table, tenant), loaded once per sweep.
        let mut references: HashMap<(Table, String), HashSet<ChunkId>> = HashMap::new();
        for (key, created) in due {
            keep_lease().await?;
            metrics.marker_file_current_time.set(created as f64 / 1e9);
            let file = match self.control.get(&key).await {
                Ok(bytes) => serde_json::from_slice::<MarkerFile>(&bytes).map_err(|err| {
                    CompactorError::Corrupt {
                        what: "marker",
                        key: key.clone(),
                        reason: err.to_string(),
                    }
                })?,
                // Swept by an earlier run that stopped before listing again.
                Err(StorageError::NotFound { .. }) => continue,
                Err(err) => return Err(err.into()),
            };
            let mut deletable = Vec::with_capacity(file.chunks.len());
            for marked in &file.chunks {
                let chunk = ChunkRef {
                    fingerprint: marked.fingerprint,
                    from_ns: marked.from_ns,
                    through_ns: marked.through_ns,
                    checksum: marked.checksum,
                    size_bytes: 0,
                    entries: 0,
                };
                let mut referenced = false;
                for table in self.store.tables_for_chunk(chunk.from_ns, chunk.through_ns) {
                    let cache_key = (table, file.tenant.clone());
                    if !references.contains_key(&cache_key) {
                        let live = self.live_chunks(table, &file.tenant).await?;
                        references.insert(cache_key.clone(), live);
                    }
                    if references[&cache_key].contains(&chunk_id(&chunk)) {
                        referenced = true;
                        break;
                    }
                }
                if referenced {
                    outcome.chunks_still_referenced += 1;
                } else {
                    deletable.push(chunk);
                }
            }
            let tenant = file.tenant.as_str();
            let deleted: Vec<()> = futures::stream::iter(deletable)
                .map(|chunk| async move {
                    let started = std::time::Instant::now();
                    let result = self.store.delete_chunk(tenant, &chunk).await;
                    let status = if result.is_ok() { "success" } else { "failure" };
                    metrics.observe_chunk_delete(status, started.elapsed());
                    result
                })
                .buffer_unordered(workers.max(1))
                .try_collect()
                .await?;
            outcome.chunks_deleted += deleted.len();
            self.control.delete(&key).await?;
            metrics.marker_files_deleted.inc();
            tracing::info!(
                marker = %key,
                %tenant,
                table = %file.table,
                chunks_deleted = deleted.len(),
                "swept marked chunks"
            );
        }
        Ok(outcome)
    }

    /// Returns every chunk the live index files of a table refer to. A
    /// file that vanishes between listing and download was replaced by a
    /// compaction that uploaded its replacement first: list again.
    async fn live_chunks(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<HashSet<ChunkId>, CompactorError> {
        let mut attempt = 0;
        'listing: loop {
            attempt += 1;
            let mut live = HashSet::new();
            for (key, _) in self.store.list_index(table, tenant).await? {
                let bytes = match self.store.get_index(table, &key).await {
                    Ok(bytes) => bytes,
                    Err(StorageError::NotFound { .. }) if attempt < 5 => continue 'listing,
                    Err(err) => return Err(err.into()),
                };
                let reader = open_index(key, bytes).await?;
                for id in reader.series_ids() {
                    live.extend(reader.series(id).1.iter().map(chunk_id));
                }
            }
            return Ok(live);
        }
    }
}

/// Validates and loads an index file off the async runtime.
pub(crate) async fn open_index(key: String, bytes: Bytes) -> Result<IndexReader, CompactorError> {
    tokio::task::spawn_blocking(move || {
        IndexReader::open_slice(&bytes).map_err(|err| CompactorError::Corrupt {
            what: "index file",
            key,
            reason: err.to_string(),
        })
    })
    .await
    .map_err(|err| CompactorError::task("index open", err))?
}
