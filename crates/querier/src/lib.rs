//! The querier: Loki's HTTP query API (`query_range`, `query`, `labels`,
//! `label/<name>/values`, `series`, the `tail` WebSocket, `index/stats`,
//! `index/volume(_range)`). It parses and validates requests with
//! Loki's rules, asks every ingester of the ring over the gRPC `Querier`
//! API (recent window) and the store, merges and dedupes what the replicas
//! and the store return, and answers in Loki's exact JSON shapes. Lines
//! covered by delete requests are hidden from every result
//! ([`DeleteFilterSource`]).

mod config;
mod deletes;
mod evaluate;
pub mod frontend;
mod http;
mod ingesters;
mod json;
mod metrics;
mod params;
mod querier;
mod samples;
mod stats;
mod store;
mod tail;
mod tenants;
mod volume;

pub use config::QuerierConfig;
pub use deletes::{DeleteFilter, DeleteFilterSource};
pub use querier::Querier;
