//! The worker protocol between the frontend and queriers (Loki's
//! frontend v1): each querier worker holds a `Process` stream open; the
//! frontend sends it the next queued HTTP request and waits for the HTTP
//! response before sending another. A worker that goes away mid-request
//! puts its request back at the head of the tenant's queue.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::{FutureExt, Stream};
use http_body_util::BodyExt;
use sluice_common::stage_span;
use sluice_proto::frontend::frontend_client::FrontendClient;
use sluice_proto::frontend::frontend_server::{Frontend as FrontendRpc, FrontendServer};
use sluice_proto::frontend::{
    ClientToFrontend, FrontendToClient, Header, HttpRequest, HttpResponse, Type,
};
use sluice_proto::GrpcChannel;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use tower::ServiceExt;
use tracing::Instrument;

use super::queue::Queue;

/// The frontend's side: hands queued requests to connected workers.
#[derive(Clone)]
pub(crate) struct FrontendGrpc {
    pub(crate) queue: Arc<Queue>,
}

type OutStream = Pin<Box<dyn Stream<Item = Result<FrontendToClient, Status>> + Send>>;

#[tonic::async_trait]
impl FrontendRpc for FrontendGrpc {
    type ProcessStream = OutStream;

    async fn process(
        &self,
        request: Request<Streaming<ClientToFrontend>>,
    ) -> Result<Response<Self::ProcessStream>, Status> {
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(1);
        let queue = Arc::clone(&self.queue);
        tokio::spawn(async move {
            // The worker introduces itself first.
            let client = match incoming.message().await {
                Ok(Some(hello)) => hello.client_id,
                _ => return,
            };
            tracing::debug!(%client, "querier worker connected");
            loop {
                let job = tokio::select! {
                    job = queue.dequeue() => job,
                    // Idle workers send nothing; anything here is a close.
                    _ = incoming.message() => break,
                };
                let message = FrontendToClient {
                    http_request: Some(job.request.clone()),
                    r#type: Type::HttpRequest as i32,
                };
                if tx.send(Ok(message)).await.is_err() {
                    queue.requeue(job);
                    break;
                }
                match incoming.message().await {
                    Ok(Some(answer)) => {
                        let _ = job.reply.send(answer.http_response.unwrap_or_default());
                    }
                    _ => {
                        queue.requeue(job);
                        break;
                    }
                }
            }
            tracing::debug!(%client, "querier worker disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

impl FrontendGrpc {
    pub(crate) fn server(self, max_recv: usize, max_send: usize) -> FrontendServer<FrontendGrpc> {
        FrontendServer::new(self)
            .max_decoding_message_size(max_recv)
            .max_encoding_message_size(max_send)
    }
}

/// The querier's side: one worker per unit of `max_concurrent`, each
/// answering requests from the frontend with `router` until `shutdown`.
pub fn spawn_workers(
    channel: GrpcChannel,
    router: Router,
    concurrency: usize,
    client_id: String,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..concurrency.max(1))
        .map(|index| {
            tokio::spawn(run_worker(
                channel.clone(),
                router.clone(),
                format!("{client_id}-{index}"),
                shutdown.clone(),
            ))
        })
        .collect()
}

async fn run_worker(
    channel: GrpcChannel,
    router: Router,
    client_id: String,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let (tx, rx) = mpsc::channel(1);
        let hello = ClientToFrontend {
            http_response: None,
            client_id: client_id.clone(),
        };
        if tx.send(hello).await.is_err() {
            return;
        }
        let mut client = FrontendClient::new(channel.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        match client.process(ReceiverStream::new(rx)).boxed().await {
            Ok(response) => {
                backoff = Duration::from_millis(100);
                let mut incoming = response.into_inner();
                loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = incoming.message().boxed() => message,
                    };
                    let Ok(Some(message)) = message else { break };
                    let answer = execute(&router, message.http_request.unwrap_or_default()).await;
                    let reply = ClientToFrontend {
                        http_response: Some(answer),
                        client_id: client_id.clone(),
                    };
                    if tx.send(reply).await.is_err() {
                        break;
                    }
                }
            }
            Err(status) => {
                tracing::debug!(code = ?status.code(), message = status.message(), "cannot reach the query frontend");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Runs one forwarded request through the querier's own HTTP routes.
async fn execute(router: &Router, request: HttpRequest) -> HttpResponse {
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(request.url.as_str());
    for header in &request.headers {
        for value in &header.values {
            builder = builder.header(header.key.as_str(), value.as_str());
        }
    }
    let built = match builder.body(axum::body::Body::from(request.body)) {
        Ok(built) => built,
        Err(err) => return text_response(400, format!("bad forwarded request: {err}")),
    };
    // The frontend's `frontend.subquery` span is this span's parent.
    let span = stage_span!(
        "querier.request",
        otel.kind = "server",
        http.route = built.uri().path(),
    );
    sluice_common::telemetry::set_parent_from(&span, built.headers());
    let response = match router.clone().oneshot(built).instrument(span).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let code = i32::from(response.status().as_u16());
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| *name == http::header::CONTENT_TYPE)
        .map(|(name, value)| Header {
            key: name.to_string(),
            values: vec![value.to_str().unwrap_or_default().to_string()],
        })
        .collect();
    match response.into_body().collect().await {
        Ok(body) => HttpResponse {
            code,
            headers,
            body: body.to_bytes().to_vec(),
        },
        Err(err) => text_response(500, format!("reading the querier's answer: {err}")),
    }
}

pub(crate) fn text_response(code: i32, message: String) -> HttpResponse {
    HttpResponse {
        code,
        headers: vec![Header {
            key: "content-type".to_string(),
            values: vec!["text/plain; charset=utf-8".to_string()],
        }],
        body: format!("{message}\n").into_bytes(),
    }
}
