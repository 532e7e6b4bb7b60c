//! The chunk store: writes and reads chunk objects and index files under
//! the keys `sluice-chunk` defines, choosing the backend and index table by
//! schema period.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sluice_cache::Cache;
use sluice_chunk::{ChunkKey, ChunkRef, IndexFileName, MemChunk};

use crate::backend::ObjectStorage;
use crate::config::StorageConfig;
use crate::error::StorageError;
use crate::schema::{period_for, tables_in_range, ResolvedPeriod, SchemaConfig};

/// Largest chunk object read back (a chunk is ~1.5 MiB compressed; this
/// guards against a corrupt size field, not normal data).
const MAX_CHUNK_UNCOMPRESSED: usize = 1 << 30;

/// One index table: its schema period and table number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table {
    /// Index into the schema periods.
    pub period_index: usize,
    /// Table number: `floor(ts / period)`.
    pub number: i64,
}

/// Reads and writes chunks and index files.
#[derive(Debug, Clone)]
pub struct ChunkStore {
    periods: Vec<ResolvedPeriod>,
    backends: Vec<ObjectStorage>,
    /// Chunk objects already read (`chunk_store_config.chunk_cache_config`).
    chunk_cache: Option<Arc<Cache>>,
}

impl ChunkStore {
    /// Builds the store for a schema, one backend per period.
    pub fn new(
        storage: &StorageConfig,
        schema: &SchemaConfig,
        path_prefix: &Path,
    ) -> Result<ChunkStore, StorageError> {
        let periods = schema.resolve()?;
        let mut backends = Vec::with_capacity(periods.len());
        for period in &periods {
            backends.push(ObjectStorage::from_config(
                &period.object_store,
                storage,
                path_prefix,
            )?);
        }
        Ok(ChunkStore {
            periods,
            backends,
            chunk_cache: None,
        })
    }

    /// Keeps chunk objects read from storage in `cache` (memcached or
    /// embedded), so repeated queries read them from there. Cached bytes
    /// are verified against the index's checksum like downloaded ones.
    pub fn with_chunk_cache(mut self, cache: Option<Cache>) -> ChunkStore {
        self.chunk_cache = cache.map(Arc::new);
        self
    }

    /// Builds a store whose every period uses `backend` (for tests and
    /// tools).
    pub fn with_backend(
        schema: &SchemaConfig,
        backend: ObjectStorage,
    ) -> Result<ChunkStore, StorageError> {
        let periods = schema.resolve()?;
        let backends = vec![backend; periods.len()];
        Ok(ChunkStore {
            periods,
            backends,
            chunk_cache: None,
        })
    }

    /// Describes the backends, for logs.
    pub fn describe(&self) -> String {
        self.backends
            .iter()
            .map(ObjectStorage::description)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Returns the table a timestamp falls in.
    pub fn table_for(&self, ts_ns: i64) -> Table {
        let period_index = period_for(&self.periods, ts_ns);
        Table {
            period_index,
            number: ts_ns.div_euclid(self.periods[period_index].period_ns),
        }
    }

    /// Returns the tables `[from, through)` touches, oldest first.
    pub fn tables_in_range(&self, from_ns: i64, through_ns: i64) -> Vec<Table> {
        tables_in_range(&self.periods, from_ns, through_ns)
            .into_iter()
            .map(|(period_index, number)| Table {
                period_index,
                number,
            })
            .collect()
    }

    /// Returns the tables a chunk with bounds `[from, through]` must be
    /// indexed in, so a query of any day it covers finds it.
    pub fn tables_for_chunk(&self, from_ns: i64, through_ns: i64) -> Vec<Table> {
        self.tables_in_range(from_ns, through_ns.saturating_add(1))
    }

    fn backend(&self, table: Table) -> &ObjectStorage {
        &self.backends[table.period_index]
    }

    /// Returns the object key of a chunk.
    pub fn chunk_key(&self, tenant: &str, chunk: &ChunkRef) -> ChunkKey {
        let table = self.table_for(chunk.from_ns);
        chunk.key(tenant, table.number)
    }

    /// Uploads an already encoded chunk with bounds `[from, through]`;
    /// returns its index entry (the checksum covers the object bytes; the
    /// size is `uncompressed_bytes`, as Loki's index records it).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_encoded_chunk(
        &self,
        tenant: &str,
        fingerprint: u64,
        from_ns: i64,
        through_ns: i64,
        entries: usize,
        uncompressed_bytes: usize,
        bytes: Vec<u8>,
    ) -> Result<ChunkRef, StorageError> {
        let chunk_ref = ChunkRef {
            fingerprint,
            from_ns,
            through_ns,
            checksum: crc32fast::hash(&bytes),
            size_bytes: u32::try_from(uncompressed_bytes).unwrap_or(u32::MAX),
            entries: u32::try_from(entries).unwrap_or(u32::MAX),
        };
        let table = self.table_for(from_ns);
        let key = chunk_ref.key(tenant, table.number).to_path();
        self.backend(table).put(&key, Bytes::from(bytes)).await?;
        Ok(chunk_ref)
    }

