//! The `logproto.Pusher` gRPC service, taking the message's bytes as they
//! arrived so the ingester reads lines in place ([`crate::push_view`])
//! instead of letting prost allocate each one. Otherwise it behaves as the
//! generated `PusherServer`: same path, message size limits, status codes.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use prost::Message;
use sluice_common::stage_span;
use sluice_proto::logproto::PushResponse;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::ingester::Ingester;
use crate::service::{blocking, tenant_of};

/// The one method of the service.
const PUSH_PATH: &str = "/logproto.Pusher/Push";

/// Serves `logproto.Pusher` over one ingester.
#[derive(Debug, Clone)]
pub struct PushServer {
    ingester: Arc<Ingester>,
    max_recv: usize,
    max_send: usize,
}

impl PushServer {
    pub(crate) fn new(ingester: Arc<Ingester>, max_recv: usize, max_send: usize) -> PushServer {
        PushServer {
            ingester,
            max_recv,
            max_send,
        }
    }
}

impl NamedService for PushServer {
    const NAME: &'static str = "logproto.Pusher";
}

impl<B> Service<http::Request<B>> for PushServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != PUSH_PATH {
            return Box::pin(async {
                let mut response = http::Response::new(tonic::body::Body::default());
                let headers = response.headers_mut();
                headers.insert(
                    Status::GRPC_STATUS,
                    (tonic::Code::Unimplemented as i32).into(),
                );
                headers.insert(
                    http::header::CONTENT_TYPE,
                    tonic::metadata::GRPC_CONTENT_TYPE,
                );
                Ok(response)
            });
        }
        let method = PushMethod(Arc::clone(&self.ingester));
        let mut grpc = tonic::server::Grpc::new(RawPush)
            .apply_max_message_size_config(Some(self.max_recv), Some(self.max_send));
        Box::pin(async move { Ok(grpc.unary(method, request).await) })
    }
}

struct PushMethod(Arc<Ingester>);

impl UnaryService<Bytes> for PushMethod {
    type Response = PushResponse;
    type Future = BoxFuture<Response<PushResponse>, Status>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ingester = Arc::clone(&self.0);
        Box::pin(async move {
            let tenant = tenant_of(&request)?;
            let push = request.into_inner();
            let span = stage_span!(
                "ingester.push",
                tenant = %tenant,
                bytes = push.len(),
                streams = tracing::field::Empty,
                entries = tracing::field::Empty,
            );
            blocking(span, move || ingester.push_encoded(&tenant, &push)).await?;
            Ok(Response::new(PushResponse {}))
        })
    }
}

/// Hands the request message over as bytes (no copy: the decode buffer
/// is split off) and encodes the empty response.
#[derive(Debug, Clone, Copy, Default)]
struct RawPush;

impl Codec for RawPush {
    type Encode = PushResponse;
    type Decode = Bytes;
    type Encoder = RawPush;
    type Decoder = RawPush;

    fn encoder(&mut self) -> RawPush {
        RawPush
    }

    fn decoder(&mut self) -> RawPush {
        RawPush
    }
}

impl Encoder for RawPush {
    type Item = PushResponse;
    type Error = Status;

    fn encode(&mut self, item: PushResponse, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|err| Status::internal(format!("encoding the push response: {err}")))
    }
}

impl Decoder for RawPush {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
