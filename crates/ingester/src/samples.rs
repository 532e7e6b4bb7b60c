//! Sample queries (`QuerySample`): the ingester runs a range aggregation's
//! pipeline and sample extraction over its streams and sends, per stream
//! and series, each kept entry's timestamp, value and line digest instead
//! of the line.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_chunk::{line_hash, Direction, LineHint};
use sluice_logql::{LabelSet, SampleExtractor};
use sluice_proto::logproto::{Sample, SampleQueryRequest, SampleQueryResponse, Series};
use sluice_proto::timestamp_to_nanos;

use crate::error::IngesterError;
use crate::instance::Instance;
use crate::query::{query_shard, read_streams, Batches};

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
    emit: impl FnMut(SampleQueryResponse) -> bool,
) -> Result<(), IngesterError> {
    let extractor = parse_extraction(&request.selector)?;
    let from = timestamp_to_nanos(request.start.as_ref());
    let through = timestamp_to_nanos(request.end.as_ref());
    let shard = query_shard(&request.shards)?;
    let mut batches = Batches::new(BATCH_SAMPLES, emit);
    let range = (from, through);
    let matchers = extractor.matchers();
    let hint = Arc::new(LineHint::contains(extractor.required_substrings()));
    read_streams(
        instance,
        matchers,
        shard,
        (range, &hint),
        Direction::Forward,
        |stream, iters| {
            let mut by_series: HashMap<LabelSet, Vec<Sample>> = HashMap::new();
            let mut extract = extractor.for_stream(&LabelSet::new(stream.labels.to_pairs()));
            // Samples are extracted in any order: the querier sorts them.
            for mut iter in iters {
                while let Some((timestamp, line)) = iter
                    .try_next_entry()
                    .map_err(|source| stream.chunk_error(source))?
                {
                    if let Some((series, value)) = extract.process(timestamp, line) {
                        by_series.entry(series).or_default().push(Sample {
                            timestamp,
                            value,
                            hash: line_hash(line),
                        });
                    }
                }
            }
            for (labels, samples) in by_series {
                let count = samples.len();
                let series = Series {
                    labels: labels.to_string(),
                    samples,
                    stream_hash: stream.fingerprint,
                };
                if !batches.add(count, |batch| batch.series.push(series)) {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )?;
    batches.finish();
    Ok(())
}
