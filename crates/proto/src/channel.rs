//! A transport-agnostic gRPC channel: the same generated client works over the
//! network (a tonic `Channel`) or in process (calling a generated server
//! directly, still through protobuf encoding), so all-in-one mode and
//! microservices mode exercise the same code path.

use std::convert::Infallible;

use tonic::body::Body;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::trace_context::{GrpcTraceLayer, InjectContext};

/// A cloneable gRPC transport usable by every generated client.
pub type GrpcChannel = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// Wraps a generated tonic server (e.g. `PusherServer::new(svc)`) as a channel
/// that clients call in process.
pub fn in_process<S>(server: S) -> GrpcChannel
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let server = GrpcTraceLayer.layer(server);
    BoxCloneSyncService::new(InjectContext::new(server).map_err(|never| match never {}))
}

/// Wraps a network channel.
pub fn from_tonic(channel: tonic::transport::Channel) -> GrpcChannel {
    BoxCloneSyncService::new(InjectContext::new(channel).map_err(BoxError::from))
}
