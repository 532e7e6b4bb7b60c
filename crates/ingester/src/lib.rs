//! The ingester: holds each tenant's streams in memory as compressed chunks
//! (the chunk crate's format), accepts entries in any order, and answers
//! queries over its gRPC Querier API as a stream of batches.
//!
//! The distributor reaches it only through the gRPC `Pusher` service and the
//! querier only through the gRPC `Querier` service ([`service`]).

mod config;
mod error;
mod ingester;
mod instance;
mod metrics;
mod query;
pub mod service;
mod stream;

pub use config::IngesterConfig;
pub use error::IngesterError;
pub use ingester::Ingester;
