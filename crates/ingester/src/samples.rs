//! Sample queries (`QuerySample`): the ingester runs a range aggregation's
//! pipeline and sample extraction over its streams and sends, per stream
//! and series, each kept entry's timestamp, value and line digest instead
//! of the line.

use std::collections::HashMap;

use sluice_chunk::{line_hash, Direction};
use sluice_logql::{LabelSet, SampleExtractor};
use sluice_proto::logproto::{Sample, SampleQueryRequest, SampleQueryResponse, Series};
use sluice_proto::timestamp_to_nanos;

use crate::error::IngesterError;
use crate::instance::Instance;
use crate::query::query_shard;
use crate::stream::read;

/// Samples per streamed batch.
const BATCH_SAMPLES: usize = 10_000;

/// Compiles the extraction the querier sent.
pub(crate) fn parse_extraction(selector: &str) -> Result<SampleExtractor, IngesterError> {
    SampleExtractor::parse(selector).map_err(|err| IngesterError::UnsupportedQuery(err.message))
}

/// Runs a sample query, handing batches of about [`BATCH_SAMPLES`] samples
/// to `emit`; stops early when `emit` returns false (the client went away).
pub(crate) fn query_samples(
    instance: &Instance,
    request: &SampleQueryRequest,
    mut emit: impl FnMut(SampleQueryResponse) -> bool,
) -> Result<(), IngesterError> {
    let extractor = parse_extraction(&request.selector)?;
    let from = timestamp_to_nanos(request.start.as_ref());
    let through = timestamp_to_nanos(request.end.as_ref());
    let shard = query_shard(&request.shards)?;
    let mut batch = SampleQueryResponse::default();
    let mut batch_samples = 0;
    for stream in instance.matching(extractor.matchers()) {
        if shard.is_some_and(|shard| !shard.contains(stream.fingerprint)) {
            continue;
        }
        let chunk_error = |source| IngesterError::Chunk {
            stream: stream.labels_text.clone(),
            source,
        };
        let iters = {
            let data = stream.data.lock();
            if !data.overlaps(from, through) {
                continue;
            }
            data.iters(from, through, Direction::Forward)
                .map_err(chunk_error)?
        };
        let mut by_series: HashMap<LabelSet, Vec<Sample>> = HashMap::new();
        let labels = LabelSet::new(stream.labels.to_pairs());
        let mut extract = extractor.for_stream(&labels);
        // Nothing is kept as an entry: each one becomes a sample here.
        let mut sample = |timestamp: i64, line: &str| {
            if let Some((series, value)) = extract.process(timestamp, line) {
                by_series.entry(series).or_default().push(Sample {
                    timestamp,
                    value,
                    hash: line_hash(line),
                });
            }
            false
        };
        read(
            iters,
            Direction::Forward,
            &mut sample,
            &|_| String::new(),
            usize::MAX,
        )
        .map_err(chunk_error)?;
        for (labels, samples) in by_series {
            batch_samples += samples.len();
            batch.series.push(Series {
                labels: labels.to_string(),
                samples,
                stream_hash: stream.fingerprint,
            });
            if batch_samples >= BATCH_SAMPLES {
                if !emit(std::mem::take(&mut batch)) {
                    return Ok(());
                }
                batch_samples = 0;
            }
        }
    }
    if !batch.series.is_empty() {
        emit(batch);
    }
    Ok(())
}
