//! Reading flushed data: the index cache finds the series and chunks a
//! selector needs, chunks are fetched concurrently (bounded), verified,
//! decoded and scanned off the async runtime.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use sluice_chunk::{
    line_hash, ChunkError, ChunkIter, ChunkRef, Direction, LabelMatcher, Labels, LineHint, Shard,
};
use sluice_common::{stage_span, ErrorCode, HttpError, TenantId};
use sluice_logql::{EntryFilter, LabelSet, Matcher, SampleExtractor};
use sluice_storage::{select_series, IndexCache, SeriesChunks, StorageError};
use tracing::Instrument;

/// Chunks fetched at once per query.
const FETCH_CONCURRENCY: usize = 16;

fn storage_error(err: StorageError) -> HttpError {
    let code = match err {
        StorageError::Backend { .. } => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    HttpError::new(code, err.to_string())
}

/// Returns the series with data in `[from, through)` matching `matchers`.
pub(crate) async fn series(
    index: &IndexCache,
    tenant: &TenantId,
    matchers: &[Matcher],
    from: i64,
    through: i64,
) -> Result<Vec<SeriesChunks>, HttpError> {
    let readers = index
        .readers(tenant.as_str(), from, through)
        .await
        .map_err(storage_error)?;
    let predicates: Vec<_> = matchers
        .iter()
        .map(|matcher| move |value: &str| matcher.matches(value))
        .collect();
    let label_matchers: Vec<LabelMatcher<'_>> = matchers
        .iter()
        .zip(&predicates)
        .map(|(matcher, predicate)| LabelMatcher::new(&matcher.name, predicate))
        .collect();
    Ok(select_series(&readers, &label_matchers, from, through))
}

/// What to read from the store.
pub(crate) struct Selection<'a> {
    pub(crate) matchers: &'a [Matcher],
    /// Which entries to return (a query's line filters, or its whole
    /// pipeline used as a filter).
    pub(crate) keep: Arc<EntryFilter>,
    pub(crate) from: i64,
    pub(crate) through: i64,
    /// Most entries kept per chunk (the caller applies the real limit).
    pub(crate) limit: usize,
    pub(crate) direction: Direction,
    /// Only the streams of this shard (`None`: all).
    pub(crate) shard: Option<Shard>,
}

/// Reads the entries in `[from, through)` that `keep` keeps, in
/// the query's direction: every one when `limit` is `usize::MAX`, else at
/// least the `limit` first in that direction (over all streams, duplicates
/// not counted) and at most `limit` per chunk and window.
///
/// A limited read goes through the range in windows, newest first going
/// backward (oldest first going forward), each four times as long as the last,
/// and stops after the window in which `limit` distinct entries have been
/// found: the entries of later windows all come after those in the query's
/// order, so they cannot be in the answer. Chunks are fetched per window
/// and only blocks inside it are decompressed, so the first lines of a
/// query over a long range cost about one block per stream.
pub(crate) async fn select_logs(
    index: &Arc<IndexCache>,
    tenant: &TenantId,
    selection: Selection<'_>,
) -> Result<Vec<(Labels, Vec<(i64, String)>)>, HttpError> {
    let Selection {
        matchers,
        keep,
        from,
        through,
        limit,
        direction,
        shard,
    } = selection;
    let found = find(index, tenant, matchers, from, through, shard).await?;
    let scan = Scan {
        index,
        tenant,
        labels: &found.labels,
        direction,
        hint: Arc::new(LineHint::contains(keep.required_substrings())),
    };
    // Up to `limit` entries of a chunk that `keep` keeps.
    let read: ChunkReader<Vec<(i64, String)>> = Arc::new(move |iter, labels| {
        let mut entries = Vec::new();
        let mut keep = keep.for_stream(|| LabelSet::new(labels.to_pairs()));
        while let Some((timestamp, line)) = iter.try_next_entry()? {
            if keep.keeps(timestamp, line) {
                entries.push((timestamp, line.to_string()));
                if entries.len() >= limit {
                    break;
                }
            }
        }
        let count = entries.len();
        Ok((entries, count))
    });
    let mut per_series: Vec<Vec<(i64, String)>> = vec![Vec::new(); found.series.len()];
    if limit == usize::MAX {
        for (series_index, entries) in scan.window(&found.chunks, from, through, &read).await? {
            per_series[series_index].extend(entries);
        }
    } else {
        let mut distinct = 0;
        for (window_from, window_through) in Windows::new(from, through, direction) {
            let mut window: Vec<Vec<(i64, String)>> = vec![Vec::new(); found.series.len()];
            for (series_index, entries) in scan
                .window(&found.chunks, window_from, window_through, &read)
                .await?
            {
                window[series_index].extend(entries);
            }
            for (series_index, mut entries) in window.into_iter().enumerate() {
                if entries.is_empty() {
                    continue;
                }
                // Replicas flush the same entries in several chunks.
                entries.sort_unstable();
                entries.dedup();
                distinct += entries.len();
                per_series[series_index].extend(entries);
            }
            if distinct >= limit {
                break;
            }
        }
    }
    Ok(found
        .series
        .into_iter()
        .zip(per_series)
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(series, entries)| (series.labels, entries))
        .collect())
}

