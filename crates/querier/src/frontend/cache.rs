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
use sluice_common::{HttpError, TenantId};

use super::results::{merge_matrix, sort_matrix, Extent, Matrix};
use super::split::grid_floor;
use super::Frontend;

impl Frontend {
    /// Answers one piece `[start, end]` of a metric query evaluated at
    /// `origin + k·step`, from the cache where it can; returns the piece's
    /// series and how many sub-queries went to queriers.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn metric_piece(
        &self,
        tenant: &TenantId,
        query: &str,
        origin: i64,
        step: i64,
        interval: i64,
        (start, end): (i64, i64),
        extra: &[(&str, String)],
    ) -> Result<(Matrix, usize), HttpError> {
        let Some(cache) = &self.results_cache else {
            return Ok((
                self.fetch_matrix(tenant, query, (start, end), extra)
                    .await?,
                1,
            ));
        };
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

        // What the cache cannot answer.
        let mut gaps = Vec::new();
        let mut result = Matrix::new();
        let mut covered = None;
        match &cached {
            Some(extent) if extent.start <= end + step && start <= extent.end + step => {
                if start < extent.start {
                    gaps.push((start, extent.start - step));
                }
                if end > extent.end {
                    gaps.push((extent.end + step, end));
                }
                merge_matrix(&mut result, extent.slice(start, end));
                covered = Some((extent.start.min(start), extent.end.max(end)));
            }
            _ => {
                gaps.push((start, end));
                covered = covered.or(Some((start, end)));
            }
        }
        let fetched = gaps.len();
        let mut fresh = Matrix::new();
        for gap in gaps {
            merge_matrix(
                &mut fresh,
                self.fetch_matrix(tenant, query, gap, extra).await?,
            );
        }
        merge_matrix(&mut result, fresh.clone());
        sort_matrix(&mut result);
        if fetched == 0 {
            return Ok((result, 0));
        }

        // Store what is old enough, joined with what was cached.
        let freshness =
            i64::try_from(self.limits.max_cache_freshness_per_query.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = grid_floor(origin, step, now_nanos().saturating_sub(freshness));
        let Some((extent_start, extent_end)) = covered else {
            return Ok((result, fetched));
        };
        let extent_end = extent_end.min(cutoff);
        if extent_end >= extent_start {
            let mut all = cached
                .map(|extent| extent.slice(extent.start, extent.end))
                .unwrap_or_default();
            merge_matrix(&mut all, fresh);
            sort_matrix(&mut all);
            for points in all.values_mut() {
                points.dedup_by_key(|(ms, _)| *ms);
            }
            let extent = Extent {
                key: key.clone(),
                start: extent_start,
                end: extent_end,
                series: Vec::new(),
            };
            let series = Extent {
                series: all.into_iter().collect(),
                ..extent.clone()
            }
            .slice(extent_start, extent_end)
            .into_iter()
            .collect();
            let extent = Extent { series, ..extent };
            match serde_json::to_vec(&extent) {
                Ok(bytes) => cache.store(&key, bytes).await,
                Err(err) => tracing::warn!(%err, "cannot encode a cache extent"),
            }
        }
        Ok((result, fetched))
    }
}
