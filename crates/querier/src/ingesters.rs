//! Asks every ingester that may hold a stream and gathers the answers.
//!
//! Each stream lives on `replication_factor` ingesters and every write
//! reached a quorum of them, so a read asks all healthy ACTIVE and LEAVING
//! ingesters and survives as many failures as the ring's read set allows.
//! Replicas return the same entries; callers merge and dedupe.

use std::future::Future;
use std::pin::Pin;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use sluice_common::{stage_span, ErrorCode, HttpError};
use sluice_ingester_client::Ingesters;
use sluice_proto::logproto::querier_client::QuerierClient;
use sluice_proto::GrpcChannel;
use tracing::Instrument;

/// A call to one ingester.
pub(crate) type Call<T> = Pin<Box<dyn Future<Output = Result<T, tonic::Status>> + Send>>;

/// Reads a streamed answer to its end, gathering the items of each batch.
pub(crate) async fn drain<B, T>(
    mut batches: tonic::Streaming<B>,
    items: impl Fn(B) -> Vec<T>,
) -> Result<Vec<T>, tonic::Status> {
    let mut all = Vec::new();
    while let Some(batch) = batches.next().boxed().await {
        all.extend(items(batch?));
    }
    Ok(all)
}

/// Runs `call` against every ingester of the read set concurrently and
/// returns the answers of those that succeeded.
pub(crate) async fn ask_all<T, F>(ingesters: &Ingesters, call: F) -> Result<Vec<T>, HttpError>
where
    T: Send + 'static,
    F: Fn(QuerierClient<GrpcChannel>) -> Call<T>,
{
    let set = ingesters
        .read_set()
        .map_err(|err| HttpError::new(ErrorCode::Internal, err.to_string()))?;
    let mut calls: FuturesUnordered<_> = set
        .members
        .iter()
        .map(|member| {
            let addr = member.addr.clone();
            let span = stage_span!(
                "querier.ingester_call",
                otel.kind = "client",
                ingester = %addr,
            );
            let future = ingesters.querier(&addr).map(&call);
            async move {
                let result = match future {
                    Ok(future) => future.await,
                    Err(status) => Err(status),
                };
                (addr, result)
            }
            .instrument(span)
        })
        .collect();
    let mut answers = Vec::with_capacity(set.members.len());
    let mut failures = 0;
    while let Some((addr, result)) = calls.next().await {
        match result {
            Ok(answer) => answers.push(answer),
            Err(status) => {
                let error = HttpError::from_status(&status);
                // The request itself is at fault: every replica would say so.
                if matches!(error.code, ErrorCode::BadRequest | ErrorCode::RateLimited) {
                    return Err(error);
                }
                failures += 1;
                tracing::warn!(ingester = %addr, code = ?status.code(), message = status.message(), "ingester query failed");
                if failures > set.max_errors {
                    return Err(HttpError::new(
                        ErrorCode::Internal,
                        format!("ingester {addr}: {}", status.message()),
                    ));
                }
            }
        }
    }
    Ok(answers)
}
