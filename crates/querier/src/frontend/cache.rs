//! The results cache for metric range queries. Each split piece of a query
//! has one cache entry: an extent of evaluation points `[start, end]` with
//! every series' samples there. A later query whose piece lies inside the
//! extent is answered from it; one that reaches past it fetches only the
//! missing part and stores the grown extent. Nothing newer than
//! `max_cache_freshness_per_query` is stored: recent points may still
//! change as late data arrives.
//!
//! The key holds the tenant, so tenants never share entries, and the step
//! and the query's offset from the step grid, so only queries evaluated at
//! the same points share one.

use sluice_common::time::now_nanos;
use sluice_common::HttpError;

use super::handler::{MetricQuery, Sent};
use super::results::{merge_matrix, slice, sort_matrix, Extent, Matrix};
use super::split::grid_floor;
use super::Frontend;

impl Frontend {
    /// Answers one piece `[start, end]` of a metric query, from the cache
    /// where it can; returns the piece's series and the sub-queries sent.
    pub(super) async fn metric_piece(
        &self,
        metric: &MetricQuery<'_>,
        (start, end): (i64, i64),
    ) -> Result<(Matrix, Sent), HttpError> {
        let Some(cache) = &self.results_cache else {
            return self.fetch_matrix(metric, (start, end)).await;
        };
        let MetricQuery {
            tenant,
            query,
            origin,
            step,
            interval,
            ..
        } = *metric;
        let bucket = if interval > 0 {
            start.div_euclid(interval)
        } else {
            0
        };
        let key = format!(
            "{tenant}:{query}:{step}:{}:{bucket}",
            origin.rem_euclid(step)
        );
        let cached: Option<Extent> = cache
            .fetch(std::slice::from_ref(&key))
            .await
            .remove(&key)
            .and_then(|bytes| serde_json::from_slice::<Extent>(&bytes).ok())
            .filter(|extent| extent.key == key);

        // Points known for the piece's neighbourhood, and what the cache
        // cannot answer.
        let (mut known, gaps, covered) = match cached {
            Some(extent) if extent.start <= end + step && start <= extent.end + step => {
                let mut gaps = Vec::new();
                if start < extent.start {
                    gaps.push((start, extent.start - step));
                }
                if end > extent.end {
                    gaps.push((extent.end + step, end));
                }
                let covered = (extent.start.min(start), extent.end.max(end));
                (extent.slice(extent.start, extent.end), gaps, covered)
            }
            _ => (Matrix::new(), vec![(start, end)], (start, end)),
        };
        let fetched = gaps.len();
        let mut sent = Sent::default();
        for gap in gaps {
            let (matrix, gap_sent) = self.fetch_matrix(metric, gap).await?;
            sent.add(gap_sent);
            merge_matrix(&mut known, matrix);
        }
        sort_matrix(&mut known);
        let result = slice(&known, start, end);

        // Store what is old enough: the cached extent grown by the gaps.
        let cutoff = grid_floor(origin, step, now_nanos().saturating_sub(metric.freshness));
        let (extent_start, extent_end) = (covered.0, covered.1.min(cutoff));
        if fetched > 0 && extent_end >= extent_start {
            let extent = Extent {
                key: key.clone(),
                start: extent_start,
                end: extent_end,
                series: slice(&known, extent_start, extent_end)
                    .into_iter()
                    .collect(),
            };
            match serde_json::to_vec(&extent) {
                Ok(bytes) => cache.store(&key, bytes).await,
                Err(err) => tracing::warn!(%err, "cannot encode a cache extent"),
            }
        }
        Ok((result, sent))
    }
}
