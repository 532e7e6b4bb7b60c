//! HTTP routes of the push API. The body is read here, with its size
//! checked before reading (Content-Length) and while reading (chunked).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use sluice_common::http_server::BodyReadTimeout;
use sluice_common::{HttpError, TenantId};

use crate::decode::JsonShape;
use crate::distributor::Distributor;
use crate::error::PushError;

pub(crate) fn router(distributor: Arc<Distributor>) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(push_v1))
        .route("/api/prom/push", post(push_legacy))
        .with_state(distributor)
}

async fn push_v1(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(&distributor, &headers, body, JsonShape::V1).await
}

async fn push_legacy(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(&distributor, &headers, body, JsonShape::Legacy).await
}

async fn push(
    distributor: &Distributor,
    headers: &HeaderMap,
    body: Body,
    shape: JsonShape,
) -> Response {
    // The tenant first: an anonymous request is refused before its body is
    // decoded. A small body is still read off the connection (as Go's
    // server does up to 256 KiB), so the client can reuse the connection
    // for its next push instead of finding it closed.
    let tenant = match TenantId::from_headers(headers, distributor.auth_enabled()) {
        Ok(tenant) => tenant,
        Err(err) => {
            drain_small(headers, body).await;
            let err = PushError::from(err);
            tracing::debug!(error = %err, "push refused");
            return HttpError::from(err).into_response();
        }
    };
    let result = async {
        let body = read_body(headers, body, distributor.max_body_size()).await?;
        distributor.push(&tenant, headers, &body, shape).await
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::debug!(error = %err, "push refused");
            HttpError::from(err).into_response()
        }
    }
}

/// Most bytes of a refused request's body read off the connection.
const DRAIN_LIMIT: usize = 256 << 10;

/// Reads and drops a refused request's body when it announces at most
/// [`DRAIN_LIMIT`] bytes; larger or unannounced bodies are left (the
/// connection is then closed).
async fn drain_small(headers: &HeaderMap, body: Body) {
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|size| size <= DRAIN_LIMIT as u64) {
        let _ = http_body_util::Limited::new(body, DRAIN_LIMIT)
            .collect()
            .await;
    }
}

/// Reads a body of at most `limit` bytes; a larger announced size is
/// refused without reading anything.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, PushError> {
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if let Some(size) = announced.filter(|size| *size > limit as u64) {
        return Err(PushError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit,
        });
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(PushError::BodyTooLarge { limit })
        }
        Err(error) if BodyReadTimeout::is_cause_of(&*error) => {
            Err(PushError::BodyRead(BodyReadTimeout.to_string()))
        }
        Err(error) => Err(PushError::BodyRead(format!(
            "reading the request body: {error}"
        ))),
    }
}
