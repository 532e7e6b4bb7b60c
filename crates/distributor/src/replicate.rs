//! Sends each stream of a push to its replication set and waits for a
//! quorum of every stream's replicas.
//!
//! Streams are grouped by ingester so each ingester gets one request with
//! all of its streams. The push succeeds as soon as every stream has been
//! acknowledged by `replicas - max_errors` ingesters (2 of 3); it fails as
//! soon as some stream has more failures than its set tolerates. Calls
//! still in flight when the outcome is known run on in the background, so a
//! slow third replica still gets the data.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use sluice_common::tenant::ORG_ID_HEADER;
use sluice_common::{stage_span, ErrorCode, TenantId};
use sluice_ingester_client::Ingesters;
use sluice_proto::logproto::{PushRequest, PushResponse};
use sluice_ring::stream_token;
use tracing::Instrument;

use crate::encoded::{EncodedPush, PreEncodedPush};
use crate::error::PushError;
use crate::metrics::{DistributorMetrics, IngesterLabel};

/// The Pusher service's push method.
const PUSH_PATH: &str = "/logproto.Pusher/Push";

/// What one stream still needs.
struct StreamQuorum {
    needed: usize,
    failures_allowed: usize,
    succeeded: usize,
    failed: usize,
}

/// Pushes `request` (validated, canonical labels) for `tenant`.
pub(crate) async fn replicate(
    ingesters: &Arc<Ingesters>,
    metrics: &DistributorMetrics,
    tenant: &TenantId,
    request: PushRequest,
) -> Result<(), PushError> {
    let ring = ingesters.ring();
    let mut quorums = Vec::with_capacity(request.streams.len());
    let mut by_ingester: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, stream) in request.streams.iter().enumerate() {
        let token = stream_token(tenant.as_str(), &stream.labels);
        let set = ingesters
            .write_set(&ring, token)
            .map_err(|err| PushError::Ingester {
                code: ErrorCode::Internal,
                message: err.to_string(),
            })?;
        quorums.push(StreamQuorum {
            needed: set.members.len() - set.max_errors,
            failures_allowed: set.max_errors,
            succeeded: 0,
            failed: 0,
        });
        for member in set.members {
            match by_ingester.get_mut(member.addr.as_str()) {
                Some(indexes) => indexes.push(index),
                None => {
                    by_ingester.insert(member.addr.clone(), vec![index]);
                }
            }
        }
    }
    let tenant_value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = tenant
        .as_str()
        .parse()
        .map_err(|_| PushError::Invalid(format!("invalid tenant ID {tenant}")))?;
    let timeout = ingesters.remote_timeout();
    // Encoded once; each ingester's body shares or copies these bytes.
    let encoded = EncodedPush::new(&request);
    drop(request);
    let mut calls = FuturesUnordered::new();
    for (addr, indexes) in by_ingester {
        let mut grpc_request = tonic::Request::new(encoded.select(&indexes));
        grpc_request.set_timeout(timeout);
        grpc_request
            .metadata_mut()
            .insert(ORG_ID_HEADER, tenant_value.clone());
        grpc_request
            .extensions_mut()
            .insert(tonic::GrpcMethod::new("logproto.Pusher", "Push"));
        let client = ingesters.grpc(&addr);
        let span = stage_span!(
            "distributor.ingester_push",
            otel.kind = "client",
            ingester = %addr,
            streams = indexes.len(),
        );
        let task = tokio::spawn(
            async move {
                let result = match client {
                    Ok(client) => {
                        match tokio::time::timeout(timeout, push(client, grpc_request).boxed())
                            .await
                        {
                            Ok(result) => result.map(|_| ()),
                            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                                "no answer within {timeout:?}"
                            ))),
                        }
                    }
                    Err(status) => Err(status),
                };
                (addr, indexes, result)
            }
            .instrument(span),
        );
        calls.push(task);
    }
    let mut pending = quorums.len();
    while pending > 0 {
        let Some(joined) = calls.next().await else {
            break;
        };
        let (addr, indexes, result) = joined.map_err(|err| PushError::Ingester {
            code: ErrorCode::Internal,
            message: format!("push task failed: {err}"),
        })?;
        let label = IngesterLabel {
            ingester: addr.clone(),
        };
        metrics.ingester_appends.get_or_create(&label).inc();
        // Present (at 0) from the first append, so failure ratios and
        // alerts have a series before anything fails.
        let failures = metrics.ingester_append_failures.get_or_create(&label);
        match result {
            Ok(()) => {
                for index in indexes {
                    let quorum = &mut quorums[index];
                    quorum.succeeded += 1;
                    if quorum.succeeded == quorum.needed {
                        pending -= 1;
                    }
                }
            }
            Err(status) => {
                failures.inc();
                tracing::warn!(ingester = %addr, %tenant, code = ?status.code(), message = status.message(), "push to ingester failed");
                for index in indexes {
                    let quorum = &mut quorums[index];
                    quorum.failed += 1;
                    if quorum.failed > quorum.failures_allowed {
                        return Err(push_error(&addr, &status));
                    }
                }
            }
        }
    }
    // Whatever is still in flight finishes on its own (tasks are detached
    // when their handles drop).
    Ok(())
}

/// Sends one encoded `PushRequest` as the generated Pusher client would.
/// (Generic, as the generated clients are: with the concrete channel type
/// the future's `Send` bound trips over the boxed error's lifetime.)
async fn push<T>(
    mut client: tonic::client::Grpc<T>,
    request: tonic::Request<Bytes>,
) -> Result<tonic::Response<PushResponse>, tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    client
        .ready()
        .await
        .map_err(|err| tonic::Status::unavailable(format!("ingester not ready: {}", err.into())))?;
    client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(PUSH_PATH),
            PreEncodedPush,
        )
        .await
}

/// Words an ingester's failure for the client: refusals of the data keep
/// their 4xx code, everything else is a 5xx so the client retries.
fn push_error(addr: &str, status: &tonic::Status) -> PushError {
    let code = match ErrorCode::from_grpc_code(status.code()) {
        ErrorCode::BadRequest => ErrorCode::BadRequest,
        ErrorCode::RateLimited => ErrorCode::RateLimited,
        ErrorCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::Internal,
    };
    let message = if code == ErrorCode::Internal {
        format!("ingester {addr}: {}", status.message())
    } else {
        status.message().to_string()
    };
    PushError::Ingester { code, message }
}
