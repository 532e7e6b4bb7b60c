//! Compacting one (table, tenant): merge its index files into one, drop
//! the chunks retention and delete requests remove, and replace the files
//! only after the merged file is stored.
//!
//! Order of effects, each safe to stop after:
//! 1. partly deleted chunks are rewritten to new chunk objects (unreferenced
//!    until step 2; the same bytes again if redone);
//! 2. the merged file is uploaded (until step 4 the old files are live too;
//!    readers deduplicate chunk refs across files);
//! 3. the chunks that left the index are marked;
//! 4. the merged-away files are deleted.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use sluice_chunk::{ChunkRef, IndexFileKind, IndexFileName, IndexWriter, Labels};
use sluice_storage::{ChunkStore, StorageError, Table};

use crate::delete_requests::CompiledRequest;
use crate::error::CompactorError;
use crate::lease::Lease;
use crate::markers::{chunk_id, open_index, ChunkId, Markers};
use crate::retention::RetentionPolicy;
use crate::rewrite::{rewrite_chunk, Rewrite};

/// The writer name in compacted index file names.
const WRITER: &str = "compactor";
/// Chunks rewritten at once.
const REWRITE_CONCURRENCY: usize = 8;

/// Rewrites already done this run, per (tenant, chunk): a chunk indexed in
/// two tables is rewritten once.
pub(crate) type RewriteCache = Mutex<HashMap<(String, ChunkId), Rewrite>>;

/// What the compactor shares with every table job of a run.
pub(crate) struct RunContext<'a> {
    pub(crate) store: &'a ChunkStore,
    pub(crate) markers: &'a Markers,
    pub(crate) lease: &'a Lease,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    /// The time retention is evaluated at, fixed for the run.
    pub(crate) now_ns: i64,
    pub(crate) rewrites: &'a RewriteCache,
}

/// What applies to one tenant in this run.
pub(crate) struct TenantWork<'a> {
    /// `None` when retention is disabled.
    pub(crate) retention: Option<&'a RetentionPolicy>,
    /// Delete requests due for processing.
    pub(crate) deletes: &'a [CompiledRequest],
}

/// What compacting one (table, tenant) did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TableOutcome {
    /// Index files found.
    pub(crate) files_before: usize,
    /// Whether the files were replaced by a merged one (or removed).
    pub(crate) compacted: bool,
    /// Chunks dropped because retention expired them.
    pub(crate) chunks_expired: usize,
    /// Chunks dropped or rewritten because of delete requests.
    pub(crate) chunks_deleted: usize,
    /// New chunks written for partly deleted chunks.
    pub(crate) chunks_rewritten: usize,
    /// Chunks marked for deletion.
    pub(crate) chunks_marked: usize,
    /// Lines removed per delete request id (counted once per chunk).
    pub(crate) deleted_lines: HashMap<String, u64>,
}

/// Merged series: (labels, fingerprint) → chunks by (from, through, checksum).
type Merged = BTreeMap<(Labels, u64), BTreeMap<(i64, i64, u32), ChunkRef>>;

