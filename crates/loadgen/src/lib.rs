//! Load and correctness tools for Sluice, usable against any
//! Loki-compatible server.
//!
//! - [`generator`]: deterministic, realistic service logs (JSON, logfmt,
//!   plain text). Always built; the chunk benchmarks use it too.
//! - [`push`]: concurrent push load through the real push API (protobuf +
//!   snappy), reporting lines/s, MB/s, latency percentiles and errors.
//! - [`query`]: LogQL queries run repeatedly, with latency percentiles.
//! - [`canary`]: `sluice canary`, Loki canary's end-to-end check.
//!
//! Everything but the generator sits behind the default `client` feature.
//! The `sluice-loadgen` binary drives `push` and `query`.

pub mod generator;

#[cfg(feature = "client")]
pub mod canary;
#[cfg(feature = "client")]
pub mod cpu;
#[cfg(feature = "client")]
pub mod latency;
#[cfg(feature = "client")]
pub mod push;
#[cfg(feature = "client")]
pub mod query;
#[cfg(feature = "client")]
pub mod streams;
