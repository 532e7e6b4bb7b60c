//! One tenant's streams, and how pushes, WAL replay and checkpoints change
//! them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use sluice_chunk::{Labels, MemChunk};
use sluice_common::{stage_span, DiscardMetrics, DiscardReason, LimitsConfig, TenantId};
use sluice_logql::Matcher;
use sluice_proto::logproto::EntryAdapter;
use sluice_wal::Wal;

use crate::config::IngesterConfig;
use crate::error::IngesterError;
use crate::limits::{admit_entries, record_refusals, refusal_reply, EntryRules};
use crate::metrics::{IngesterMetrics, TenantLabel};
use crate::push_view::{PushView, StreamView};
use crate::stream::{FlushReason, FlushState, Stream};
use crate::tail::Tailer;
use crate::wal_record::{encode_checkpoint, PushRecordBuilder, PushStream};

/// The streams of one tenant, by fingerprint (a bucket holds the rare
/// label sets whose fingerprints collide).
#[derive(Debug)]
pub(crate) struct Instance {
    tenant: TenantId,
    streams: RwLock<HashMap<u64, Vec<Arc<Stream>>>>,
    /// Open live tails; pushes offer their entries to them.
    tailers: RwLock<Vec<Arc<Tailer>>>,
    /// How many streams `streams` holds (changed under its write lock).
    stream_count: AtomicUsize,
}

/// What a push needs besides the request.
pub(crate) struct PushContext<'a> {
    pub(crate) config: &'a IngesterConfig,
    pub(crate) metrics: &'a IngesterMetrics,
    pub(crate) wal: Option<&'a Wal>,
    pub(crate) seq: u64,
    /// The tenant's limits.
    pub(crate) limits: &'a LimitsConfig,
    /// How many streams the tenant may have here.
    pub(crate) max_streams: usize,
    pub(crate) discards: &'a DiscardMetrics,
}

impl Instance {
    pub(crate) fn new(tenant: TenantId) -> Instance {
        Instance {
            tenant,
            streams: RwLock::new(HashMap::new()),
            tailers: RwLock::new(Vec::new()),
            stream_count: AtomicUsize::new(0),
        }
    }

