//! The ingester's HTTP endpoints, as Loki has them: `POST /flush` and
//! `POST /ingester/shutdown`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::ingester::Ingester;

#[derive(Clone)]
struct HttpState {
    ingester: Arc<Ingester>,
    shutdown: CancellationToken,
}

/// Returns the routes; `shutdown` is the process's stop signal, fired by
/// `/ingester/shutdown`.
pub fn router(ingester: Arc<Ingester>, shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/flush", post(flush))
        .route(
            "/ingester/shutdown",
            post(shutdown_handler).get(shutdown_handler),
        )
        .route("/ingester/flush_shutdown", post(shutdown_handler))
        .with_state(HttpState { ingester, shutdown })
}

/// Starts flushing every chunk in the background; answers 204 at once.
async fn flush(State(state): State<HttpState>) -> Response {
    state.ingester.request_flush();
    StatusCode::NO_CONTENT.into_response()
}

/// Flushes everything (unless `flush=false`), then stops the process
/// (unless `terminate=false`), as Loki's `/ingester/shutdown`.
async fn shutdown_handler(
    State(state): State<HttpState>,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let flag = |name: &str, default: bool| {
        raw_query
            .as_deref()
            .and_then(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.into_owned())
            })
            .map_or(default, |value| {
                matches!(value.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True")
            })
    };
    let flush = flag("flush", true);
    let terminate = flag("terminate", true);
    if flush {
        let outcome = state.ingester.sweep(true).await;
        if outcome.failed > 0 || outcome.index_failures > 0 {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "flush incomplete: {} chunk uploads and {} index uploads failed\n",
                    outcome.failed, outcome.index_failures
                ),
            )
                .into_response();
        }
    }
    if terminate {
        state.shutdown.cancel();
    }
    StatusCode::NO_CONTENT.into_response()
}