/// Samples of one series: `(timestamp, line digest, value)`.
pub(crate) type Samples = Vec<(i64, u64, f64)>;

/// Samples of each series from each stream, by stream fingerprint and
/// series labels.
pub(crate) type StreamSamples = HashMap<(u64, LabelSet), Samples>;

/// Runs `extractor` over every entry in `[from, through)` of the streams
/// `matchers` select (only those of `shard` when given), chunk by chunk
/// as they are read: no line outlives its chunk's scan. Copies of an
/// entry (chunks several replicas flushed) are all returned.
pub(crate) async fn select_samples(
    index: &Arc<IndexCache>,
    tenant: &TenantId,
    matchers: &[Matcher],
    extractor: Arc<SampleExtractor>,
    (from, through): (i64, i64),
    shard: Option<Shard>,
) -> Result<StreamSamples, HttpError> {
    let found = find(index, tenant, matchers, from, through, shard).await?;
    let scan = Scan {
        index,
        tenant,
        labels: &found.labels,
        direction: Direction::Forward,
        hint: Arc::new(LineHint::contains(extractor.required_substrings())),
    };
    let read: ChunkReader<HashMap<LabelSet, Samples>> = Arc::new(move |iter, labels| {
        let mut by_series: HashMap<LabelSet, Samples> = HashMap::new();
        let mut extract = extractor.for_stream(&LabelSet::new(labels.to_pairs()));
        let mut count = 0;
        while let Some((timestamp, line)) = iter.try_next_entry()? {
            if let Some((series, value)) = extract.process(timestamp, line) {
                count += 1;
                by_series
                    .entry(series)
                    .or_default()
                    .push((timestamp, line_hash(line), value));
            }
        }
        Ok((by_series, count))
    });
    let mut samples = StreamSamples::new();
    for (series_index, by_series) in scan.window(&found.chunks, from, through, &read).await? {
        let fingerprint = found.labels[series_index].fingerprint();
        for (series, values) in by_series {
            samples
                .entry((fingerprint, series))
                .or_default()
                .extend(values);
        }
    }
    Ok(samples)
}

/// The series a read touches and their chunks.
struct Found {
    series: Vec<SeriesChunks>,
    /// Labels of the series, by index.
    labels: Vec<Arc<Labels>>,
    /// Every chunk, with the index of its series.
    chunks: Vec<(usize, ChunkRef)>,
}

/// Looks up the series and chunks of a read in the index.
async fn find(
    index: &IndexCache,
    tenant: &TenantId,
    matchers: &[Matcher],
    from: i64,
    through: i64,
    shard: Option<Shard>,
) -> Result<Found, HttpError> {
    let lookup = stage_span!(
        "store.index_lookup",
        tenant = %tenant,
        series = tracing::field::Empty,
        chunks = tracing::field::Empty,
    );
    let mut series = self::series(index, tenant, matchers, from, through)
        .instrument(lookup.clone())
        .await?;
    if let Some(shard) = shard {
        series.retain(|one| shard.contains(one.labels.fingerprint()));
    }
    lookup.record("series", series.len());
    lookup.record(
        "chunks",
        series.iter().map(|one| one.chunks.len()).sum::<usize>(),
    );
    let labels = series
        .iter()
        .map(|one| Arc::new(one.labels.clone()))
        .collect();
    let chunks = series
        .iter()
        .enumerate()
        .flat_map(|(series_index, one)| one.chunks.iter().map(move |chunk| (series_index, *chunk)))
        .collect();
    Ok(Found {
        series,
        labels,
        chunks,
    })
}

/// What a scan makes of the entries of one chunk in a window (given the
/// chunk's iterator and its stream's labels), and how many entries it
/// made it of (for the trace).
type ChunkReader<T> = Arc<Read<T>>;

/// See [`ChunkReader`].
type Read<T> = dyn Fn(&mut ChunkIter, &Labels) -> Result<(T, usize), ChunkError> + Send + Sync;

/// Reading chunks for one query: what every window shares.
struct Scan<'a> {
    index: &'a Arc<IndexCache>,
    tenant: &'a TenantId,
    /// Labels of the series, by index.
    labels: &'a [Arc<Labels>],
    direction: Direction,
    /// What every line the query keeps contains: chunks may skip the rest.
    hint: Arc<LineHint>,
}

