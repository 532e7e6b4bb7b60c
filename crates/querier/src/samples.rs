//! Reads for range aggregations that need more than counts: the ingesters
//! run the pipeline and sample extraction themselves (`QuerySample`) and
//! send samples instead of lines; the querier extracts the same samples
//! from the store's chunks as it reads them and merges both, each entry once.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;
use sluice_chunk::Shard;
use sluice_common::{stage_span, ErrorCode, HttpError, TenantId};
use sluice_logql::{LabelSet, LogExpr, SampleExtractor, SampleSeries};
use sluice_proto::logproto::SampleQueryRequest;
use sluice_proto::timestamp_from_nanos;
use tracing::Instrument;

use crate::ingesters::{ask_all, drain};
use crate::params::TimeRange;
use crate::querier::Querier;

/// Samples of one series from one stream: `(timestamp, line digest,
/// value)`. Replicas and the store send the same entry with the same
/// timestamp and digest.
type FromStream = crate::store::StreamSamples;

impl Querier {
    /// Reads the samples of `extraction` (a [`sluice_logql::DataRequest`]'s)
    /// over the streams `log` selects in `range` from the ingesters (their
    /// recent window) and the store, only the streams of `shard` when
    /// given. Delete requests are not applied: the caller reads entries
    /// when any touch the range.
    pub(crate) async fn collect_samples(
        &self,
        tenant: &TenantId,
        log: &LogExpr,
        extraction: &str,
        range: TimeRange,
        shard: Option<Shard>,
    ) -> Result<Vec<SampleSeries>, HttpError> {
        let extractor = SampleExtractor::parse(extraction)
            .map_err(|err| HttpError::bad_request(err.message))?;
        let mut found = FromStream::new();
        if let (Some(ingesters), Some(ingester_range)) =
            (&self.ingesters, self.ingester_range(range))
        {
            let query = SampleQueryRequest {
                selector: extraction.to_string(),
                start: Some(timestamp_from_nanos(ingester_range.start)),
                end: Some(timestamp_from_nanos(ingester_range.end)),
                shards: shard.iter().map(Shard::to_string).collect(),
            };
            let span = stage_span!(
                "querier.ingester_samples",
                tenant = %tenant,
                series = tracing::field::Empty,
                samples = tracing::field::Empty,
            );
            let tenant = tenant.clone();
            let answers = ask_all(ingesters, |mut client| {
                let request = Self::request(&tenant, query.clone());
                Box::pin(async move {
                    let request = request.map_err(|err| err.to_status())?;
                    let batches = client.query_sample(request).boxed().await?.into_inner();
                    drain(batches, |batch| batch.series).await
                })
            })
            .instrument(span.clone())
            .boxed()
            .await?;
            span.record("series", answers.iter().map(Vec::len).sum::<usize>());
            span.record(
                "samples",
                answers
                    .iter()
                    .flatten()
                    .map(|series| series.samples.len())
                    .sum::<usize>(),
            );
            for series in answers.into_iter().flatten() {
                let labels = series_labels(&series.labels)?;
                found
                    .entry((series.stream_hash, labels))
                    .or_default()
                    .extend(
                        series
                            .samples
                            .into_iter()
                            .map(|sample| (sample.timestamp, sample.hash, sample.value)),
                    );
            }
        }
        if let Some(index) = &self.store {
            let span = stage_span!(
                "querier.store_samples",
                tenant = %tenant,
                series = tracing::field::Empty,
                samples = tracing::field::Empty,
            );
            let stored = crate::store::select_samples(
                index,
                tenant,
                &log.matchers,
                Arc::new(extractor),
                (range.start, range.end),
                shard,
            )
            .instrument(span.clone())
            .boxed()
            .await?;
            span.record("series", stored.len());
            span.record("samples", stored.values().map(Vec::len).sum::<usize>());
            for (key, samples) in stored {
                found.entry(key).or_default().extend(samples);
            }
        }
        Ok(merge(found))
    }
}

/// Parses the labels of a series an ingester sent.
fn series_labels(text: &str) -> Result<LabelSet, HttpError> {
    let pairs = sluice_chunk::Labels::parse_pairs(text).map_err(|err| {
        HttpError::new(
            ErrorCode::Internal,
            format!("unparsable series labels {text:?} from an ingester: {err}"),
        )
    })?;
    Ok(LabelSet::new(
        pairs
            .into_iter()
            .map(|label| (label.name, label.value))
            .collect(),
    ))
}

/// Drops the copies of an entry (same stream, timestamp and line digest)
/// and gathers each series' samples in time order.
fn merge(found: FromStream) -> Vec<SampleSeries> {
    let mut by_series: HashMap<LabelSet, Vec<(i64, f64)>> = HashMap::new();
    for ((_, labels), mut samples) in found {
        samples.sort_unstable_by_key(|(timestamp, hash, _)| (*timestamp, *hash));
        samples.dedup_by_key(|(timestamp, hash, _)| (*timestamp, *hash));
        by_series.entry(labels).or_default().extend(
            samples
                .into_iter()
                .map(|(timestamp, _, value)| (timestamp, value)),
        );
    }
    by_series
        .into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|(timestamp, _)| *timestamp);
            SampleSeries { labels, samples }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        LabelSet::new(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn copies_of_an_entry_count_once_and_streams_merge_by_series() {
        let level = labels(&[("level", "warn")]);
        let mut found = FromStream::new();
        // Two replicas of stream 1 and the store: the same two entries.
        for _ in 0..3 {
            found
                .entry((1, level.clone()))
                .or_default()
                .extend([(20, 7, 1.0), (10, 8, 1.0)]);
        }
        // Same timestamp, other line: another entry.
        found
            .entry((1, level.clone()))
            .or_default()
            .push((10, 9, 1.0));
        // Another stream with the same entry text: counts on its own.
        found
            .entry((2, level.clone()))
            .or_default()
            .push((10, 8, 1.0));
        let merged = merge(found);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].labels, level);
        assert_eq!(
            merged[0].samples,
            vec![(10, 1.0), (10, 1.0), (10, 1.0), (20, 1.0)]
        );
    }

    #[test]
    fn series_labels_keep_empty_values_and_quotes() {
        let series = labels(&[("a", ""), ("b", "say \"hi\"\n")]);
        assert_eq!(series_labels(&series.to_string()).unwrap(), series);
    }
}
