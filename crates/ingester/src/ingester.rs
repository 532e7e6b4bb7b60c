//! The ingester core: tenants' instances, the push and read operations the
//! gRPC services expose, WAL replay and checkpoints, and the flush loop.
//! Free of tonic so it is testable directly.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use sluice_common::TenantId;
use sluice_proto::logproto::{
    ChunkStatsRequest, ChunkStatsResponse, IndexStatsRequest, IndexStatsResponse, LabelRequest,
    LabelResponse, PushRequest, QueryRequest, QueryResponse, SampleQueryRequest,
    SampleQueryResponse, SeriesRequest, SeriesResponse, VolumeRequest, VolumeResponse,
};
use sluice_storage::ChunkStore;
use sluice_wal::{FsyncPolicy, Wal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{FsyncMode, IngesterConfig};
use crate::error::IngesterError;
use crate::flush::{remove_flushed, select_for_flush, FlushOp, Flusher, SweepOutcome};
use crate::instance::{Instance, PushContext};
use crate::limits::IngesterLimits;
use crate::metrics::IngesterMetrics;
use crate::push_view::PushView;
use crate::tail::{TailSender, Tailer};
use crate::wal_record::{decode, expand, Record};
use crate::{query, samples};

/// How often the uncompressed head blocks are checked against
/// `ingester.max_head_memory_mb`.
const HEAD_CHECK_PERIOD: Duration = Duration::from_secs(1);

/// Where the ingester keeps its state and sends its chunks.
pub struct IngesterDeps {
    /// Object storage for flushed chunks and index files; `None` keeps
    /// everything in memory (no flushing).
    pub store: Option<Arc<ChunkStore>>,
    /// WAL directory (used when `wal.enabled`).
    pub wal_dir: PathBuf,
    /// Name written into index file names, unique per ingester.
    pub writer_id: String,
    /// Per-tenant limits and what they need to know about the ring.
    pub limits: IngesterLimits,
}

/// Holds every tenant's in-memory streams.
pub struct Ingester {
    config: IngesterConfig,
    limits: IngesterLimits,
    instances: RwLock<HashMap<TenantId, Arc<Instance>>>,
    metrics: IngesterMetrics,
    flusher: Option<Flusher>,
    wal: Option<Wal>,
    seq: AtomicU64,
    stopping: AtomicBool,
    flush_requested: Notify,
}

impl std::fmt::Debug for Ingester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingester")
            .field("tenants", &self.instances.read().len())
            .field("wal", &self.wal.is_some())
            .finish()
    }
}

/// Opens the WAL. A checkpoint that is corrupt while the segments it
/// covered are gone cannot be replayed; rather than refuse to start (and
/// crash-loop under a supervisor), it is renamed `*.corrupt` for
/// inspection, reported, and the WAL reopened with what remains, as Loki
/// keeps running on WAL corruption.
async fn open_wal(
    config: sluice_wal::WalConfig,
    metrics: &IngesterMetrics,
) -> Result<(Wal, sluice_wal::Replay), IngesterError> {
    let dir = config.dir.display().to_string();
    for _ in 0..3 {
        let attempt = config.clone();
        let opened = tokio::task::spawn_blocking(move || Wal::open(attempt))
            .await
            .map_err(|err| IngesterError::Startup(format!("opening WAL: {err}")))?;
        match opened {
            Ok(opened) => return Ok(opened),
            Err(sluice_wal::WalError::CheckpointUnrecoverable {
                checkpoint,
                missing_segments,
                ..
            }) => {
                metrics.wal_replay_corruptions.inc();
                let mut aside_name = checkpoint.file_name().unwrap_or_default().to_os_string();
                aside_name.push(".corrupt");
                let aside = checkpoint.with_file_name(aside_name);
                tracing::error!(
                    checkpoint = %checkpoint.display(),
                    moved_to = %aside.display(),
                    ?missing_segments,
                    "WAL checkpoint is corrupt and the segments it covered are gone; data only it held is lost (flushed chunks are safe in storage)"
                );
                std::fs::rename(&checkpoint, &aside).map_err(|err| {
                    IngesterError::Startup(format!(
                        "moving corrupt WAL checkpoint {} aside: {err}",
                        checkpoint.display()
                    ))
                })?;
            }
            Err(err) => {
                return Err(IngesterError::Startup(format!(
                    "opening WAL in {dir}: {err}"
                )))
            }
        }
    }
    Err(IngesterError::Startup(format!(
        "opening WAL in {dir}: checkpoints keep failing"
    )))
}