impl Scan<'_> {
    /// Fetches the chunks of `chunks` that overlap `[from, through)`
    /// (bounded concurrency) and returns, per chunk, what `read` makes of
    /// its entries in the window, by series index.
    async fn window<T: Send + 'static>(
        &self,
        chunks: &[(usize, ChunkRef)],
        from: i64,
        through: i64,
        read: &ChunkReader<T>,
    ) -> Result<Vec<(usize, T)>, HttpError> {
        // Collected: a filtering iterator held across awaits trips the
        // compiler's Send check of the caller's boxed future.
        let overlapping: Vec<(usize, ChunkRef)> = chunks
            .iter()
            .filter(|(_, chunk)| chunk.through_ns >= from && chunk.from_ns < through)
            .copied()
            .collect();
        futures::stream::iter(overlapping)
            .map(|(series_index, chunk_ref)| {
                let index = Arc::clone(self.index);
                let tenant = self.tenant.clone();
                let read = Arc::clone(read);
                let labels = Arc::clone(&self.labels[series_index]);
                let direction = self.direction;
                let hint = Arc::clone(&self.hint);
                async move {
                    let chunk = index
                        .store()
                        .get_chunk(tenant.as_str(), &chunk_ref)
                        .instrument(stage_span!(
                            "store.chunk_fetch",
                            tenant = %tenant,
                            uncompressed_bytes = chunk_ref.size_bytes,
                        ))
                        .await
                        .map_err(storage_error)?;
                    let decompress = stage_span!(
                        "store.chunk_decompress",
                        tenant = %tenant,
                        entries = tracing::field::Empty,
                    );
                    let made = tokio::task::spawn_blocking(move || {
                        let _entered = decompress.enter();
                        let mut iter = chunk.iter(from, through, direction)?.with_hint(hint);
                        let (made, entries) = read(&mut iter, &labels)?;
                        decompress.record("entries", entries);
                        Ok::<_, ChunkError>(made)
                    })
                    .await
                    .map_err(|err| {
                        HttpError::new(ErrorCode::Internal, format!("chunk scan task: {err}"))
                    })?
                    .map_err(|err| {
                        HttpError::new(
                            ErrorCode::Internal,
                            format!(
                                "reading chunk {}: {err}",
                                index
                                    .store()
                                    .chunk_key(tenant.as_str(), &chunk_ref)
                                    .to_path()
                            ),
                        )
                    })?;
                    Ok::<_, HttpError>((series_index, made))
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await
    }
}

/// The windows a limited read goes through: `[from, through)` cut into
/// adjacent pieces in the read's direction, the first 1/64 of the range
/// (at least a minute), each next one four times as long as the one
/// before, so a read that finds too little passes over each chunk at most
/// about four times.
struct Windows {
    from: i64,
    through: i64,
    length: i64,
    direction: Direction,
}

impl Windows {
    const FIRST_FRACTION: i64 = 64;
    const GROWTH: i64 = 4;
    const SHORTEST_NS: i64 = 60_000_000_000;

    fn new(from: i64, through: i64, direction: Direction) -> Windows {
        let span = through.saturating_sub(from);
        Windows {
            from,
            through,
            length: (span / Self::FIRST_FRACTION).max(Self::SHORTEST_NS),
            direction,
        }
    }
}

impl Iterator for Windows {
    type Item = (i64, i64);

    fn next(&mut self) -> Option<(i64, i64)> {
        if self.from >= self.through {
            return None;
        }
        let window = match self.direction {
            Direction::Backward => {
                let start = self.through.saturating_sub(self.length).max(self.from);
                let window = (start, self.through);
                self.through = start;
                window
            }
            Direction::Forward => {
                let end = self.from.saturating_add(self.length).min(self.through);
                let window = (self.from, end);
                self.from = end;
                window
            }
        };
        self.length = self.length.saturating_mul(Self::GROWTH);
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000_000;

    #[test]
    fn windows_cover_the_range_once_newest_first_going_backward() {
        let windows: Vec<_> = Windows::new(0, 1024 * MINUTE, Direction::Backward).collect();
        assert_eq!(windows[0], (1008 * MINUTE, 1024 * MINUTE));
        assert_eq!(windows[1], (944 * MINUTE, 1008 * MINUTE));
        for pair in windows.windows(2) {
            assert_eq!(pair[1].1, pair[0].0, "adjacent, no gap or overlap");
        }
        let lengths: Vec<i64> = windows
            .iter()
            .map(|(from, through)| through - from)
            .collect();
        for pair in lengths[..lengths.len() - 1].windows(2) {
            assert_eq!(pair[1], 4 * pair[0]);
        }
        assert_eq!(windows.last().unwrap().0, 0);
        assert_eq!(windows.len(), 4, "{windows:?}");
    }

    #[test]
    fn windows_go_oldest_first_forward_and_start_at_a_minute() {
        let windows: Vec<_> = Windows::new(10, 10 + 5 * MINUTE, Direction::Forward).collect();
        assert_eq!(
            windows,
            vec![(10, 10 + MINUTE), (10 + MINUTE, 10 + 5 * MINUTE)]
        );
        assert_eq!(Windows::new(5, 5, Direction::Forward).count(), 0);
    }
}
