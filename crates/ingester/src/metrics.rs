//! The ingester's metrics, with Loki's names.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sluice_common::TenantId;

/// A `tenant` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TenantLabel {
    pub(crate) tenant: String,
}

/// A `reason` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: String,
}

/// Counters and gauges of one ingester.
#[derive(Debug, Clone)]
pub(crate) struct IngesterMetrics {
    pub(crate) memory_streams: Family<TenantLabel, Gauge>,
    pub(crate) streams_created: Family<TenantLabel, Counter>,
    pub(crate) streams_removed: Family<TenantLabel, Counter>,
    pub(crate) memory_chunks: Gauge,
    pub(crate) chunks_created: Counter,
    pub(crate) chunks_flushed: Family<ReasonLabel, Counter>,
    pub(crate) chunks_stored: Family<TenantLabel, Counter>,
    pub(crate) chunk_stored_bytes: Family<TenantLabel, Counter>,
    pub(crate) chunk_size_bytes: Histogram,
    pub(crate) flush_failures: Counter,
    pub(crate) wal_replay_corruptions: Counter,
    pub(crate) wal_records_replayed: Counter,
    pub(crate) wal_failures: Counter,
    pub(crate) checkpoints: Counter,
    pub(crate) head_block_bytes: Gauge,
    pub(crate) heads_compressed_early: Counter,
}

impl IngesterMetrics {
    pub(crate) fn new(registry: &mut Registry) -> IngesterMetrics {
        let metrics = IngesterMetrics {
            memory_streams: Family::default(),
            streams_created: Family::default(),
            streams_removed: Family::default(),
            memory_chunks: Gauge::default(),
            chunks_created: Counter::default(),
            chunks_flushed: Family::default(),
            chunks_stored: Family::default(),
            chunk_stored_bytes: Family::default(),
            chunk_size_bytes: Histogram::new(exponential_buckets(20_000.0, 2.0, 10)),
            flush_failures: Counter::default(),
            wal_replay_corruptions: Counter::default(),
            wal_records_replayed: Counter::default(),
            wal_failures: Counter::default(),
            checkpoints: Counter::default(),
            head_block_bytes: Gauge::default(),
            heads_compressed_early: Counter::default(),
        };
        registry.register(
            "loki_ingester_memory_streams",
            "The total number of streams in memory per tenant.",
            metrics.memory_streams.clone(),
        );
        registry.register(
            "loki_ingester_streams_created",
            "The total number of streams created per tenant.",
            metrics.streams_created.clone(),
        );
        registry.register(
            "loki_ingester_streams_removed",
            "The total number of streams removed per tenant.",
            metrics.streams_removed.clone(),
        );
        registry.register(
            "loki_ingester_memory_chunks",
            "The total number of chunks in memory.",
            metrics.memory_chunks.clone(),
        );
        registry.register(
            "loki_ingester_chunks_created",
            "The total number of chunks created in memory.",
            metrics.chunks_created.clone(),
        );
        registry.register(
            "loki_ingester_chunks_flushed",
            "Total flushed chunks per reason.",
            metrics.chunks_flushed.clone(),
        );
        registry.register(
            "loki_ingester_chunks_stored",
            "Total stored chunks per tenant.",
            metrics.chunks_stored.clone(),
        );
        registry.register(
            "loki_ingester_chunk_stored_bytes",
            "Total bytes stored in chunks per tenant.",
            metrics.chunk_stored_bytes.clone(),
        );
        registry.register(
            "loki_ingester_chunk_size_bytes",
            "Distribution of stored chunk sizes (when stored).",
            metrics.chunk_size_bytes.clone(),
        );
        registry.register(
            "loki_ingester_chunks_flush_failures",
            "Total number of flush failures (chunk or index uploads).",
            metrics.flush_failures.clone(),
        );
        registry.register(
            "loki_ingester_wal_replay_corruptions",
            "WAL segments or checkpoints found corrupt during replay (the valid prefix was replayed).",
            metrics.wal_replay_corruptions.clone(),
        );
        registry.register(
            "loki_ingester_wal_records_replayed",
            "WAL and checkpoint records replayed at startup.",
            metrics.wal_records_replayed.clone(),
        );
        registry.register(
            "loki_ingester_wal_disk_full_failures",
            "Pushes refused because the WAL could not be written.",
            metrics.wal_failures.clone(),
        );
        registry.register(
            "loki_ingester_checkpoint_creations",
            "Checkpoints written.",
            metrics.checkpoints.clone(),
        );
        registry.register(
            "sluice_ingester_head_block_bytes",
            "Bytes of uncompressed head blocks over all streams, as of the last check against ingester.max_head_memory_mb.",
            metrics.head_block_bytes.clone(),
        );
        registry.register(
            "sluice_ingester_heads_compressed_early",
            "Streams whose head blocks were compressed before reaching chunk_block_size because heads exceeded ingester.max_head_memory_mb.",
            metrics.heads_compressed_early.clone(),
        );
        metrics
    }

    /// Records one stored chunk.
    pub(crate) fn record_flush(&self, tenant: &TenantId, reason: &str, size: usize) {
        let tenant = TenantLabel {
            tenant: tenant.to_string(),
        };
        self.chunks_flushed
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        self.chunks_stored.get_or_create(&tenant).inc();
        self.chunk_stored_bytes
            .get_or_create(&tenant)
            .inc_by(size as u64);
        self.chunk_size_bytes.observe(size as f64);
    }
}
