//! The querier's view of the index: index files downloaded into a local
//! cache directory, opened once, re-listed periodically, and queried for
//! label names, values and the chunks of the series a selector matches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_chunk::{ChunkRef, IndexReader, LabelMatcher, Labels};

use crate::error::StorageError;
use crate::store::{ChunkStore, Table};

/// A series the index knows and its chunks overlapping the asked range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChunks {
    /// The stream's labels.
    pub labels: Labels,
    /// Its chunks, deduplicated, ordered by start time.
    pub chunks: Vec<ChunkRef>,
}

/// Tables whose data may still be changing are re-listed at least this often.
const RECENT_RESYNC: Duration = Duration::from_secs(10);
/// Listings tried when files disappear while a table is synced (each
/// disappearance means a compaction replaced them).
const MAX_SYNC_ATTEMPTS: usize = 5;

#[derive(Debug, Default)]
struct TableState {
    files: BTreeMap<String, Arc<IndexReader>>,
    synced_at: Option<Instant>,
}

/// One table's cached files, locked while it is re-listed.
type SharedTableState = Arc<tokio::sync::Mutex<TableState>>;

/// Local cache of index files.
#[derive(Debug)]
pub struct IndexCache {
    store: Arc<ChunkStore>,
    directory: PathBuf,
    resync_interval: Duration,
    tables: Mutex<HashMap<(Table, String), SharedTableState>>,
}

impl IndexCache {
    /// Creates a cache storing downloads under `directory`.
    pub fn new(
        store: Arc<ChunkStore>,
        directory: PathBuf,
        resync_interval: Duration,
    ) -> IndexCache {
        IndexCache {
            store,
            directory,
            resync_interval,
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the store this cache reads from.
    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }

    fn state(&self, table: Table, tenant: &str) -> SharedTableState {
        Arc::clone(
            self.tables
                .lock()
                .entry((table, tenant.to_string()))
                .or_default(),
        )
    }

    /// Returns the open index files of a table, re-listing when stale.
    async fn table_readers(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<Vec<Arc<IndexReader>>, StorageError> {
        let state = self.state(table, tenant);
        let mut state = state.lock().await;
        let recent = {
            let now_table = self.store.table_for(sluice_common::time::now_nanos());
            table
                >= Table {
                    period_index: now_table.period_index,
                    number: now_table.number - 1,
                }
        };
        let max_age = if recent {
            self.resync_interval.min(RECENT_RESYNC)
        } else {
            self.resync_interval
        };
        if state.synced_at.is_none_or(|at| at.elapsed() >= max_age) {
            self.sync(table, tenant, &mut state).await?;
        }
        Ok(state.files.values().cloned().collect())
    }

    /// Re-lists a table and opens the files not yet open. The compactor
    /// replaces a table's files by uploading the merged file before it
    /// deletes the originals, so a file that vanishes between the listing
    /// and its download has been superseded: list again, and the listing
    /// then holds the file that replaced it.
    async fn sync(
        &self,
        table: Table,
        tenant: &str,
        state: &mut TableState,
    ) -> Result<(), StorageError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.sync_once(table, tenant, state).await {
                Err(StorageError::NotFound { key }) if attempt < MAX_SYNC_ATTEMPTS => {
                    tracing::debug!(%tenant, key, "index file replaced while syncing; listing again");
                }
                result => return result,
            }
        }
    }

    async fn sync_once(
        &self,
        table: Table,
        tenant: &str,
        state: &mut TableState,
    ) -> Result<(), StorageError> {
        let listed = self.store.list_index(table, tenant).await?;
        let keys: HashSet<&str> = listed.iter().map(|(key, _)| key.as_str()).collect();
        state.files.retain(|key, _| keys.contains(key.as_str()));
        for (key, _) in &listed {
            if state.files.contains_key(key) {
                continue;
            }
            let bytes = self.load(table, key).await?;
            // Opening validates and loads the whole file: off the runtime.
            let reader = tokio::task::spawn_blocking(move || IndexReader::open(bytes))
                .await
                .map_err(|err| StorageError::Corrupt {
                    key: key.clone(),
                    reason: format!("opening task failed: {err}"),
                })?
                .map_err(|err| StorageError::Corrupt {
                    key: key.clone(),
                    reason: err.to_string(),
                })?;
            state.files.insert(key.clone(), Arc::new(reader));
        }
        self.remove_stale_cache_files(table, tenant, &keys).await;
        state.synced_at = Some(Instant::now());
        Ok(())
    }