pub(crate) async fn compact_table(
    context: &RunContext<'_>,
    work: &TenantWork<'_>,
    table: Table,
    tenant: &str,
) -> Result<TableOutcome, CompactorError> {
    let store = context.store;
    let now_ns = context.now_ns;
    let files = store.list_index(table, tenant).await?;
    let mut outcome = TableOutcome {
        files_before: files.len(),
        ..TableOutcome::default()
    };
    if files.is_empty() || can_skip(&files, work, now_ns) {
        return Ok(outcome);
    }
    context.lease.check(context.clock.now_ns()).await?;

    // Download and merge.
    let mut merged: Merged = BTreeMap::new();
    let mut sources: Vec<String> = Vec::with_capacity(files.len());
    for (key, _) in &files {
        let bytes = match store.get_index(table, key).await {
            Ok(bytes) => bytes,
            // Another compactor replaced it since the listing; its
            // replacement holds the same chunks. Pick it up next run.
            Err(StorageError::NotFound { .. }) => continue,
            Err(err) => return Err(err.into()),
        };
        let reader = open_index(key.clone(), bytes).await?;
        for id in reader.series_ids() {
            let (labels, chunks) = reader.series(id);
            let entry = merged
                .entry((labels.to_labels(), reader.fingerprint(id)))
                .or_default();
            for chunk in chunks {
                entry
                    .entry((chunk.from_ns, chunk.through_ns, chunk.checksum))
                    .or_insert(*chunk);
            }
        }
        sources.push(key.clone());
    }

    // Decide each chunk's fate.
    let mut output = IndexWriter::new(tenant, table.number);
    let mut output_ids: HashSet<ChunkId> = HashSet::new();
    let mut to_rewrite: Vec<(Labels, ChunkRef, Vec<CompiledRequest>)> = Vec::new();
    let mut source_chunks: Vec<ChunkRef> = Vec::new();
    for ((labels, _), chunks) in &merged {
        let label = |name: &str| labels.get(name);
        let period_ns = work.retention.map_or(0, |policy| policy.period_for(label));
        let applicable: Vec<&CompiledRequest> = work
            .deletes
            .iter()
            .filter(|request| request.matches_stream(&label))
            .collect();
        for chunk in chunks.values() {
            source_chunks.push(*chunk);
            if RetentionPolicy::is_expired(period_ns, chunk.through_ns, now_ns) {
                outcome.chunks_expired += 1;
                continue;
            }
            let overlapping: Vec<&CompiledRequest> = applicable
                .iter()
                .copied()
                .filter(|request| request.overlaps(chunk.from_ns, chunk.through_ns))
                .collect();
            if overlapping.is_empty() {
                output.add(labels, *chunk);
                output_ids.insert(chunk_id(chunk));
                continue;
            }
            outcome.chunks_deleted += 1;
            if let Some(request) = overlapping
                .iter()
                .find(|request| request.covers(chunk.from_ns, chunk.through_ns))
            {
                let first_time = context
                    .rewrites
                    .lock()
                    .insert(
                        (tenant.to_string(), chunk_id(chunk)),
                        Rewrite::Dropped {
                            lines: u64::from(chunk.entries),
                        },
                    )
                    .is_none();
                if first_time {
                    *outcome
                        .deleted_lines
                        .entry(request.request.request_id.clone())
                        .or_default() += u64::from(chunk.entries);
                }
                continue;
            }
            to_rewrite.push((
                labels.clone(),
                *chunk,
                overlapping.into_iter().cloned().collect(),
            ));
        }
    }

    // Rewrite partly deleted chunks.
    let rewritten: Vec<(Labels, ChunkRef, Rewrite)> = futures::stream::iter(to_rewrite)
        .map(|(labels, chunk, requests)| async move {
            let cache_key = (tenant.to_string(), chunk_id(&chunk));
            if let Some(done) = context.rewrites.lock().get(&cache_key).copied() {
                return Ok::<_, CompactorError>((labels, chunk, done, None));
            }
            let first_request = requests
                .first()
                .map(|request| request.request.request_id.clone())
                .unwrap_or_default();
            let result = rewrite_chunk(store, tenant, chunk, requests).await?;
            context.rewrites.lock().insert(cache_key, result);
            Ok((labels, chunk, result, Some(first_request)))
        })
        .buffer_unordered(REWRITE_CONCURRENCY)
        .map_ok(|(labels, chunk, result, counted_for)| {
            if let Some(request_id) = counted_for {
                let lines = match result {
                    Rewrite::Unchanged => 0,
                    Rewrite::Dropped { lines } | Rewrite::Replaced { lines, .. } => lines,
                };
                if lines > 0 {
                    *outcome.deleted_lines.entry(request_id).or_default() += lines;
                }
            }
            (labels, chunk, result)
        })
        .try_collect()
        .await?;
    for (labels, chunk, result) in rewritten {
        match result {
            Rewrite::Unchanged => {
                outcome.chunks_deleted -= 1;
                output.add(&labels, chunk);
                output_ids.insert(chunk_id(&chunk));
            }
            Rewrite::Dropped { .. } => {}
            Rewrite::Replaced {
                chunk: new_chunk, ..
            } => {
                outcome.chunks_rewritten += 1;
                // A rewritten chunk may no longer reach into this table.
                if store
                    .tables_for_chunk(new_chunk.from_ns, new_chunk.through_ns)
                    .contains(&table)
                {
                    output.add(&labels, new_chunk);
                    output_ids.insert(chunk_id(&new_chunk));
                }
            }
        }
    }

    // What leaves the index: every source chunk not in the output.
    let mut seen: HashSet<ChunkId> = HashSet::new();
    let removed: Vec<ChunkRef> = source_chunks
        .into_iter()
        .filter(|chunk| !output_ids.contains(&chunk_id(chunk)) && seen.insert(chunk_id(chunk)))
        .collect();
    let replaced_any = outcome.chunks_rewritten > 0;
    if sources.len() <= 1 && removed.is_empty() && !replaced_any {
        return Ok(outcome);
    }

    // 2. Upload the merged file.
    let mut output_key = None;
    if !output.is_empty() {
        let (from_ns, through_ns) = output.time_range().unwrap_or((0, 0));
        let bytes = tokio::task::spawn_blocking(move || output.finish())
            .await
            .map_err(|err| CompactorError::task("index build", err))?;
        let name = IndexFileName {
            writer: WRITER.to_string(),
            upload_ns: context.clock.now_ns().max(0),
            kind: IndexFileKind::Compacted {
                from_ns,
                through_ns,
                checksum: crc32fast::hash(&bytes),
            },
        };
        context.lease.check(context.clock.now_ns()).await?;
        output_key = Some(store.put_index(table, tenant, &name, bytes).await?);
    }

    // 3. Mark what left the index.
    if !removed.is_empty() {
        context.lease.check(context.clock.now_ns()).await?;
        context
            .markers
            .mark(tenant, table, &removed, context.clock.now_ns())
            .await?;
        outcome.chunks_marked = removed.len();
    }

    // 4. Delete the merged-away files.
    context.lease.check(context.clock.now_ns()).await?;
    for key in &sources {
        if Some(key) != output_key.as_ref() {
            store.delete(table, key).await?;
        }
    }
    outcome.compacted = true;
    tracing::info!(
        table = %store.table_name(table),
        %tenant,
        files = sources.len(),
        chunks_expired = outcome.chunks_expired,
        chunks_deleted = outcome.chunks_deleted,
        chunks_rewritten = outcome.chunks_rewritten,
        chunks_marked = outcome.chunks_marked,
        "table compacted"
    );
    Ok(outcome)
}

/// Returns whether a table's files need no work: one compacted file whose
/// chunks are all too recent to expire and outside every delete request.
fn can_skip(files: &[(String, u64)], work: &TenantWork<'_>, now_ns: i64) -> bool {
    let [(key, _)] = files else {
        return false;
    };
    let Some(name) = key
        .rsplit('/')
        .next()
        .and_then(|name| IndexFileName::parse(name).ok())
    else {
        return false;
    };
    let IndexFileKind::Compacted {
        from_ns,
        through_ns,
        ..
    } = name.kind
    else {
        return false;
    };
    let may_expire = work
        .retention
        .and_then(RetentionPolicy::shortest_period)
        .is_some_and(|shortest| now_ns.saturating_sub(from_ns) > shortest);
    let may_delete = work
        .deletes
        .iter()
        .any(|request| request.overlaps(from_ns, through_ns));
    !may_expire && !may_delete
}
