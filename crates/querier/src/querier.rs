//! The querier core: asks the ingester over gRPC and merges its batches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use sluice_chunk::Shard;
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::time::now_nanos;
use sluice_common::{stage_span, HttpError, Overrides, TenantId};
use sluice_ingester_client::Ingesters;
use sluice_logql::{EntryFilter, Expr, LogExpr};
use sluice_proto::logproto::{self, LabelRequest, QueryRequest, SeriesRequest};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos};
use sluice_storage::IndexCache;
use tracing::Instrument;

use crate::config::QuerierConfig;
use crate::deletes::{CompiledFilter, DeleteFilterSource, SharedSource};
use crate::ingesters::{ask_all, drain};
use crate::metrics::TailMetrics;
use crate::params::{Direction, TimeRange};
use crate::tenants::{add_tenant_label, selector_text, Tenants, TENANT_LABEL};

/// Answers Loki's read API from the ingester.
#[derive(Debug)]
pub struct Querier {
    pub(crate) config: QuerierConfig,
    pub(crate) overrides: Arc<Overrides>,
    pub(crate) auth_enabled: bool,
    pub(crate) ingesters: Option<Arc<Ingesters>>,
    pub(crate) store: Option<Arc<IndexCache>>,
    deletes: OnceLock<SharedSource>,
    pub(crate) tail_metrics: TailMetrics,
}

/// How [`Querier::collect`] reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    /// Most entries per stream and source (0: all).
    pub(crate) limit: u32,
    pub(crate) direction: Direction,
    /// Only the streams of this shard.
    pub(crate) shard: Option<Shard>,
    /// Lines may be replaced by their digests: the caller only counts.
    pub(crate) line_digests: bool,
    /// The query's whole pipeline decides at the sources which entries
    /// they return (the lines come back as pushed; the caller runs the
    /// pipeline). Without it the query may only hold line filters.
    pub(crate) pipeline_filter: bool,
}

/// One result stream: its labels and entries in the query's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultStream {
    /// Label pairs sorted by name (pipelines may produce empty values,
    /// which Loki shows).
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) entries: Vec<(i64, String)>,
}

impl Querier {
    /// Creates a querier that reads from the ingesters of a ring (for the
    /// recent window) and the store. `ingesters` may be absent (a querier
    /// reading only the store); `store` may be absent (no object storage
    /// configured).
    pub fn new(
        config: QuerierConfig,
        overrides: Arc<Overrides>,
        auth_enabled: bool,
        ingesters: Option<Arc<Ingesters>>,
        store: Option<Arc<IndexCache>>,
    ) -> Arc<Querier> {
        Arc::new(Querier {
            config,
            overrides,
            auth_enabled,
            ingesters,
            store,
            deletes: OnceLock::new(),
            tail_metrics: TailMetrics::default(),
        })
    }

    /// Hides the lines of the tenants' delete requests from every query
    /// result (call once, before serving; later calls are ignored).
    pub fn hide_deleted_lines(&self, source: Arc<dyn DeleteFilterSource>) {
        if self.deletes.set(source).is_err() {
            tracing::warn!("delete filters were already set; keeping the first source");
        }
    }

    /// Returns the tenant's delete filters that touch `range`.
    pub(crate) async fn delete_filters(
        &self,
        tenant: &TenantId,
        range: TimeRange,
    ) -> Result<Vec<CompiledFilter>, HttpError> {
        let Some(source) = self.deletes.get() else {
            return Ok(Vec::new());
        };
        let filters = source.delete_filters(tenant.as_str()).await?;
        Ok(filters
            .iter()
            .filter_map(CompiledFilter::compile)
            .filter(|filter| filter.overlaps(range.start, range.end.max(range.start + 1)))
            .collect())
    }

    /// Returns only the live tail route, for a process whose query frontend
    /// serves the other query routes.
    pub fn tail_router(self: &Arc<Querier>) -> axum::Router {
        crate::http::tail_router(Arc::clone(self))
    }

