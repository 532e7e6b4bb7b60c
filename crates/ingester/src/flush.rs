//! Flushing: chunks leave memory for object storage. Each sweep closes
//! chunks that are full, idle or too old (or all, when forced), uploads them
//! with bounded concurrency, then ships one index file per (table, tenant)
//! for what was uploaded. A chunk counts as flushed only once its index
//! entry is stored, so a querier never sees a gap; failed uploads are
//! retried on later sweeps with exponential backoff.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use sluice_chunk::{IndexFileKind, IndexFileName, IndexWriter};
use sluice_common::TenantId;
use sluice_storage::{ChunkStore, Table};

use crate::config::IngesterConfig;
use crate::metrics::IngesterMetrics;
use crate::stream::{FlushReason, FlushState, Stream};

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// A chunk picked for flushing.
pub(crate) struct FlushOp {
    pub(crate) tenant: TenantId,
    pub(crate) stream: Arc<Stream>,
    pub(crate) chunk_id: u64,
    pub(crate) reason: FlushReason,
}

/// An uploaded chunk waiting for its index entries.
struct AwaitingIndex {
    stream: Arc<Stream>,
    chunk_id: u64,
    tables: Vec<IndexKey>,
}

/// The index of one (table, tenant).
type IndexKey = (Table, TenantId);

#[derive(Default)]
struct PendingIndex {
    /// Entries of chunks uploaded since the last shipment.
    writers: HashMap<IndexKey, IndexWriter>,
    /// Finished files whose upload failed; re-sent as they are.
    unshipped: Vec<(IndexKey, Vec<u8>)>,
    chunks: Vec<AwaitingIndex>,
}

/// Uploads chunks and ships index files.
pub(crate) struct Flusher {
    store: Arc<ChunkStore>,
    writer_id: String,
    concurrency: usize,
    op_timeout: Duration,
    pending: Mutex<PendingIndex>,
    metrics: IngesterMetrics,
}

/// What a flush sweep achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Chunks uploaded.
    pub uploaded: usize,
    /// Chunk uploads that failed (retried later).
    pub failed: usize,
    /// Index files shipped.
    pub index_files: usize,
    /// Index uploads that failed (retried later).
    pub index_failures: usize,
}

/// Picks the chunks of a stream to flush now, closing heads as needed, and
/// marks them queued. Returns their ids and reasons.
pub(crate) fn select_for_flush(
    stream: &Stream,
    config: &IngesterConfig,
    now: Instant,
    force: bool,
) -> Vec<(u64, FlushReason)> {
    let mut data = stream.data.lock();
    let mut picked = Vec::new();
    for desc in &mut data.chunks {
        if desc.state != FlushState::Pending || desc.chunk.entries() == 0 {
            continue;
        }
        if desc.closed.is_none() {
            let span = desc
                .chunk
                .bounds()
                .map_or(0, |(min, max)| max.saturating_sub(min));
            let max_age = i64::try_from(config.max_chunk_age.as_nanos()).unwrap_or(i64::MAX);
            if force {
                desc.closed = Some(FlushReason::Forced);
            } else if now.duration_since(desc.last_append) >= config.chunk_idle_period {
                desc.closed = Some(FlushReason::Idle);
            } else if span > max_age {
                desc.closed = Some(FlushReason::MaxAge);
            }
        }
        let Some(reason) = desc.closed else {
            continue;
        };
        if !force && desc.retry_after.is_some_and(|at| at > now) {
            continue;
        }
        desc.state = FlushState::Queued;
        picked.push((desc.id, reason));
    }
    picked
}

/// Drops chunks flushed longer ago than the retain period; returns how many.
pub(crate) fn remove_flushed(stream: &Stream, retain: Duration, now: Instant) -> usize {
    let mut data = stream.data.lock();
    let before = data.chunks.len();
    data.chunks.retain(|desc| match desc.state {
        FlushState::Flushed(at) => now.duration_since(at) < retain,
        _ => true,
    });
    before - data.chunks.len()
}

impl Flusher {
    pub(crate) fn new(
        store: Arc<ChunkStore>,
        writer_id: String,
        config: &IngesterConfig,
        metrics: IngesterMetrics,
    ) -> Flusher {
        Flusher {
            store,
            writer_id,
            concurrency: config.concurrent_flushes,
            op_timeout: config.flush_op_timeout,
            pending: Mutex::new(PendingIndex::default()),
            metrics,
        }
    }

    /// Uploads the chunks, then ships the index for everything uploaded.
    pub(crate) async fn flush(&self, ops: Vec<FlushOp>) -> SweepOutcome {
        let results: Vec<bool> = futures::stream::iter(ops)
            .map(|op| self.flush_chunk(op))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut outcome = SweepOutcome {
            uploaded: results.iter().filter(|ok| **ok).count(),
            failed: results.iter().filter(|ok| !**ok).count(),
            ..SweepOutcome::default()
        };
        let (shipped, failures) = self.ship_index().await;
        outcome.index_files = shipped;
        outcome.index_failures = failures;
        outcome
    }

    /// Returns whether anything uploaded still waits for its index.
    pub(crate) fn has_pending_index(&self) -> bool {
        !self.pending.lock().chunks.is_empty()
    }

