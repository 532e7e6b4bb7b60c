//! Sluice's wire types: the Loki-compatible `logproto` messages and the
//! Pusher / Querier gRPC services, generated at build time, plus the few
//! conversions every service needs (timestamps, in-process channels, the
//! W3C trace context every call carries).
//!
//! No business logic lives here.

mod channel;
mod time;
pub mod trace_context;

pub use channel::{from_tonic, in_process, GrpcChannel};
pub use time::{timestamp_from_nanos, timestamp_to_nanos};

/// Generated `frontend` package: the query frontend's worker protocol.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod frontend {
    tonic::include_proto!("frontend");
}

/// Generated `logproto` package.
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod logproto {
    tonic::include_proto!("logproto");
}
