//! `/loki/api/v1/index/stats`, and gathering chunk metadata for it and for
//! the volume endpoints: the store index for the whole range plus every
//! ingester (Sluice's `GetChunkStats`) for the recent window. A chunk
//! reported by several replicas, or by an ingester and the store, counts
//! once (see `sluice_chunk::stats`).

use std::sync::Arc;

use axum::extract::State;
use futures::FutureExt;
use sluice_chunk::stats::{ChunkSet, ChunkStat};
use sluice_chunk::Labels;
use sluice_common::{ErrorCode, HttpError, TenantId};
use sluice_logql::{LogExpr, Matcher};
use sluice_proto::logproto::ChunkStatsRequest;

use crate::http::{Call, LokiJson};
use crate::ingesters::ask_all;
use crate::params::TimeRange;
use crate::querier::Querier;

impl Querier {
    /// Returns the chunks of the streams `matchers` select that overlap
    /// `range`, from the store and the ingesters, each chunk once.
    pub(crate) async fn chunk_set(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<ChunkSet, HttpError> {
        let mut set = ChunkSet::new();
        if let (Some(ingesters), Some(ingester_range)) =
            (&self.ingesters, self.ingester_range(range))
        {
            let request = ChunkStatsRequest {
                from: ingester_range.start,
                through: ingester_range.end,
                matchers: LogExpr {
                    matchers: matchers.to_vec(),
                    pipeline: Vec::new(),
                }
                .to_string(),
            };
            let answers = ask_all(ingesters, |mut client| {
                let call = Querier::request(tenant, request.clone());
                Box::pin(async move {
                    let call = call.map_err(|err| err.to_status())?;
                    Ok(client.get_chunk_stats(call).boxed().await?.into_inner())
                })
            })
            .boxed()
            .await?;
            for stream in answers.into_iter().flat_map(|answer| answer.streams) {
                let labels = Labels::parse(&stream.labels).map_err(|err| {
                    HttpError::new(
                        ErrorCode::Internal,
                        format!("ingester sent unparsable labels {:?}: {err}", stream.labels),
                    )
                })?;
                set.add(
                    &labels,
                    stream.chunks.into_iter().map(|chunk| ChunkStat {
                        from_ns: chunk.from,
                        through_ns: chunk.through,
                        bytes: chunk.bytes,
                        entries: chunk.entries,
                    }),
                );
            }
        }
        if let Some(index) = &self.store {
            let found = crate::store::series(index, tenant, matchers, range.start, range.end)
                .boxed()
                .await?;
            for series in found {
                set.add(&series.labels, series.chunks.iter().map(ChunkStat::from));
            }
        }
        Ok(set)
    }
}

/// `GET|POST /loki/api/v1/index/stats?query=<selector>&start&end`:
/// `{"streams":…,"chunks":…,"bytes":…,"entries":…}`.
pub(crate) async fn index_stats(
    State(querier): State<Arc<Querier>>,
    call: Call,
) -> Result<LokiJson, HttpError> {
    let Call { tenants, params } = call;
    let range = params.range()?;
    let matchers = sluice_logql::parse_selector(params.query()?)
        .map_err(|err| HttpError::bad_request(err.to_string()))?;
    // Several tenants: their stats add up, as in Loki.
    let (picked, matchers) = tenants.select(&matchers);
    let (mut streams, mut chunks, mut bytes, mut entries) = (0, 0, 0, 0);
    for tenant in picked {
        let set = querier.chunk_set(tenant, &matchers, range).await?;
        let stats = set.stats(range.start, range.end);
        streams += stats.streams;
        chunks += stats.chunks;
        bytes += stats.bytes;
        entries += stats.entries;
    }
    Ok(LokiJson(format!(
        "{{\"streams\":{streams},\"chunks\":{chunks},\"bytes\":{bytes},\"entries\":{entries}}}"
    )))
}