    /// Registers the querier's metrics (`loki_querier_tail_*`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.tail_metrics.register(registry);
    }

    /// Returns the part of `range` the ingesters are asked about, if any.
    pub(crate) fn ingester_range(&self, range: TimeRange) -> Option<TimeRange> {
        self.ingesters.as_ref()?;
        let within =
            i64::try_from(self.config.query_ingesters_within.as_nanos()).unwrap_or(i64::MAX);
        let start = if within == 0 {
            range.start
        } else {
            range.start.max(now_nanos().saturating_sub(within))
        };
        (start < range.end || range.start == range.end).then_some(TimeRange {
            start,
            end: range.end,
        })
    }

    /// Returns the HTTP routes of the query API.
    pub fn router(self: &Arc<Querier>) -> axum::Router {
        crate::http::router(Arc::clone(self))
    }

    pub(crate) fn request<T>(
        tenant: &TenantId,
        message: T,
    ) -> Result<tonic::Request<T>, HttpError> {
        let mut request = tonic::Request::new(message);
        let value = tenant
            .as_str()
            .parse()
            .map_err(|_| HttpError::bad_request(format!("invalid tenant ID {tenant}")))?;
        request.metadata_mut().insert(ORG_ID_HEADER, value);
        Ok(request)
    }

    /// Parses a query and checks that it is a log query the read path can
    /// run (selector and line filters).
    pub(crate) fn parse_log_query(query: &str) -> Result<LogExpr, HttpError> {
        match sluice_logql::parse_expr(query) {
            Ok(Expr::Log(log)) => {
                if let Some(stage) = log
                    .pipeline
                    .iter()
                    .find(|stage| !matches!(stage, sluice_logql::Stage::LineFilter(_)))
                {
                    return Err(HttpError::bad_request(format!(
                        "pipeline stage `{stage}` is not supported yet: only line filters are"
                    )));
                }
                Ok(log)
            }
            Ok(_) => Err(HttpError::bad_request(
                "metric queries are not supported yet: only log queries can be evaluated",
            )),
            Err(err) => Err(HttpError::bad_request(err.to_string())),
        }
    }

    /// Runs a log query: at most `limit` entries over all streams, the
    /// newest (backward) or oldest (forward) in `[start, end)`.
    pub(crate) async fn select_logs(
        &self,
        tenants: &Tenants,
        query: &str,
        range: TimeRange,
        limit: u32,
        direction: Direction,
    ) -> Result<Vec<ResultStream>, HttpError> {
        let parsed = Self::parse_log_query(query)?;
        let (picked, log) = tenants.select_log(&parsed)?;
        let mut streams = Vec::new();
        for tenant in picked {
            let by_labels = self
                .collect(
                    tenant,
                    &log,
                    range,
                    Read {
                        limit,
                        direction,
                        shard: None,
                        line_digests: false,
                        pipeline_filter: false,
                    },
                )
                .boxed()
                .await?;
            let merge = stage_span!(
                "querier.merge",
                tenant = %tenant,
                streams = by_labels.len(),
            );
            let _merging = merge.enter();
            for (labels_text, mut entries) in by_labels {
                let labels = result_labels(&labels_text, tenants, tenant)?;
                match direction {
                    Direction::Forward => entries.sort_by_key(|(timestamp, _)| *timestamp),
                    Direction::Backward => {
                        entries.sort_by_key(|(timestamp, _)| Reverse(*timestamp))
                    }
                }
                dedupe_sorted(&mut entries);
                streams.push(ResultStream { labels, entries });
            }
        }
        apply_limit(&mut streams, limit as usize, direction);
        streams.retain(|stream| !stream.entries.is_empty());
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    /// Reads the entries of `log` (its matchers and line filters, or its
    /// whole pipeline as a filter when `read.pipeline_filter`; running the
    /// pipeline is the caller's) in `range` from the ingesters
    /// (their recent window) and the store, by canonical stream labels. At
    /// most `read.limit` entries per stream and source (0: all), each
    /// source in `read.direction` order, only the streams of `read.shard`
    /// when given, lines replaced by their digests when `read.line_digests`
    /// (unless delete requests must read the lines); callers merge, sort
    /// and dedupe.
    pub(crate) async fn collect(
        &self,
        tenant: &TenantId,
        log: &LogExpr,
        range: TimeRange,
        read: Read,
    ) -> Result<HashMap<String, Vec<(i64, String)>>, HttpError> {
        let Read {
            limit,
            direction,
            shard,
            line_digests,
            pipeline_filter,
        } = read;
        let keep = Arc::new(
            EntryFilter::new(&log.pipeline)
                .map_err(|err| HttpError::bad_request(err.to_string()))?,
        );
        let deletes = self.delete_filters(tenant, range).boxed().await?;
        // Hidden lines must not use up the limit: read everything in range.
        let limit = if deletes.is_empty() { limit } else { 0 };
        let line_digests = line_digests && deletes.is_empty();
        let mut by_labels: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        if let (Some(ingesters), Some(ingester_range)) =
            (&self.ingesters, self.ingester_range(range))
        {
            let query = QueryRequest {
                selector: log.to_string(),
                limit,
                start: Some(timestamp_from_nanos(ingester_range.start)),
                end: Some(timestamp_from_nanos(ingester_range.end)),
                direction: match direction {
                    Direction::Forward => logproto::Direction::Forward,
                    Direction::Backward => logproto::Direction::Backward,
                } as i32,
                shards: shard.iter().map(Shard::to_string).collect(),
                line_digests,
                pipeline_filter,
            };
            let span = stage_span!(
                "querier.ingesters",
                tenant = %tenant,
                streams = tracing::field::Empty,
                entries = tracing::field::Empty,
            );
            let tenant = tenant.clone();
            let answers = ask_all(ingesters, |mut client| {
                let request = Self::request(&tenant, query.clone());
                Box::pin(async move {
                    let request = request.map_err(|err| err.to_status())?;
                    let batches = client.query(request).boxed().await?.into_inner();
                    drain(batches, |batch| batch.streams).await
                })
            })
            .instrument(span.clone())
            .boxed()
            .await?;
            span.record("streams", answers.iter().map(Vec::len).sum::<usize>());
            span.record(
                "entries",
                answers
                    .iter()
                    .flatten()
                    .map(|stream| stream.entries.len())
                    .sum::<usize>(),
            );
            for stream in answers.into_iter().flatten() {
                by_labels.entry(stream.labels).or_default().extend(
                    stream
                        .entries
                        .into_iter()
                        .map(|entry| (timestamp_to_nanos(entry.timestamp.as_ref()), entry.line)),
                );
            }
        }
        if let Some(index) = &self.store {
            let span = stage_span!(
                "querier.store",
                tenant = %tenant,
                streams = tracing::field::Empty,
                entries = tracing::field::Empty,
            );
            let found = crate::store::select_logs(
                index,
                tenant,
                crate::store::Selection {
                    matchers: &log.matchers,
                    keep,
                    from: range.start,
                    through: range.end,
                    limit: if limit == 0 {
                        usize::MAX
                    } else {
                        limit as usize
                    },
                    direction: match direction {
                        Direction::Forward => sluice_chunk::Direction::Forward,
                        Direction::Backward => sluice_chunk::Direction::Backward,
                    },
                    shard,
                },
            )
            .instrument(span.clone())
            .boxed()
            .await?;
            span.record("streams", found.len());
            span.record(
                "entries",
                found
                    .iter()
                    .map(|(_, entries)| entries.len())
                    .sum::<usize>(),
            );
            for (labels, entries) in found {
                let entries = entries.into_iter().map(|(timestamp, line)| {
                    if line_digests {
                        (timestamp, sluice_chunk::line_digest(&line))
                    } else {
                        (timestamp, line)
                    }
                });
                by_labels
                    .entry(labels.to_string())
                    .or_default()
                    .extend(entries);
            }
        }
        if !deletes.is_empty() {
            for (labels_text, entries) in &mut by_labels {
                let labels = sluice_chunk::Labels::parse(labels_text).map_err(|err| {
                    HttpError::new(
                        sluice_common::ErrorCode::Internal,
                        format!("unparsable stream labels {labels_text:?}: {err}"),
                    )
                })?;
                crate::deletes::apply(&deletes, &labels, entries);
            }
        }
        Ok(by_labels)
    }

    /// Label names (no `name`) or the values of `name`, sorted, over every
    /// tenant read (with several, `__tenant_id__` is one of the names).
    pub(crate) async fn labels(
        &self,
        tenants: &Tenants,
        name: Option<&str>,
        range: TimeRange,
        query: Option<&str>,
    ) -> Result<Vec<String>, HttpError> {
        let matchers = match query {
            Some(selector) => sluice_logql::parse_selector(selector)
                .map_err(|err| HttpError::bad_request(err.to_string()))?,
            None => Vec::new(),
        };
        let (picked, matchers) = tenants.select(&matchers);
        let mut values = Vec::new();
        if tenants.is_multi() {
            match name {
                None if !picked.is_empty() => values.push(TENANT_LABEL.to_string()),
                Some(TENANT_LABEL) => {
                    values.extend(picked.iter().map(|tenant| tenant.to_string()));
                    return Ok(values);
                }
                _ => {}
            }
        }
        let query = (!matchers.is_empty()).then(|| selector_text(&matchers));
        for tenant in picked {
            values.extend(
                self.tenant_labels(tenant, name, range, &matchers, query.as_deref())
                    .boxed()
                    .await?,
            );
        }
        values.sort();
        values.dedup();
        Ok(values)
    }

    async fn tenant_labels(
        &self,
        tenant: &TenantId,
        name: Option<&str>,
        range: TimeRange,
        matchers: &[sluice_logql::Matcher],
        query: Option<&str>,
    ) -> Result<Vec<String>, HttpError> {
        let mut values = Vec::new();
        if let (Some(ingesters), Some(ingester_range)) =
            (&self.ingesters, self.ingester_range(range))
        {
            let label_request = LabelRequest {
                name: name.unwrap_or_default().to_string(),
                values: name.is_some(),
                start: Some(timestamp_from_nanos(ingester_range.start)),
                end: Some(timestamp_from_nanos(ingester_range.end)),
                query: query.unwrap_or_default().to_string(),
            };
            let answers = ask_all(ingesters, |mut client| {
                let request = Self::request(tenant, label_request.clone());
                Box::pin(async move {
                    let request = request.map_err(|err| err.to_status())?;
                    Ok(client.label(request).boxed().await?.into_inner().values)
                })
            })
            .boxed()
            .await?;
            values.extend(answers.into_iter().flatten());
        }
        if let Some(index) = &self.store {
            let found = crate::store::series(index, tenant, matchers, range.start, range.end)
                .boxed()
                .await?;
            for series in found {
                match name {
                    Some(name) => values.extend(series.labels.get(name).map(str::to_string)),
                    None => values.extend(series.labels.iter().map(|label| label.name.clone())),
                }
            }
        }
        Ok(values)
    }

    /// Label sets of the streams matching any selector, sorted, over every
    /// tenant read (with several, each carries `__tenant_id__`).
    pub(crate) async fn series(
        &self,
        tenants: &Tenants,
        selectors: Vec<String>,
        range: TimeRange,
    ) -> Result<Vec<Vec<(String, String)>>, HttpError> {
        // Loki reads a lone `{}` as "every series" before parsing.
        let selectors: Vec<String> = selectors
            .into_iter()
            .filter(|selector| selector.split_whitespace().collect::<String>() != "{}")
            .collect();
        let mut groups = Vec::with_capacity(selectors.len());
        for selector in &selectors {
            groups.push(
                sluice_logql::parse_selector(selector)
                    .map_err(|err| HttpError::bad_request(err.to_string()))?,
            );
        }
        let mut series = Vec::new();
        for tenant in tenants.all() {
            // The groups that apply to this tenant, without their
            // `__tenant_id__` matchers; none at all means every series.
            let mut tenant_groups = Vec::with_capacity(groups.len());
            for group in &groups {
                let (picked, rest) = tenants.select(group);
                if picked.contains(&tenant) {
                    tenant_groups.push(rest);
                }
            }
            if !groups.is_empty() && tenant_groups.is_empty() {
                continue;
            }
            let found = self
                .tenant_series(tenant, tenant_groups, range)
                .boxed()
                .await?;
            series.extend(found.into_iter().map(|mut labels| {
                if tenants.is_multi() {
                    add_tenant_label(&mut labels, tenant);
                }
                labels
            }));
        }
        series.sort();
        series.dedup();
        Ok(series)
    }

    async fn tenant_series(
        &self,
        tenant: &TenantId,
        mut groups: Vec<Vec<sluice_logql::Matcher>>,
        range: TimeRange,
    ) -> Result<Vec<Vec<(String, String)>>, HttpError> {
        // A group with no matchers left (only `__tenant_id__` ones) asks
        // for every series.
        if groups.iter().any(Vec::is_empty) {
            groups.clear();
        }
        let mut series: Vec<Vec<(String, String)>> = Vec::new();
        if let (Some(ingesters), Some(ingester_range)) =
            (&self.ingesters, self.ingester_range(range))
        {
            let series_request = SeriesRequest {
                start: Some(timestamp_from_nanos(ingester_range.start)),
                end: Some(timestamp_from_nanos(ingester_range.end)),
                groups: groups.iter().map(|group| selector_text(group)).collect(),
                shards: Vec::new(),
            };
            let answers = ask_all(ingesters, |mut client| {
                let request = Self::request(tenant, series_request.clone());
                Box::pin(async move {
                    let request = request.map_err(|err| err.to_status())?;
                    Ok(client.series(request).boxed().await?.into_inner().series)
                })
            })
            .boxed()
            .await?;
            series.extend(answers.into_iter().flatten().map(|identifier| {
                let mut labels: Vec<(String, String)> = identifier.labels.into_iter().collect();
                labels.sort();
                labels
            }));
        }
        if let Some(index) = &self.store {
            if groups.is_empty() {
                groups.push(Vec::new());
            }
            for matchers in &groups {
                let found = crate::store::series(index, tenant, matchers, range.start, range.end)
                    .boxed()
                    .await?;
                series.extend(found.into_iter().map(|found| found.labels.to_pairs()));
            }
        }
        Ok(series)
    }
}

