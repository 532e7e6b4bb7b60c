//! The distributor: Loki's push API (`/loki/api/v1/push`, `/api/prom/push`).
//! Decodes protobuf+snappy or JSON bodies, validates streams and entries with
//! Loki's rules and messages, applies each tenant's ingestion rate limits,
//! and forwards what is valid to the ingester
//! through the gRPC `Pusher` API to the stream's replication set on the
//! ingester ring, waiting for a quorum.

mod config;
mod decode;
mod distributor;
mod encoded;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod http;
mod metrics;
mod rate_limit;
mod replicate;
mod validate;

pub use config::DistributorConfig;
pub use distributor::{Distributor, DistributorDeps};
pub use error::PushError;