    /// Appends a push. Streams whose labels do not parse, new streams over
    /// the tenant's stream limit and entries a stream refuses (rate limit,
    /// order) are skipped, counted and reported; the rest is stored
    /// (Loki's partial success; the reply is the last error). With a WAL,
    /// the record of what is accepted is durable before anything changes
    /// in memory, so a refused push changes nothing; the involved streams
    /// stay locked meanwhile, which orders records of a stream exactly as
    /// they are applied.
    pub(crate) fn push(
        &self,
        request: &PushView<'_>,
        context: &PushContext<'_>,
    ) -> Result<(), IngesterError> {
        let now = Instant::now();
        let mut last_error = None;
        let mut groups: Vec<(Arc<Stream>, Vec<&StreamView<'_>>)> =
            Vec::with_capacity(request.streams.len());
        for stream_request in &request.streams {
            let labels = match Labels::parse(stream_request.labels) {
                Ok(labels) if !labels.is_empty() => labels,
                Ok(_) => {
                    last_error = Some(IngesterError::InvalidLabels(
                        "error at least one label pair is required per stream".to_string(),
                    ));
                    continue;
                }
                Err(err) => {
                    last_error = Some(IngesterError::InvalidLabels(err.to_string()));
                    continue;
                }
            };
            if stream_request.entries.is_empty() {
                continue;
            }
            let Some(stream) = self.get_or_create_within(
                labels,
                context.config,
                context.metrics,
                context.max_streams,
            ) else {
                context.discards.record(
                    DiscardReason::StreamLimit,
                    self.tenant.as_str(),
                    stream_request.entries.len() as u64,
                    stream_request
                        .entries
                        .iter()
                        .map(|entry| entry.line.len() as u64)
                        .sum(),
                );
                last_error = Some(IngesterError::StreamLimit);
                continue;
            };
            match groups
                .iter_mut()
                .find(|(existing, _)| Arc::ptr_eq(existing, &stream))
            {
                Some((_, parts)) => parts.push(stream_request),
                None => groups.push((stream, vec![stream_request])),
            }
        }
        // A fixed lock order (labels) rules out deadlocks between pushes.
        groups.sort_by(|a, b| a.0.labels.cmp(&b.0.labels));
        let mut guards: Vec<_> = groups
            .iter()
            .map(|(stream, _)| stream.data.lock())
            .collect();
        let rules = EntryRules::new(context.limits, context.config.max_chunk_age);
        let mut accepted: Vec<Vec<(i64, &str)>> = Vec::with_capacity(groups.len());
        for ((stream, parts), data) in groups.iter().zip(guards.iter_mut()) {
            let total: usize = parts.iter().map(|part| part.entries.len()).sum();
            let (taken, refused) = admit_entries(
                data,
                parts.iter().flat_map(|part| {
                    part.entries
                        .iter()
                        .map(|entry| (entry.timestamp, entry.line))
                }),
                &rules,
                now,
            );
            if !refused.is_empty() {
                record_refusals(context.discards, self.tenant.as_str(), &refused);
                let (code, message) = refusal_reply(
                    self.tenant.as_str(),
                    &stream.labels_text,
                    &refused,
                    total,
                    &rules,
                );
                last_error = Some(IngesterError::EntriesRefused { code, message });
            }
            accepted.push(taken);
        }
        let accepted_any = accepted.iter().any(|taken| !taken.is_empty());
        if let Some(wal) = context.wal.filter(|_| accepted_any) {
            let size: usize = accepted
                .iter()
                .flatten()
                .map(|(_, line)| line.len() + 12)
                .sum();
            let mut builder = PushRecordBuilder::new(context.seq, self.tenant.as_str(), size);
            for ((stream, _), taken) in groups.iter().zip(&accepted) {
                if taken.is_empty() {
                    continue;
                }
                builder.add_stream(&stream.labels_text, taken.len(), taken.iter().copied());
            }
            let durable = stage_span!(
                "ingester.wal_append",
                tenant = %self.tenant,
                bytes = size,
            )
            .in_scope(|| {
                wal.submit(builder.finish(context.config.wal.compression.is_snappy()))
                    .and_then(|ticket| ticket.wait())
            });
            if let Err(err) = durable {
                context.metrics.wal_failures.inc();
                tracing::error!(tenant = %self.tenant, error = %err, "WAL write failed; push refused");
                return Err(IngesterError::Wal(err.to_string()));
            }
        }
        for (taken, data) in accepted.iter().zip(guards.iter_mut()) {
            if taken.is_empty() {
                continue;
            }
            let outcome = data.append(taken.iter().copied(), now);
            data.last_seq = context.seq;
            if outcome.chunks_created > 0 {
                context
                    .metrics
                    .chunks_created
                    .inc_by(outcome.chunks_created as u64);
                context
                    .metrics
                    .memory_chunks
                    .inc_by(outcome.chunks_created as i64);
            }
        }
        drop(guards);
        self.notify_tailers(&groups);
        match last_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Offers the entries of a push, now durable and applied, to the open
    /// tails that select their streams.
    fn notify_tailers(&self, groups: &[(Arc<Stream>, Vec<&StreamView<'_>>)]) {
        let tailers = {
            let tailers = self.tailers.read();
            if tailers.is_empty() {
                return;
            }
            tailers.clone()
        };
        let mut closed = false;
        for tailer in &tailers {
            if tailer.is_closed() {
                closed = true;
                continue;
            }
            for (stream, parts) in groups {
                if tailer.selects(&stream.labels) {
                    let entries: Vec<EntryAdapter> = parts
                        .iter()
                        .flat_map(|part| part.entries.iter())
                        .map(|entry| entry.to_adapter())
                        .collect();
                    tailer.offer(&stream.labels, &stream.labels_text, entries.iter());
                }
            }
        }
        if closed {
            self.remove_closed_tailers();
        }
    }

    /// Registers an open tail.
    pub(crate) fn add_tailer(&self, tailer: Arc<Tailer>) {
        self.remove_closed_tailers();
        self.tailers.write().push(tailer);
    }

    /// Returns the number of open tails.
    pub(crate) fn tailers_count(&self) -> usize {
        self.remove_closed_tailers();
        self.tailers.read().len()
    }

    /// Ends every open tail (the ingester is stopping).
    pub(crate) fn close_tailers(&self) {
        for tailer in self.tailers.write().drain(..) {
            tailer.close();
        }
    }

    fn remove_closed_tailers(&self) {
        self.tailers.write().retain(|tailer| !tailer.is_closed());
    }

    /// Re-applies a push record from the WAL to streams whose state is
    /// older than it.
    pub(crate) fn replay_push(
        &self,
        seq: u64,
        streams: &[PushStream<'_>],
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
    ) -> Result<usize, String> {
        let now = Instant::now();
        let mut bytes = 0;
        for part in streams {
            let labels = Labels::parse(part.labels).map_err(|err| err.to_string())?;
            let stream = self.get_or_create(labels, config, metrics);
            let mut data = stream.data.lock();
            if seq <= data.last_seq {
                continue;
            }
            let outcome = data.append(part.entries.iter().copied(), now);
            data.last_seq = seq;
            bytes += part
                .entries
                .iter()
                .map(|(_, line)| line.len())
                .sum::<usize>();
            if outcome.chunks_created > 0 {
                metrics.chunks_created.inc_by(outcome.chunks_created as u64);
                metrics.memory_chunks.inc_by(outcome.chunks_created as i64);
            }
        }
        Ok(bytes)
    }

    /// Restores one stream from a checkpoint record.
    pub(crate) fn restore(
        &self,
        seq: u64,
        labels: &str,
        last: Option<(i64, &str)>,
        chunks: &[(bool, &[u8])],
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
    ) -> Result<(), String> {
        let labels = Labels::parse(labels).map_err(|err| err.to_string())?;
        let stream = self.get_or_create(labels, config, metrics);
        let mut data = stream.data.lock();
        let now = Instant::now();
        for (closed, bytes) in chunks {
            let chunk = MemChunk::decode_with_sizes(
                bytes::Bytes::copy_from_slice(bytes),
                config.chunk_block_size,
                config.chunk_target_size,
            )
            .map_err(|err| format!("chunk of stream {}: {err}", stream.labels_text))?;
            data.push_chunk(chunk, now);
            if *closed {
                if let Some(desc) = data.chunks.last_mut() {
                    desc.closed = Some(FlushReason::Full);
                }
            }
            metrics.chunks_created.inc();
            metrics.memory_chunks.inc();
        }
        if let Some((timestamp, line)) = last {
            data.last_timestamp = Some(timestamp);
            data.last_line = line.to_string();
        }
        data.last_seq = data.last_seq.max(seq);
        Ok(())
    }

    /// Writes a checkpoint record for every stream with unflushed data.
    pub(crate) fn checkpoint(
        &self,
        write: &mut dyn FnMut(Vec<u8>) -> Result<(), String>,
    ) -> Result<usize, String> {
        let mut written = 0;
        for stream in self.all_streams() {
            let record = {
                let data = stream.data.lock();
                let chunks: Vec<(bool, Vec<u8>)> = data
                    .chunks
                    .iter()
                    .filter(|desc| {
                        !matches!(desc.state, FlushState::Flushed(_)) && desc.chunk.entries() > 0
                    })
                    .map(|desc| (desc.closed.is_some(), desc.chunk.encode()))
                    .collect();
                if chunks.is_empty() {
                    continue;
                }
                let last = data
                    .last_timestamp
                    .map(|timestamp| (timestamp, data.last_line.as_str()));
                encode_checkpoint(
                    data.last_seq,
                    self.tenant.as_str(),
                    &stream.labels_text,
                    last,
                    &chunks,
                )
            };
            write(record)?;
            written += 1;
        }
        Ok(written)
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Returns every stream.
    pub(crate) fn all_streams(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().flatten().cloned().collect()
    }

    /// Removes streams that hold no chunks; returns how many.
    pub(crate) fn remove_empty_streams(&self, metrics: &IngesterMetrics) -> usize {
        let mut streams = self.streams.write();
        let mut removed = 0;
        streams.retain(|_, bucket| {
            bucket.retain(|stream| {
                // A push holding the stream (another Arc) may be about to
                // append; keep it.
                let empty = Arc::strong_count(stream) == 1 && stream.data.lock().is_empty();
                if empty {
                    removed += 1;
                }
                !empty
            });
            !bucket.is_empty()
        });
        if removed > 0 {
            self.stream_count.fetch_sub(removed, Ordering::Relaxed);
            let tenant = TenantLabel {
                tenant: self.tenant.to_string(),
            };
            metrics
                .memory_streams
                .get_or_create(&tenant)
                .dec_by(removed as i64);
            metrics
                .streams_removed
                .get_or_create(&tenant)
                .inc_by(removed as u64);
        }
        removed
    }

    /// Returns the stream with these labels, creating it if needed (WAL
    /// replay and checkpoints: no limit applies).
    pub(crate) fn get_or_create(
        &self,
        labels: Labels,
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
    ) -> Arc<Stream> {
        self.get_or_create_within(labels, config, metrics, usize::MAX)
            .expect("no stream limit")
    }

    /// Returns the stream with these labels, creating it only while the
    /// tenant has fewer than `max_streams` streams.
    pub(crate) fn get_or_create_within(
        &self,
        labels: Labels,
        config: &IngesterConfig,
        metrics: &IngesterMetrics,
        max_streams: usize,
    ) -> Option<Arc<Stream>> {
        let fingerprint = labels.fingerprint();
        if let Some(stream) = self.find(fingerprint, &labels) {
            return Some(stream);
        }
        let mut streams = self.streams.write();
        if let Some(stream) = streams
            .get(&fingerprint)
            .and_then(|bucket| bucket.iter().find(|stream| stream.labels == labels))
        {
            return Some(Arc::clone(stream));
        }
        if self.stream_count.load(Ordering::Relaxed) >= max_streams {
            return None;
        }
        let stream = Arc::new(Stream::new(labels, config));
        streams
            .entry(fingerprint)
            .or_default()
            .push(Arc::clone(&stream));
        self.stream_count.fetch_add(1, Ordering::Relaxed);
        let tenant = TenantLabel {
            tenant: self.tenant.to_string(),
        };
        metrics.memory_streams.get_or_create(&tenant).inc();
        metrics.streams_created.get_or_create(&tenant).inc();
        Some(stream)
    }

    fn find(&self, fingerprint: u64, labels: &Labels) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .get(&fingerprint)?
            .iter()
            .find(|stream| &stream.labels == labels)
            .cloned()
    }

    /// Returns the streams whose labels satisfy every matcher.
    pub(crate) fn matching(&self, matchers: &[Matcher]) -> Vec<Arc<Stream>> {
        let streams = self.streams.read();
        let mut matched: Vec<Arc<Stream>> = streams
            .values()
            .flatten()
            .filter(|stream| {
                matchers
                    .iter()
                    .all(|matcher| matcher.matches(stream.labels.get(&matcher.name).unwrap_or("")))
            })
            .cloned()
            .collect();
        matched.sort_by(|a, b| a.labels.cmp(&b.labels));
        matched
    }
}