    async fn flush_chunk(&self, op: FlushOp) -> bool {
        let stream = Arc::clone(&op.stream);
        let chunk_id = op.chunk_id;
        let encoded = tokio::task::spawn_blocking(move || {
            let data = stream.data.lock();
            let desc = data.chunks.iter().find(|desc| desc.id == chunk_id)?;
            if desc.state != FlushState::Queued {
                return None;
            }
            let (from_ns, through_ns) = desc.chunk.bounds()?;
            Some((
                desc.chunk.encode(),
                from_ns,
                through_ns,
                desc.chunk.entries(),
                desc.chunk.uncompressed_bytes(),
            ))
        })
        .await;
        let Ok(Some((bytes, from_ns, through_ns, entries, uncompressed))) = encoded else {
            return true;
        };
        let size = bytes.len();
        let upload = self.store.put_encoded_chunk(
            op.tenant.as_str(),
            op.stream.fingerprint,
            from_ns,
            through_ns,
            entries,
            uncompressed,
            bytes,
        );
        let result = match tokio::time::timeout(self.op_timeout, upload).await {
            Ok(result) => result.map_err(|err| err.to_string()),
            Err(_) => Err(format!("upload timed out after {:?}", self.op_timeout)),
        };
        match result {
            Ok(chunk_ref) => {
                self.metrics
                    .record_flush(&op.tenant, op.reason.as_str(), size);
                let tables: Vec<IndexKey> = self
                    .store
                    .tables_for_chunk(chunk_ref.from_ns, chunk_ref.through_ns)
                    .into_iter()
                    .map(|table| (table, op.tenant.clone()))
                    .collect();
                {
                    let mut data = op.stream.data.lock();
                    if let Some(desc) = data.chunks.iter_mut().find(|desc| desc.id == op.chunk_id) {
                        desc.state = FlushState::Uploaded(chunk_ref);
                    }
                }
                let mut pending = self.pending.lock();
                for key in &tables {
                    pending
                        .writers
                        .entry(key.clone())
                        .or_insert_with(|| IndexWriter::new(key.1.as_str(), key.0.number))
                        .add(&op.stream.labels, chunk_ref);
                }
                pending.chunks.push(AwaitingIndex {
                    stream: op.stream,
                    chunk_id: op.chunk_id,
                    tables,
                });
                true
            }
            Err(message) => {
                self.metrics.flush_failures.inc();
                let mut data = op.stream.data.lock();
                if let Some(desc) = data.chunks.iter_mut().find(|desc| desc.id == op.chunk_id) {
                    desc.failures += 1;
                    let backoff = MIN_BACKOFF
                        .saturating_mul(1 << desc.failures.min(16))
                        .min(MAX_BACKOFF);
                    desc.retry_after = Some(Instant::now() + backoff);
                    desc.state = FlushState::Pending;
                    tracing::warn!(
                        tenant = %op.tenant,
                        stream = %op.stream.labels_text,
                        failures = desc.failures,
                        retry_in = ?backoff,
                        error = %message,
                        "chunk flush failed; will retry"
                    );
                }
                false
            }
        }
    }

    /// Uploads one index file per pending (table, tenant), plus the files
    /// earlier attempts failed to upload; marks chunks flushed once every
    /// table they belong to is shipped. Returns files shipped and failures.
    async fn ship_index(&self) -> (usize, usize) {
        let batch = std::mem::take(&mut *self.pending.lock());
        // Building a file sorts and encodes every entry: off the runtime.
        let writers = batch.writers;
        let built = tokio::task::spawn_blocking(move || {
            writers
                .into_iter()
                .filter(|(_, writer)| !writer.is_empty())
                .map(|(key, writer)| (key, writer.finish()))
                .collect::<Vec<_>>()
        })
        .await;
        let mut files = batch.unshipped;
        match built {
            Ok(built) => files.extend(built),
            Err(err) => {
                // Nothing was shipped for this batch: upload its chunks again.
                tracing::error!(error = %err, "building index files failed; chunks will be flushed again");
                for awaiting in &batch.chunks {
                    let mut data = awaiting.stream.data.lock();
                    if let Some(desc) = data
                        .chunks
                        .iter_mut()
                        .find(|desc| desc.id == awaiting.chunk_id)
                    {
                        desc.state = FlushState::Pending;
                    }
                }
                return (0, 1);
            }
        }
        let mut shipped = 0;
        let mut failed: Vec<(IndexKey, Vec<u8>)> = Vec::new();
        for ((table, tenant), bytes) in files {
            let name = IndexFileName {
                writer: self.writer_id.clone(),
                upload_ns: sluice_common::time::now_nanos(),
                kind: IndexFileKind::Ingester,
            };
            let upload = self
                .store
                .put_index(table, tenant.as_str(), &name, bytes.clone());
            let result = match tokio::time::timeout(self.op_timeout, upload).await {
                Ok(result) => result.map_err(|err| err.to_string()),
                Err(_) => Err(format!(
                    "index upload timed out after {:?}",
                    self.op_timeout
                )),
            };
            match result {
                Ok(key) => {
                    shipped += 1;
                    tracing::debug!(%tenant, key, "index file shipped");
                }
                Err(message) => {
                    self.metrics.flush_failures.inc();
                    tracing::warn!(%tenant, table = table.number, error = %message, "index upload failed; will retry");
                    failed.push(((table, tenant), bytes));
                }
            }
        }
        let now = Instant::now();
        let mut still_waiting = Vec::new();
        for awaiting in batch.chunks {
            let blocked = awaiting
                .tables
                .iter()
                .any(|table| failed.iter().any(|(key, _)| key == table));
            if blocked {
                still_waiting.push(awaiting);
                continue;
            }
            let mut data = awaiting.stream.data.lock();
            if let Some(desc) = data
                .chunks
                .iter_mut()
                .find(|desc| desc.id == awaiting.chunk_id)
            {
                desc.state = FlushState::Flushed(now);
            }
        }
        let failures = failed.len();
        let mut pending = self.pending.lock();
        pending.unshipped.extend(failed);
        pending.chunks.extend(still_waiting);
        (shipped, failures)
    }
}
