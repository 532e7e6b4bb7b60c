//! Reading flushed data: the index cache finds the series and chunks a
//! selector needs, chunks are fetched concurrently (bounded), verified,
//! decoded and scanned off the async runtime.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use sluice_chunk::{Direction, LabelMatcher, Labels, Shard};
use sluice_common::{stage_span, ErrorCode, HttpError, TenantId};
use sluice_logql::{LineFilterChain, Matcher};
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
    pub(crate) filters: Arc<LineFilterChain>,
    pub(crate) from: i64,
    pub(crate) through: i64,
    /// Most entries kept per chunk (the caller applies the real limit).
    pub(crate) limit: usize,
    pub(crate) direction: Direction,
    /// Only the streams of this shard (`None`: all).
    pub(crate) shard: Option<Shard>,
}

/// Reads up to `limit` entries per stream in `[from, through)` that pass the
/// line filters, in the query's direction.
pub(crate) async fn select_logs(
    index: &Arc<IndexCache>,
    tenant: &TenantId,
    selection: Selection<'_>,
) -> Result<Vec<(Labels, Vec<(i64, String)>)>, HttpError> {
    let Selection {
        matchers,
        filters,
        from,
        through,
        limit,
        direction,
        shard,
    } = selection;
    let lookup = stage_span!(
        "store.index_lookup",
        tenant = %tenant,
        series = tracing::field::Empty,
        chunks = tracing::field::Empty,
    );
    let mut found = series(index, tenant, matchers, from, through)
        .instrument(lookup.clone())
        .await?;
    if let Some(shard) = shard {
        found.retain(|series| shard.contains(series.labels.fingerprint()));
    }
    lookup.record("series", found.len());
    lookup.record(
        "chunks",
        found
            .iter()
            .map(|series| series.chunks.len())
            .sum::<usize>(),
    );
    drop(lookup);
    let mut jobs = Vec::new();
    for (series_index, series) in found.iter().enumerate() {
        for chunk in &series.chunks {
            jobs.push((series_index, *chunk));
        }
    }
    let results: Vec<(usize, Vec<(i64, String)>)> = futures::stream::iter(jobs)
        .map(|(series_index, chunk_ref)| {
            let index = Arc::clone(index);
            let tenant = tenant.clone();
            let filters = Arc::clone(&filters);
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
                let entries = tokio::task::spawn_blocking(move || {
                    let _entered = decompress.enter();
                    let mut entries = Vec::new();
                    let mut iter = chunk.iter(from, through, direction)?;
                    while let Some((timestamp, line)) = iter.try_next_entry()? {
                        if filters.matches(line.as_bytes()) {
                            entries.push((timestamp, line.to_string()));
                            if entries.len() >= limit {
                                break;
                            }
                        }
                    }
                    decompress.record("entries", entries.len());
                    Ok::<_, sluice_chunk::ChunkError>(entries)
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
                Ok::<_, HttpError>((series_index, entries))
            }
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut per_series: Vec<Vec<(i64, String)>> = vec![Vec::new(); found.len()];
    for (series_index, entries) in results {
        per_series[series_index].extend(entries);
    }
    Ok(found
        .into_iter()
        .zip(per_series)
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(series, entries)| (series.labels, entries))
        .collect())
}
