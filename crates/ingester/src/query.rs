//! Reads over a tenant's streams: log queries in batches, label names and
//! values, and series.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sluice_chunk::stats::{AggregateBy, ChunkSet, ChunkStat, VolumeSpec};
use sluice_chunk::{line_digest, ChunkIter, Direction, LineHint, Shard};
use sluice_logql::{EntryFilter, Expr, LabelSet, LogExpr, MatchOp, Matcher, Stage};
use sluice_proto::logproto::{
    self, ChunkStatsRequest, ChunkStatsResponse, EntryAdapter, IndexStatsRequest,
    IndexStatsResponse, LabelRequest, LabelResponse, QueryRequest, QueryResponse, SeriesIdentifier,
    SeriesRequest, SeriesResponse, StreamAdapter, StreamChunkStats, Volume, VolumeRequest,
    VolumeResponse,
};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos};

use crate::error::IngesterError;
use crate::instance::Instance;
use crate::stream::{read, FlushState, Stream};

/// Entries per streamed batch.
const BATCH_ENTRIES: usize = 1000;

/// Parses the query the querier forwarded and compiles what decides which
/// entries are sent: any pipeline when `pipeline_filter`, else only line
/// filters.
pub(crate) fn parse_log_query(
    selector: &str,
    pipeline_filter: bool,
) -> Result<(LogExpr, EntryFilter), IngesterError> {
    let log = match sluice_logql::parse_expr(selector)? {
        Expr::Log(log) => log,
        other => {
            return Err(IngesterError::UnsupportedQuery(format!(
                "ingester queries must be log queries, got `{other}`"
            )))
        }
    };
    if !pipeline_filter {
        if let Some(stage) = log
            .pipeline
            .iter()
            .find(|stage| !matches!(stage, Stage::LineFilter(_)))
        {
            return Err(IngesterError::UnsupportedQuery(format!(
                "pipeline stage `{stage}` needs pipeline_filter: otherwise only line filters are supported"
            )));
        }
    }
    let keep = EntryFilter::new(&log.pipeline)
        .map_err(|err| IngesterError::UnsupportedQuery(err.to_string()))?;
    Ok((log, keep))
}