    /// Reads an index file from the cache directory, downloading it first
    /// when absent. Index files are immutable, so a cached copy never goes
    /// stale; it only disappears when the object does.
    async fn load(&self, table: Table, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.directory.join(key);
        if let Ok(bytes) = tokio::fs::read(&path).await {
            return Ok(bytes);
        }
        let bytes = self.store.get_index(table, key).await?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| StorageError::Local {
                    operation: "creating index cache directory",
                    path: parent.display().to_string(),
                    source,
                })?;
        }
        let temporary = path.with_extension("download");
        tokio::fs::write(&temporary, &bytes)
            .await
            .map_err(|source| StorageError::Local {
                operation: "writing index cache file",
                path: temporary.display().to_string(),
                source,
            })?;
        tokio::fs::rename(&temporary, &path)
            .await
            .map_err(|source| StorageError::Local {
                operation: "renaming index cache file",
                path: path.display().to_string(),
                source,
            })?;
        Ok(bytes.to_vec())
    }

    async fn remove_stale_cache_files(&self, table: Table, tenant: &str, keys: &HashSet<&str>) {
        let dir = self.directory.join(self.store.index_dir(table, tenant));
        let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
            return;
        };
        let prefix = self.store.index_dir(table, tenant);
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = format!("{prefix}{name}");
            if !keys.contains(key.as_str()) {
                if let Err(err) = tokio::fs::remove_file(entry.path()).await {
                    tracing::warn!(path = %entry.path().display(), error = %err, "cannot remove stale index cache file");
                }
            }
        }
    }

    /// Returns the index files covering `[from, through)`, re-listing
    /// tables whose listing is stale.
    pub async fn readers(
        &self,
        tenant: &str,
        from_ns: i64,
        through_ns: i64,
    ) -> Result<Vec<Arc<IndexReader>>, StorageError> {
        let mut readers = Vec::new();
        for table in self.store.tables_in_range(from_ns, through_ns) {
            readers.extend(self.table_readers(table, tenant).await?);
        }
        Ok(readers)
    }
}

/// Returns the series of `readers` matching every matcher that have chunks
/// overlapping `[from, through)`, with those chunks (deduplicated across
/// files), sorted by labels.
pub fn select_series(
    readers: &[Arc<IndexReader>],
    matchers: &[LabelMatcher<'_>],
    from_ns: i64,
    through_ns: i64,
) -> Vec<SeriesChunks> {
    let mut by_labels: BTreeMap<Labels, Vec<ChunkRef>> = BTreeMap::new();
    for reader in readers {
        for id in reader.select(matchers) {
            let chunks: Vec<ChunkRef> = reader
                .chunks_in_range(id, from_ns, through_ns)
                .cloned()
                .collect();
            if chunks.is_empty() {
                continue;
            }
            let labels = reader.series(id).0.to_labels();
            by_labels.entry(labels).or_default().extend(chunks);
        }
    }
    by_labels
        .into_iter()
        .map(|(labels, mut chunks)| {
            chunks.sort_by_key(|chunk| (chunk.from_ns, chunk.through_ns, chunk.checksum));
            chunks.dedup_by(|a, b| {
                a.fingerprint == b.fingerprint
                    && a.from_ns == b.from_ns
                    && a.through_ns == b.through_ns
                    && a.checksum == b.checksum
            });
            SeriesChunks { labels, chunks }
        })
        .collect()
}
