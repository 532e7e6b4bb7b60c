//! The querier: Loki's HTTP query API (`query_range`, `query`, `labels`,
//! `label/<name>/values`, `series`). It parses and validates requests with
//! Loki's rules, asks every ingester of the ring over the gRPC `Querier`
//! API (recent window) and the store, merges and dedupes what the replicas
//! and the store return, and answers in Loki's exact JSON shapes.

mod config;
mod evaluate;
mod http;
mod ingesters;
mod json;
mod params;
mod querier;
mod store;
mod tenants;

pub use config::QuerierConfig;
pub use querier::Querier;