/// Runs a log query, handing batches of at most [`BATCH_ENTRIES`] entries to
/// `emit`; stops early when `emit` returns false (the client went away).
pub(crate) fn query(
    instance: &Instance,
    request: &QueryRequest,
    emit: impl FnMut(QueryResponse) -> bool,
) -> Result<(), IngesterError> {
    let (log, keep) = parse_log_query(&request.selector, request.pipeline_filter)?;
    let from = timestamp_to_nanos(request.start.as_ref());
    let through = timestamp_to_nanos(request.end.as_ref());
    let direction = match logproto::Direction::try_from(request.direction) {
        Ok(logproto::Direction::Forward) => Direction::Forward,
        _ => Direction::Backward,
    };
    let limit = if request.limit == 0 {
        usize::MAX
    } else {
        request.limit as usize
    };
    let shard = query_shard(&request.shards)?;
    let render: &dyn Fn(&str) -> String = if request.line_digests {
        &line_digest
    } else {
        &str::to_string
    };
    let mut batches = Batches::new(BATCH_ENTRIES, emit);
    let range = (from, through);
    let hint = Arc::new(LineHint::contains(keep.required_substrings()));
    read_streams(
        instance,
        &log.matchers,
        shard,
        (range, &hint),
        direction,
        |stream, iters| {
            let mut keep = keep.for_stream(|| LabelSet::new(stream.labels.to_pairs()));
            let entries = read(
                iters,
                direction,
                &mut |timestamp, line| keep.keeps(timestamp, line),
                render,
                limit,
            )
            .map_err(|source| stream.chunk_error(source))?;
            let mut entries = entries.into_iter().peekable();
            while entries.peek().is_some() {
                let piece: Vec<EntryAdapter> = entries
                    .by_ref()
                    .take(BATCH_ENTRIES)
                    .map(|(timestamp, line)| EntryAdapter {
                        timestamp: Some(timestamp_from_nanos(timestamp)),
                        line,
                        structured_metadata: Vec::new(),
                    })
                    .collect();
                let count = piece.len();
                let stream = StreamAdapter {
                    labels: stream.labels_text.clone(),
                    entries: piece,
                    hash: stream.fingerprint,
                };
                if !batches.add(count, |batch| batch.streams.push(stream)) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    batches.finish();
    Ok(())
}

/// Gathers what a read sends into responses of about `size` items each,
/// handed to `emit` (which returns false once the client went away).
pub(crate) struct Batches<R, E> {
    batch: R,
    items: usize,
    size: usize,
    emit: E,
}

impl<R: Default, E: FnMut(R) -> bool> Batches<R, E> {
    pub(crate) fn new(size: usize, emit: E) -> Batches<R, E> {
        Batches {
            batch: R::default(),
            items: 0,
            size,
            emit,
        }
    }

    /// Adds `items` items with `put`, sending the batch once it is full;
    /// false when the client went away.
    pub(crate) fn add(&mut self, items: usize, put: impl FnOnce(&mut R)) -> bool {
        put(&mut self.batch);
        self.items += items;
        if self.items < self.size {
            return true;
        }
        self.items = 0;
        (self.emit)(std::mem::take(&mut self.batch))
    }

    /// Sends what is left.
    pub(crate) fn finish(mut self) {
        if self.items > 0 {
            (self.emit)(self.batch);
        }
    }
}

/// Calls `visit` with each stream `matchers` select (only those of `shard`
/// when given) that holds data in `[from, through)`, and iterators over
/// its chunks in `direction`, which may skip lines that cannot satisfy
/// `hint` (see [`LineHint`]). The iterators are taken under the stream's
/// lock and `visit` reads them after it is released, so pushes to the
/// stream do not wait for decompression, pipelines or parsers. Stops when
/// `visit` returns false.
pub(crate) fn read_streams(
    instance: &Instance,
    matchers: &[Matcher],
    shard: Option<Shard>,
    ((from, through), hint): ((i64, i64), &Arc<LineHint>),
    direction: Direction,
    mut visit: impl FnMut(&Stream, Vec<ChunkIter>) -> Result<bool, IngesterError>,
) -> Result<(), IngesterError> {
    for stream in instance.matching(matchers) {
        if shard.is_some_and(|shard| !shard.contains(stream.fingerprint)) {
            continue;
        }
        let iters = {
            let data = stream.data.lock();
            if !data.overlaps(from, through) {
                continue;
            }
            data.iters(from, through, direction)
                .map_err(|source| stream.chunk_error(source))?
        };
        let iters = iters
            .into_iter()
            .map(|iter| iter.with_hint(Arc::clone(hint)))
            .collect();
        if !visit(&stream, iters)? {
            break;
        }
    }
    Ok(())
}

/// The shard a query reads (`None`: every stream). Loki sends at most one.
pub(crate) fn query_shard(shards: &[String]) -> Result<Option<Shard>, IngesterError> {
    match shards {
        [] => Ok(None),
        [shard] => shard
            .parse()
            .map(Some)
            .map_err(|err: sluice_chunk::ShardError| {
                IngesterError::UnsupportedQuery(err.to_string())
            }),
        _ => Err(IngesterError::UnsupportedQuery(format!(
            "a query reads one shard, got {}",
            shards.join(", ")
        ))),
    }
}

fn selector_matchers(query: &str) -> Result<Vec<Matcher>, IngesterError> {
    if query.trim().is_empty() {
        return Ok(Vec::new());
    }
    Ok(sluice_logql::parse_selector(query)?)
}

/// Returns label names, or the values of `request.name`, over the streams
/// that hold data in the range and match the optional selector.
pub(crate) fn label(
    instance: &Instance,
    request: &LabelRequest,
) -> Result<LabelResponse, IngesterError> {
    let matchers = selector_matchers(&request.query)?;
    let from = timestamp_to_nanos(request.start.as_ref());
    let through = timestamp_to_nanos(request.end.as_ref());
    let mut values = BTreeSet::new();
    for stream in instance.matching(&matchers) {
        if !stream.data.lock().overlaps(from, through) {
            continue;
        }
        if request.values {
            if let Some(value) = stream.labels.get(&request.name) {
                values.insert(value.to_string());
            }
        } else {
            values.extend(stream.labels.iter().map(|label| label.name.clone()));
        }
    }
    Ok(LabelResponse {
        values: values.into_iter().collect(),
    })
}

/// Returns the label sets of streams with data in the range that match any
/// of the request's selectors (all streams when there are none).
pub(crate) fn series(
    instance: &Instance,
    request: &SeriesRequest,
) -> Result<SeriesResponse, IngesterError> {
    let from = timestamp_to_nanos(request.start.as_ref());
    let through = timestamp_to_nanos(request.end.as_ref());
    let mut groups = Vec::with_capacity(request.groups.len().max(1));
    for group in &request.groups {
        groups.push(selector_matchers(group)?);
    }
    if groups.is_empty() {
        groups.push(Vec::new());
    }
    let mut seen: HashMap<u64, Vec<sluice_chunk::Labels>> = HashMap::new();
    let mut series = Vec::new();
    for matchers in &groups {
        for stream in instance.matching(matchers) {
            if !stream.data.lock().overlaps(from, through) {
                continue;
            }
            let bucket = seen.entry(stream.fingerprint).or_default();
            if bucket.contains(&stream.labels) {
                continue;
            }
            bucket.push(stream.labels.clone());
            series.push(SeriesIdentifier {
                labels: stream
                    .labels
                    .iter()
                    .map(|label| (label.name.clone(), label.value.clone()))
                    .collect(),
            });
        }
    }
    Ok(SeriesResponse { series })
}

/// Parses a stream selector where empty or `{}` selects every stream.
fn selector_or_all(selector: &str) -> Result<Vec<Matcher>, IngesterError> {
    let compact: String = selector.split_whitespace().collect();
    if compact.is_empty() || compact == "{}" {
        return Ok(Vec::new());
    }
    Ok(sluice_logql::parse_selector(selector)?)
}

/// Returns the in-memory chunks of matching streams overlapping
/// `[from, through)`, per stream; without `include_indexed`, only those the
/// store does not index yet (not flushed, or flushed and not yet in a
/// shipped index file).
fn memory_chunks(
    instance: &Instance,
    matchers: &[Matcher],
    from: i64,
    through: i64,
    include_indexed: bool,
) -> Vec<(std::sync::Arc<crate::stream::Stream>, Vec<ChunkStat>)> {
    let mut found = Vec::new();
    for stream in instance.matching(matchers) {
        let chunks: Vec<ChunkStat> = {
            let data = stream.data.lock();
            data.chunks
                .iter()
                .filter(|desc| include_indexed || !matches!(desc.state, FlushState::Flushed(_)))
                .filter_map(|desc| {
                    let (from_ns, through_ns) = desc.chunk.bounds()?;
                    let stat = ChunkStat {
                        from_ns,
                        through_ns,
                        bytes: desc.chunk.uncompressed_bytes() as u64,
                        entries: desc.chunk.entries() as u64,
                    };
                    stat.overlaps(from, through).then_some(stat)
                })
                .collect()
        };
        if !chunks.is_empty() {
            found.push((stream, chunks));
        }
    }
    found
}

/// Sluice's `GetChunkStats`: per stream, the size of every in-memory chunk,
/// including flushed ones still kept (the querier counts a chunk the store
/// also indexes once, and this way none is missed while its index file is
/// on its way to the querier's cache).
pub(crate) fn chunk_stats(
    instance: &Instance,
    request: &ChunkStatsRequest,
) -> Result<ChunkStatsResponse, IngesterError> {
    let matchers = selector_or_all(&request.matchers)?;
    let streams = memory_chunks(instance, &matchers, request.from, request.through, true)
        .into_iter()
        .map(|(stream, chunks)| StreamChunkStats {
            labels: stream.labels_text.clone(),
            chunks: chunks
                .into_iter()
                .map(|chunk| logproto::ChunkStat {
                    from: chunk.from_ns,
                    through: chunk.through_ns,
                    bytes: chunk.bytes,
                    entries: chunk.entries,
                })
                .collect(),
        })
        .collect();
    Ok(ChunkStatsResponse { streams })
}

const NS_PER_MS: i64 = 1_000_000;

fn chunk_set(instance: &Instance, matchers: &[Matcher], from: i64, through: i64) -> ChunkSet {
    let mut set = ChunkSet::new();
    for (stream, chunks) in memory_chunks(instance, matchers, from, through, false) {
        set.add(&stream.labels, chunks);
    }
    set
}

/// Loki's `GetStats` over the chunks the store does not index yet.
pub(crate) fn index_stats(
    instance: &Instance,
    request: &IndexStatsRequest,
) -> Result<IndexStatsResponse, IngesterError> {
    let matchers = sluice_logql::parse_selector(&request.matchers)?;
    let from = request.from.saturating_mul(NS_PER_MS);
    let through = request.through.saturating_mul(NS_PER_MS);
    let stats = chunk_set(instance, &matchers, from, through).stats(from, through);
    Ok(IndexStatsResponse {
        streams: stats.streams,
        chunks: stats.chunks,
        bytes: stats.bytes,
        entries: stats.entries,
    })
}

/// Loki's `GetVolume` over the chunks the store does not index yet.
pub(crate) fn volume(
    instance: &Instance,
    request: &VolumeRequest,
) -> Result<VolumeResponse, IngesterError> {
    let aggregate_by = AggregateBy::parse(&request.aggregate_by)
        .ok_or_else(|| IngesterError::UnsupportedQuery("invalid aggregation option".to_string()))?;
    let mut matchers = selector_or_all(&request.matchers)?;
    let matcher_names: Vec<String> = matchers.iter().map(|m| m.name.clone()).collect();
    // Loki: every target label must be present.
    for target in &request.target_labels {
        if !matcher_names.contains(target) {
            matchers.push(Matcher::new(target.clone(), MatchOp::Re, ".+")?);
        }
    }
    let from = request.from.saturating_mul(NS_PER_MS);
    let through = request.through.saturating_mul(NS_PER_MS);
    let limit = usize::try_from(request.limit).unwrap_or(0);
    let volumes = chunk_set(instance, &matchers, from, through).volumes(
        from,
        through,
        VolumeSpec {
            aggregate_by,
            target_labels: &request.target_labels,
            matcher_names: &matcher_names,
        },
        limit,
    );
    Ok(VolumeResponse {
        volumes: volumes
            .into_iter()
            .map(|volume| Volume {
                name: volume.name,
                volume: volume.bytes,
            })
            .collect(),
        limit: request.limit,
    })
}
