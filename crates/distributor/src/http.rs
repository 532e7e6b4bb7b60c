//! HTTP routes of the push API.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use sluice_common::HttpError;

use crate::decode::JsonShape;
use crate::distributor::Distributor;

pub(crate) fn router(distributor: Arc<Distributor>) -> Router {
    let limit = distributor.max_body_size();
    Router::new()
        .route("/loki/api/v1/push", post(push_v1))
        .route("/api/prom/push", post(push_legacy))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(distributor)
}

async fn push_v1(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    push(&distributor, &headers, &body, JsonShape::V1).await
}

async fn push_legacy(
    State(distributor): State<Arc<Distributor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    push(&distributor, &headers, &body, JsonShape::Legacy).await
}

async fn push(
    distributor: &Distributor,
    headers: &HeaderMap,
    body: &[u8],
    shape: JsonShape,
) -> Response {
    match distributor.push(headers, body, shape).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => {
            tracing::debug!(error = %err, "push refused");
            HttpError::from(err).into_response()
        }
    }
}
