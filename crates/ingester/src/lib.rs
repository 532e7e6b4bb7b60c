//! The ingester: holds each tenant's streams in memory as compressed chunks
//! (the chunk crate's format), accepts entries in any order, makes every
//! push durable in a write-ahead log before acknowledging it, flushes chunks
//! and index files to object storage, and answers queries over its gRPC
//! Querier API as a stream of batches.
//!
//! The distributor reaches it only through the gRPC `Pusher` service and the
//! querier only through the gRPC `Querier` service ([`service`]).

mod config;
mod error;
mod flush;
mod http;
mod ingester;
#[cfg(test)]
mod ingester_tests;
mod instance;
mod limits;
mod metrics;
mod push_server;
mod push_view;
mod query;
mod samples;
pub mod service;
mod stream;
mod tail;
mod wal_record;

pub use config::{FsyncMode, IngesterConfig, WalCompression, WalConfig};
pub use error::IngesterError;
pub use flush::SweepOutcome;
pub use http::router;
pub use ingester::{Ingester, IngesterDeps};
pub use limits::IngesterLimits;