/// The labels of a result stream read for `tenant`: `labels_text` (as
/// ingesters and the store write it) as pairs, with `__tenant_id__` added
/// when the read spans several tenants.
pub(crate) fn result_labels(
    labels_text: &str,
    tenants: &Tenants,
    tenant: &TenantId,
) -> Result<Vec<(String, String)>, HttpError> {
    let labels = sluice_chunk::Labels::parse(labels_text).map_err(|err| {
        HttpError::new(
            sluice_common::ErrorCode::Internal,
            format!("unparsable stream labels {labels_text:?}: {err}"),
        )
    })?;
    let mut pairs = labels.to_pairs();
    if tenants.is_multi() {
        add_tenant_label(&mut pairs, tenant);
    }
    Ok(pairs)
}

/// Drops entries repeated exactly (same timestamp and line): the same data
/// can come from an ingester (flushed chunks kept for the retain period)
/// and the store, or from several replicas. `entries` is sorted by time.
pub(crate) fn dedupe_sorted(entries: &mut Vec<(i64, String)>) {
    let mut kept: Vec<(i64, String)> = Vec::with_capacity(entries.len());
    let mut run_start = 0;
    for entry in entries.drain(..) {
        if kept.last().is_none_or(|last| last.0 != entry.0) {
            run_start = kept.len();
        }
        if kept[run_start..]
            .iter()
            .any(|existing| existing.1 == entry.1)
        {
            continue;
        }
        kept.push(entry);
    }
    *entries = kept;
}

