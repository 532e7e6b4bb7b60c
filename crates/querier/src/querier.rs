//! The querier core: asks the ingester over gRPC and merges its batches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::{HttpError, LimitsConfig, TenantId};
use sluice_logql::Expr;
use sluice_proto::logproto::querier_client::QuerierClient;
use sluice_proto::logproto::{self, LabelRequest, QueryRequest, SeriesRequest};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos, GrpcChannel};

use crate::config::QuerierConfig;
use crate::params::{Direction, TimeRange};

/// Answers Loki's read API from the ingester.
#[derive(Debug)]
pub struct Querier {
    pub(crate) config: QuerierConfig,
    pub(crate) limits: LimitsConfig,
    pub(crate) auth_enabled: bool,
    ingester: QuerierClient<GrpcChannel>,
}

/// One result stream: its labels and entries in the query's direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResultStream {
    pub(crate) labels: sluice_chunk::Labels,
    pub(crate) entries: Vec<(i64, String)>,
}

impl Querier {
    /// Creates a querier that reads through `ingester` (an in-process or
    /// network gRPC channel).
    pub fn new(
        config: QuerierConfig,
        limits: LimitsConfig,
        auth_enabled: bool,
        ingester: GrpcChannel,
    ) -> Arc<Querier> {
        Arc::new(Querier {
            config,
            limits,
            auth_enabled,
            ingester: QuerierClient::new(ingester)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        })
    }

    /// Returns the HTTP routes of the query API.
    pub fn router(self: &Arc<Querier>) -> axum::Router {
        crate::http::router(Arc::clone(self))
    }

    fn request<T>(tenant: &TenantId, message: T) -> Result<tonic::Request<T>, HttpError> {
        let mut request = tonic::Request::new(message);
        let value = tenant
            .as_str()
            .parse()
            .map_err(|_| HttpError::bad_request(format!("invalid tenant ID {tenant}")))?;
        request.metadata_mut().insert(ORG_ID_HEADER, value);
        Ok(request)
    }

    /// Parses a query and checks that it is a log query.
    pub(crate) fn parse_log_query(query: &str) -> Result<(), HttpError> {
        match sluice_logql::parse_expr(query) {
            Ok(Expr::Log(_)) => Ok(()),
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
        tenant: &TenantId,
        query: &str,
        range: TimeRange,
        limit: u32,
        direction: Direction,
    ) -> Result<Vec<ResultStream>, HttpError> {
        Self::parse_log_query(query)?;
        let request = Self::request(
            tenant,
            QueryRequest {
                selector: query.to_string(),
                limit,
                start: Some(timestamp_from_nanos(range.start)),
                end: Some(timestamp_from_nanos(range.end)),
                direction: match direction {
                    Direction::Forward => logproto::Direction::Forward,
                    Direction::Backward => logproto::Direction::Backward,
                } as i32,
                shards: Vec::new(),
            },
        )?;
        let mut client = self.ingester.clone();
        let mut batches = client
            .query(request)
            .boxed()
            .await
            .map_err(|status| HttpError::from_status(&status))?
            .into_inner();
        let mut by_labels: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        while let Some(batch) = batches.next().boxed().await {
            let batch = batch.map_err(|status| HttpError::from_status(&status))?;
            for stream in batch.streams {
                let entries = by_labels.entry(stream.labels).or_default();
                entries.extend(
                    stream
                        .entries
                        .into_iter()
                        .map(|entry| (timestamp_to_nanos(entry.timestamp.as_ref()), entry.line)),
                );
            }
        }
        let mut streams = Vec::with_capacity(by_labels.len());
        for (labels_text, mut entries) in by_labels {
            let labels = sluice_chunk::Labels::parse(&labels_text).map_err(|err| {
                HttpError::new(
                    sluice_common::ErrorCode::Internal,
                    format!("ingester sent unparsable labels {labels_text:?}: {err}"),
                )
            })?;
            match direction {
                Direction::Forward => entries.sort_by_key(|(timestamp, _)| *timestamp),
                Direction::Backward => entries.sort_by_key(|(timestamp, _)| Reverse(*timestamp)),
            }
            streams.push(ResultStream { labels, entries });
        }
        apply_limit(&mut streams, limit as usize, direction);
        streams.retain(|stream| !stream.entries.is_empty());
        streams.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(streams)
    }

    /// Label names (no `name`) or the values of `name`, sorted.
    pub(crate) async fn labels(
        &self,
        tenant: &TenantId,
        name: Option<&str>,
        range: TimeRange,
        query: Option<&str>,
    ) -> Result<Vec<String>, HttpError> {
        if let Some(selector) = query {
            sluice_logql::parse_selector(selector)
                .map_err(|err| HttpError::bad_request(err.to_string()))?;
        }
        let request = Self::request(
            tenant,
            LabelRequest {
                name: name.unwrap_or_default().to_string(),
                values: name.is_some(),
                start: Some(timestamp_from_nanos(range.start)),
                end: Some(timestamp_from_nanos(range.end)),
                query: query.unwrap_or_default().to_string(),
            },
        )?;
        let mut client = self.ingester.clone();
        let mut values = client
            .label(request)
            .boxed()
            .await
            .map_err(|status| HttpError::from_status(&status))?
            .into_inner()
            .values;
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// Label sets of the streams matching any selector, sorted.
    pub(crate) async fn series(
        &self,
        tenant: &TenantId,
        selectors: Vec<String>,
        range: TimeRange,
    ) -> Result<Vec<Vec<(String, String)>>, HttpError> {
        for selector in &selectors {
            sluice_logql::parse_selector(selector)
                .map_err(|err| HttpError::bad_request(err.to_string()))?;
        }
        let request = Self::request(
            tenant,
            SeriesRequest {
                start: Some(timestamp_from_nanos(range.start)),
                end: Some(timestamp_from_nanos(range.end)),
                groups: selectors,
                shards: Vec::new(),
            },
        )?;
        let mut client = self.ingester.clone();
        let response = client
            .series(request)
            .boxed()
            .await
            .map_err(|status| HttpError::from_status(&status))?
            .into_inner();
        let mut series: Vec<Vec<(String, String)>> = response
            .series
            .into_iter()
            .map(|identifier| {
                let mut labels: Vec<(String, String)> = identifier.labels.into_iter().collect();
                labels.sort();
                labels
            })
            .collect();
        series.sort();
        series.dedup();
        Ok(series)
    }
}

/// Keeps the first `limit` entries over all streams in the query's
/// direction. Each stream is already in that order, so what a stream keeps
/// is a prefix of it.
fn apply_limit(streams: &mut [ResultStream], limit: usize, direction: Direction) {
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
            labels: sluice_chunk::Labels::from_pairs([("job", name)]),
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
    fn limit_larger_than_everything_keeps_all() {
        let mut streams = vec![stream("a", &[1, 2]), stream("b", &[])];
        apply_limit(&mut streams, 100, Direction::Forward);
        assert_eq!(streams[0].entries.len(), 2);
    }
}