    /// Downloads, verifies and decodes a chunk. A checksum mismatch or an
    /// undecodable object is an error naming the key.
    pub async fn get_chunk(
        &self,
        tenant: &str,
        chunk: &ChunkRef,
    ) -> Result<MemChunk, StorageError> {
        let table = self.table_for(chunk.from_ns);
        let key = chunk.key(tenant, table.number).to_path();
        if let Some(cache) = &self.chunk_cache {
            let cached = cache.fetch(std::slice::from_ref(&key)).await.remove(&key);
            if let Some(bytes) = cached.filter(|bytes| crc32fast::hash(bytes) == chunk.checksum) {
                if let Ok(decoded) = MemChunk::decode_verified(bytes) {
                    return Ok(decoded);
                }
            }
        }
        let bytes = self.backend(table).get(&key).await?;
        let checksum = crc32fast::hash(&bytes);
        if checksum != chunk.checksum {
            return Err(StorageError::Corrupt {
                key,
                reason: format!(
                    "checksum {checksum:08x} does not match the index's {:08x}",
                    chunk.checksum
                ),
            });
        }
        if bytes.len() > MAX_CHUNK_UNCOMPRESSED {
            return Err(StorageError::Corrupt {
                key,
                reason: "object larger than any chunk".to_string(),
            });
        }
        let decoded =
            MemChunk::decode_verified(bytes.clone()).map_err(|err| StorageError::Corrupt {
                key: key.clone(),
                reason: err.to_string(),
            })?;
        if let Some(cache) = &self.chunk_cache {
            cache.store(&key, bytes).await;
        }
        Ok(decoded)
    }

    /// Returns the index directory of a table and tenant.
    pub fn index_dir(&self, table: Table, tenant: &str) -> String {
        let period = &self.periods[table.period_index];
        sluice_chunk::index_dir(&period.prefix, table.number, tenant)
    }

    /// Uploads an index file; returns its key.
    pub async fn put_index(
        &self,
        table: Table,
        tenant: &str,
        name: &IndexFileName,
        bytes: Vec<u8>,
    ) -> Result<String, StorageError> {
        let key = format!("{}{}", self.index_dir(table, tenant), name.to_file_name());
        self.backend(table).put(&key, Bytes::from(bytes)).await?;
        Ok(key)
    }

    /// Lists the index files of a table and tenant: (key, size).
    pub async fn list_index(
        &self,
        table: Table,
        tenant: &str,
    ) -> Result<Vec<(String, u64)>, StorageError> {
        let dir = self.index_dir(table, tenant);
        let mut files = self.backend(table).list(&dir).await?;
        files.retain(|(key, _)| {
            key.rsplit('/')
                .next()
                .is_some_and(|name| IndexFileName::parse(name).is_ok())
        });
        files.sort();
        Ok(files)
    }

    /// Downloads an index file.
    pub async fn get_index(&self, table: Table, key: &str) -> Result<Bytes, StorageError> {
        self.backend(table).get(key).await
    }

    /// Deletes an object of a table's backend.
    pub async fn delete(&self, table: Table, key: &str) -> Result<(), StorageError> {
        self.backend(table).delete(key).await
    }

    /// Deletes a chunk object; deleting a missing chunk succeeds.
    pub async fn delete_chunk(&self, tenant: &str, chunk: &ChunkRef) -> Result<(), StorageError> {
        let table = self.table_for(chunk.from_ns);
        let key = chunk.key(tenant, table.number).to_path();
        self.backend(table).delete(&key).await
    }

    /// Returns the backend of the schema period in force at `ts_ns`.
    pub fn backend_at(&self, ts_ns: i64) -> &ObjectStorage {
        self.backend(self.table_for(ts_ns))
    }

    /// Returns the time range `[start, end)` a table covers, in ns.
    pub fn table_range(&self, table: Table) -> (i64, i64) {
        let period_ns = self.periods[table.period_index].period_ns;
        let start = table.number.saturating_mul(period_ns);
        (start, start.saturating_add(period_ns))
    }

    /// Returns a table's name, `<prefix><number>` (e.g. `index_19723`).
    pub fn table_name(&self, table: Table) -> String {
        format!(
            "{}{}",
            self.periods[table.period_index].prefix, table.number
        )
    }

    /// Lists the index tables that hold at least one file, over every
    /// schema period, oldest first.
    pub async fn list_tables(&self) -> Result<Vec<Table>, StorageError> {
        let mut tables = Vec::new();
        let mut listed_backends: Vec<(String, Vec<String>)> = Vec::new();
        for (period_index, period) in self.periods.iter().enumerate() {
            let backend = &self.backends[period_index];
            // Periods sharing a backend share one listing.
            let dirs = match listed_backends
                .iter()
                .find(|(description, _)| description == backend.description())
            {
                Some((_, dirs)) => dirs.clone(),
                None => {
                    let dirs = backend.list_dirs("index").await?;
                    listed_backends.push((backend.description().to_string(), dirs.clone()));
                    dirs
                }
            };
            for dir in dirs {
                let Some(name) = dir.strip_prefix("index/") else {
                    continue;
                };
                let Some(number) = name
                    .strip_prefix(period.prefix.as_str())
                    .and_then(|digits| digits.parse::<i64>().ok())
                else {
                    continue;
                };
                let table = Table {
                    period_index,
                    number,
                };
                // A table belongs to the period in force at its start.
                if self.table_for(number.saturating_mul(period.period_ns)) == table {
                    tables.push(table);
                }
            }
        }
        tables.sort();
        tables.dedup();
        Ok(tables)
    }

    /// Lists the tenants with index files in a table, sorted.
    pub async fn list_tenants(&self, table: Table) -> Result<Vec<String>, StorageError> {
        let dir = format!("index/{}/", self.table_name(table));
        let dirs = self.backend(table).list_dirs(&dir).await?;
        Ok(dirs
            .into_iter()
            .filter_map(|path| path.rsplit('/').next().map(str::to_string))
            .filter(|tenant| !tenant.is_empty())
            .collect())
    }
}