impl Ingester {
    /// Creates an ingester, registers its metrics, opens the WAL and
    /// replays it (checkpoint, then segments) before returning, so the
    /// caller reports ready only afterwards.
    pub async fn open(
        config: IngesterConfig,
        deps: IngesterDeps,
        registry: &mut Registry,
    ) -> Result<Arc<Ingester>, IngesterError> {
        let metrics = IngesterMetrics::new(registry);
        let flusher = deps
            .store
            .map(|store| Flusher::new(store, deps.writer_id.clone(), &config, metrics.clone()));
        let mut ingester = Ingester {
            config,
            limits: deps.limits,
            instances: RwLock::new(HashMap::new()),
            metrics,
            flusher,
            wal: None,
            seq: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            flush_requested: Notify::new(),
        };
        if ingester.config.wal.enabled {
            let wal_config = sluice_wal::WalConfig {
                dir: deps.wal_dir.clone(),
                fsync: match ingester.config.wal.fsync {
                    FsyncMode::Always => FsyncPolicy::Always,
                    FsyncMode::Never => FsyncPolicy::Never,
                },
                ..sluice_wal::WalConfig::default()
            };
            let (wal, replay) = open_wal(wal_config, &ingester.metrics).await?;
            let ingester_ref = &ingester;
            ingester_ref.replay(replay).await?;
            ingester.wal = Some(wal);
        }
        Ok(Arc::new(ingester))
    }

    /// Replays checkpoint and segment records into memory.
    async fn replay(&self, mut replay: sluice_wal::Replay) -> Result<(), IngesterError> {
        let started = Instant::now();
        let ceiling = self.config.wal.replay_memory_ceiling;
        let mut bytes_since_flush: u64 = 0;
        let mut records: u64 = 0;
        let mut bad_records: u64 = 0;
        let mut max_seq = 0;
        loop {
            let next = replay
                .next_record()
                .map_err(|err| IngesterError::Startup(format!("replaying WAL: {err}")))?;
            let Some(record) = next else {
                break;
            };
            records += 1;
            let expanded = expand(record.data);
            let decoded = match &expanded {
                Ok(inner) => decode(inner.as_deref().unwrap_or(record.data)),
                Err(err) => Err(err.clone()),
            };
            let result = match decoded {
                Ok(Record::Push {
                    seq,
                    tenant,
                    streams,
                }) => {
                    max_seq = max_seq.max(seq);
                    self.replay_instance(tenant).and_then(|instance| {
                        instance.replay_push(seq, &streams, &self.config, &self.metrics)
                    })
                }
                Ok(Record::Checkpoint {
                    seq,
                    tenant,
                    labels,
                    last,
                    chunks,
                }) => {
                    max_seq = max_seq.max(seq);
                    let size: usize = chunks.iter().map(|(_, bytes)| bytes.len()).sum();
                    self.replay_instance(tenant).and_then(|instance| {
                        instance
                            .restore(seq, labels, last, &chunks, &self.config, &self.metrics)
                            .map(|()| size)
                    })
                }
                Err(err) => Err(err),
            };
            match result {
                Ok(size) => bytes_since_flush += size as u64,
                Err(err) => {
                    bad_records += 1;
                    tracing::warn!(source = ?record.source, error = %err, "skipping undecodable WAL record");
                }
            }
            if bytes_since_flush > ceiling && self.flusher.is_some() {
                tracing::info!(
                    bytes = bytes_since_flush,
                    ceiling,
                    "WAL replay reached the memory ceiling; flushing"
                );
                self.sweep(true).await;
                bytes_since_flush = 0;
            }
        }
        self.seq.store(max_seq, Ordering::SeqCst);
        self.metrics.wal_records_replayed.inc_by(records);
        let stats = replay.stats();
        if let Some(tail) = &stats.corrupt_tail {
            self.metrics.wal_replay_corruptions.inc();
            tracing::warn!(?tail, "WAL had a corrupt tail; replayed the valid prefix");
        }
        for segment in &stats.corrupt_segments {
            self.metrics.wal_replay_corruptions.inc();
            tracing::error!(?segment, "WAL segment corrupt; skipped the rest of it");
        }
        for checkpoint in &stats.corrupt_checkpoints {
            self.metrics.wal_replay_corruptions.inc();
            tracing::error!(
                ?checkpoint,
                "WAL checkpoint corrupt; replayed from segments instead"
            );
        }
        if bad_records > 0 {
            self.metrics.wal_replay_corruptions.inc();
        }
        tracing::info!(
            records,
            bad_records,
            elapsed = ?started.elapsed(),
            "WAL replay finished"
        );
        Ok(())
    }