/// Keeps the first `limit` entries over all streams in the query's
/// direction. Each stream is already in that order, so what a stream keeps
/// is a prefix of it.
pub(crate) fn apply_limit(streams: &mut [ResultStream], limit: usize, direction: Direction) {
    // Heap of (ordering key, stream index); the key makes the next entry in
    // the query's direction the greatest.
    let key = |timestamp: i64| match direction {
        Direction::Forward => Reverse(timestamp),
        Direction::Backward => Reverse(timestamp.saturating_neg()),
    };
    let mut taken = vec![0usize; streams.len()];
    let mut heap = BinaryHeap::new();
    for (index, stream) in streams.iter().enumerate() {
        if let Some((timestamp, _)) = stream.entries.first() {
            heap.push((key(*timestamp), Reverse(index)));
        }
    }
    let mut remaining = limit;
    while remaining > 0 {
        let Some((_, Reverse(index))) = heap.pop() else {
            break;
        };
        taken[index] += 1;
        remaining -= 1;
        if let Some((timestamp, _)) = streams[index].entries.get(taken[index]) {
            heap.push((key(*timestamp), Reverse(index)));
        }
    }
    for (stream, keep) in streams.iter_mut().zip(taken) {
        stream.entries.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, timestamps: &[i64]) -> ResultStream {
        ResultStream {
            labels: vec![("job".to_string(), name.to_string())],
            entries: timestamps
                .iter()
                .map(|ts| (*ts, format!("{name}{ts}")))
                .collect(),
        }
    }

    #[test]
    fn limit_keeps_newest_overall_backward() {
        let mut streams = vec![stream("a", &[9, 5, 1]), stream("b", &[8, 7, 2])];
        apply_limit(&mut streams, 3, Direction::Backward);
        assert_eq!(streams[0].entries.len(), 1);
        assert_eq!(streams[1].entries.len(), 2);
    }

    #[test]
    fn limit_keeps_oldest_overall_forward() {
        let mut streams = vec![stream("a", &[1, 5, 9]), stream("b", &[2, 7, 8])];
        apply_limit(&mut streams, 4, Direction::Forward);
        let kept: Vec<i64> = streams
            .iter()
            .flat_map(|stream| stream.entries.iter().map(|(ts, _)| *ts))
            .collect();
        assert_eq!(kept, vec![1, 5, 2, 7]);
    }

    #[test]
    fn dedupe_drops_exact_repeats_only() {
        let mut entries = vec![
            (1, "a".to_string()),
            (1, "b".to_string()),
            (1, "a".to_string()),
            (2, "a".to_string()),
            (2, "a".to_string()),
        ];
        dedupe_sorted(&mut entries);
        assert_eq!(
            entries,
            vec![
                (1, "a".to_string()),
                (1, "b".to_string()),
                (2, "a".to_string())
            ]
        );
    }

    #[test]
    fn limit_larger_than_everything_keeps_all() {
        let mut streams = vec![stream("a", &[1, 2]), stream("b", &[])];
        apply_limit(&mut streams, 100, Direction::Forward);
        assert_eq!(streams[0].entries.len(), 2);
    }
}