    fn replay_instance(&self, tenant: &str) -> Result<Arc<Instance>, String> {
        let tenant = TenantId::new(tenant).map_err(|err| err.to_string())?;
        Ok(self.instance(&tenant))
    }

    fn instance(&self, tenant: &TenantId) -> Arc<Instance> {
        if let Some(instance) = self.instances.read().get(tenant) {
            return Arc::clone(instance);
        }
        Arc::clone(
            self.instances
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Instance::new(tenant.clone()))),
        )
    }

    fn existing_instance(&self, tenant: &TenantId) -> Option<Arc<Instance>> {
        self.instances.read().get(tenant).cloned()
    }

    pub(crate) fn all_instances(&self) -> Vec<Arc<Instance>> {
        self.instances.read().values().cloned().collect()
    }

    /// Appends a push to the tenant's streams (blocking: waits for the WAL).
    pub fn push(&self, tenant: &TenantId, request: &PushRequest) -> Result<(), IngesterError> {
        self.push_view(tenant, &PushView::of(request))
    }

    /// Appends an encoded `PushRequest`, reading its lines in place
    /// (blocking: waits for the WAL).
    pub fn push_encoded(&self, tenant: &TenantId, request: &[u8]) -> Result<(), IngesterError> {
        let view = PushView::decode(request).map_err(IngesterError::MalformedPush)?;
        // The caller's span has these fields to fill (`ingester.push`).
        let span = tracing::Span::current();
        span.record("streams", view.streams.len());
        span.record(
            "entries",
            view.streams
                .iter()
                .map(|stream| stream.entries.len())
                .sum::<usize>(),
        );
        self.push_view(tenant, &view)
    }

    fn push_view(&self, tenant: &TenantId, request: &PushView<'_>) -> Result<(), IngesterError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(IngesterError::ShuttingDown);
        }
        let limits = self.limits.overrides.limits(tenant.as_str());
        let context = PushContext {
            config: &self.config,
            metrics: &self.metrics,
            wal: self.wal.as_ref(),
            seq: self.seq.fetch_add(1, Ordering::SeqCst) + 1,
            limits: &limits,
            max_streams: self.limits.max_streams(&limits),
            discards: &self.limits.discards,
        };
        self.instance(tenant).push(request, &context)
    }

    /// Runs a log query, handing batches to `emit` until it returns false.
    pub fn query(
        &self,
        tenant: &TenantId,
        request: &QueryRequest,
        emit: impl FnMut(QueryResponse) -> bool,
    ) -> Result<(), IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::query(&instance, request, emit),
            // Still validate the query so a bad one fails the same way.
            None => query::parse_log_query(&request.selector, request.pipeline_filter).map(|_| ()),
        }
    }

    /// Runs a sample query, handing batches to `emit` until it returns
    /// false.
    pub fn query_samples(
        &self,
        tenant: &TenantId,
        request: &SampleQueryRequest,
        emit: impl FnMut(SampleQueryResponse) -> bool,
    ) -> Result<(), IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => samples::query_samples(&instance, request, emit),
            // Still validate the query so a bad one fails the same way.
            None => samples::parse_extraction(&request.selector).map(|_| ()),
        }
    }

    /// Answers a label names or label values request.
    pub fn label(
        &self,
        tenant: &TenantId,
        request: &LabelRequest,
    ) -> Result<LabelResponse, IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::label(&instance, request),
            None => Ok(LabelResponse::default()),
        }
    }

    /// Answers a series request.
    pub fn series(
        &self,
        tenant: &TenantId,
        request: &SeriesRequest,
    ) -> Result<SeriesResponse, IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::series(&instance, request),
            None => Ok(SeriesResponse::default()),
        }
    }

    /// Opens a live tail of `query` (a log query) sending into `sender`
    /// until the receiver goes away or the ingester stops.
    pub(crate) fn tail(
        &self,
        tenant: &TenantId,
        query: &str,
        sender: TailSender,
    ) -> Result<(), IngesterError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(IngesterError::ShuttingDown);
        }
        let tailer = Tailer::new(query, self.config.max_dropped_streams, sender)?;
        self.instance(tenant).add_tailer(Arc::new(tailer));
        Ok(())
    }

    /// Returns the number of open live tails of a tenant.
    pub fn tailers_count(&self, tenant: &TenantId) -> usize {
        self.existing_instance(tenant)
            .map_or(0, |instance| instance.tailers_count())
    }

    /// Answers Sluice's `GetChunkStats`.
    pub fn chunk_stats(
        &self,
        tenant: &TenantId,
        request: &ChunkStatsRequest,
    ) -> Result<ChunkStatsResponse, IngesterError> {
        match self.existing_instance(tenant) {
            Some(instance) => query::chunk_stats(&instance, request),
            None => Ok(ChunkStatsResponse::default()),
        }
    }

    /// Answers Loki's `GetStats`.
    pub fn index_stats(
        &self,
        tenant: &TenantId,
        request: &IndexStatsRequest,
    ) -> Result<IndexStatsResponse, IngesterError> {
        query::index_stats(&self.instance_or_empty(tenant), request)
    }

    /// Answers Loki's `GetVolume`.
    pub fn volume(
        &self,
        tenant: &TenantId,
        request: &VolumeRequest,
    ) -> Result<VolumeResponse, IngesterError> {
        query::volume(&self.instance_or_empty(tenant), request)
    }

    /// The tenant's instance, or an empty one (not registered) so that a
    /// request for an unknown tenant is still validated.
    fn instance_or_empty(&self, tenant: &TenantId) -> Arc<Instance> {
        self.existing_instance(tenant)
            .unwrap_or_else(|| Arc::new(Instance::new(tenant.clone())))
    }

    /// Asks the flush loop to flush every chunk now (`POST /flush`).
    pub fn request_flush(&self) {
        self.flush_requested.notify_one();
    }

    /// One flush pass: picks chunks (all when `force`), uploads them, ships
    /// the index, drops what the retain period allows, removes empty
    /// streams.
    pub async fn sweep(&self, force: bool) -> SweepOutcome {
        let Some(flusher) = &self.flusher else {
            return SweepOutcome::default();
        };
        let now = Instant::now();
        let mut ops = Vec::new();
        for instance in self.all_instances() {
            for stream in instance.all_streams() {
                for (chunk_id, reason) in select_for_flush(&stream, &self.config, now, force) {
                    ops.push(FlushOp {
                        tenant: instance.tenant().clone(),
                        stream: Arc::clone(&stream),
                        chunk_id,
                        reason,
                    });
                }
            }
        }
        let outcome = if ops.is_empty() && !flusher.has_pending_index() {
            SweepOutcome::default()
        } else {
            flusher.flush(ops).await
        };
        let now = Instant::now();
        let mut removed = 0;
        for instance in self.all_instances() {
            for stream in instance.all_streams() {
                removed += remove_flushed(&stream, self.config.chunk_retain_period, now);
            }
            instance.remove_empty_streams(&self.metrics);
        }
        self.metrics.memory_chunks.dec_by(removed as i64);
        if outcome.uploaded + outcome.failed > 0 {
            tracing::info!(
                uploaded = outcome.uploaded,
                failed = outcome.failed,
                index_files = outcome.index_files,
                removed_chunks = removed,
                forced = force,
                "flush sweep"
            );
        }
        outcome
    }

    /// Writes a WAL checkpoint of every stream with unflushed data and lets
    /// the WAL drop the segments it covers.
    pub async fn checkpoint(self: &Arc<Ingester>) -> Result<(), IngesterError> {
        if self.wal.is_none() {
            return Ok(());
        }
        let ingester = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let Some(wal) = &ingester.wal else {
                return Ok(());
            };
            let instances = ingester.all_instances();
            let result = wal.checkpoint(|writer| {
                for instance in &instances {
                    instance
                        .checkpoint(&mut |record| {
                            writer.write(&record).map_err(|err| err.to_string())
                        })
                        .map_err(sluice_wal::WalError::checkpoint_aborted)?;
                }
                Ok(())
            });
            match result {
                Ok(_) => {
                    ingester.metrics.checkpoints.inc();
                    Ok(())
                }
                Err(err) => Err(IngesterError::Startup(format!(
                    "writing WAL checkpoint: {err}"
                ))),
            }
        })
        .await
        .map_err(|err| IngesterError::Startup(format!("checkpoint task: {err}")))?
    }

    /// Keeps uncompressed head blocks within `max_head_memory_mb`: when they
    /// hold more, the largest are compressed into blocks early (their
    /// buffers freed) until they hold at most three quarters of it. Blocks
    /// cut early are smaller, so those streams compress a little worse;
    /// nothing is refused or lost. Returns the streams compressed.
    pub(crate) fn trim_heads(&self) -> u64 {
        let limit = self.config.max_head_memory_mb.saturating_mul(1 << 20);
        let mut heads = Vec::new();
        let mut total = 0usize;
        for instance in self.all_instances() {
            for stream in instance.all_streams() {
                let bytes = stream.data.lock().head_bytes();
                if bytes > 0 {
                    total += bytes;
                    heads.push((bytes, stream));
                }
            }
        }
        let mut compressed = 0;
        if limit > 0 && total > limit {
            heads.sort_unstable_by_key(|head| std::cmp::Reverse(head.0));
            let goal = limit / 4 * 3;
            for (_, stream) in heads {
                if total <= goal {
                    break;
                }
                total = total.saturating_sub(stream.data.lock().compress_heads());
                compressed += 1;
            }
            self.metrics.heads_compressed_early.inc_by(compressed);
        }
        self.metrics
            .head_block_bytes
            .set(i64::try_from(total).unwrap_or(i64::MAX));
        compressed
    }

    /// Runs the flush and checkpoint loop until `shutdown`, then stops
    /// taking pushes and (with `wal.flush_on_shutdown`) flushes everything.
    pub async fn run(self: Arc<Ingester>, shutdown: CancellationToken) {
        let mut flush_tick = tokio::time::interval(self.config.flush_check_period);
        flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut checkpoint_tick = tokio::time::interval(self.config.wal.checkpoint_duration);
        checkpoint_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoint_tick.tick().await;
        let mut head_tick = tokio::time::interval(HEAD_CHECK_PERIOD);
        head_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = head_tick.tick(), if self.config.max_head_memory_mb > 0 => {
                    let ingester = Arc::clone(&self);
                    if let Err(err) = tokio::task::spawn_blocking(move || ingester.trim_heads()).await {
                        tracing::error!(error = %err, "head memory check failed");
                    }
                }
                _ = flush_tick.tick() => {
                    self.sweep(false).await;
                }
                _ = self.flush_requested.notified() => {
                    self.sweep(true).await;
                }
                _ = checkpoint_tick.tick() => {
                    if let Err(err) = self.checkpoint().await {
                        tracing::error!(error = %err, "WAL checkpoint failed");
                    }
                }
            }
        }
        self.stop().await;
    }

    /// Stops accepting pushes, flushes everything if configured (retrying a
    /// few times), and closes the WAL.
    pub async fn stop(self: &Arc<Ingester>) {
        self.stopping.store(true, Ordering::SeqCst);
        // Tails end now, so queriers move to the other replicas.
        for instance in self.all_instances() {
            instance.close_tailers();
        }
        if self.config.wal.flush_on_shutdown || self.wal.is_none() {
            let deadline = Instant::now() + self.config.flush_op_timeout;
            for attempt in 1..=5 {
                let outcome = self.sweep(true).await;
                let pending = self
                    .flusher
                    .as_ref()
                    .is_some_and(Flusher::has_pending_index);
                if outcome.failed == 0 && outcome.index_failures == 0 && !pending {
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                tracing::warn!(attempt, "flush on shutdown incomplete; retrying");
                tokio::time::sleep(Duration::from_secs(attempt)).await;
            }
        }
        if let Err(err) = self.checkpoint().await {
            tracing::error!(error = %err, "final WAL checkpoint failed");
        }
    }
}
