//! The crate's error type.

use std::time::Duration;

/// Errors of the ring, its KV backends and the lifecycler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// An I/O error talking to a memcached server.
    #[error("memcached {addr}: {source}")]
    MemcachedIo {
        /// The server address.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A memcached server did not answer within the configured timeout.
    #[error("memcached {addr}: timed out after {timeout:?}")]
    MemcachedTimeout {
        /// The server address.
        addr: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// A memcached server answered something this client does not expect.
    #[error("memcached {addr}: unexpected response {response:?} to {command}")]
    MemcachedProtocol {
        /// The server address.
        addr: String,
        /// The command sent (`gets`, `cas`, `add`, `set`).
        command: &'static str,
        /// The offending response line (truncated).
        response: String,
    },
    /// A key memcached cannot store (empty, longer than 250 bytes, spaces or
    /// control characters).
    #[error("invalid kv key {key:?}")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// The ring record could not be decoded.
    #[error("ring record {key:?} is not a valid ring description: {source}")]
    Decode {
        /// The KV key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The ring record could not be encoded.
    #[error("ring record {key:?} could not be encoded: {source}")]
    Encode {
        /// The KV key.
        key: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Every compare-and-swap attempt of an update met a concurrent writer.
    #[error("ring record {key:?}: gave up after {attempts} compare-and-swap conflicts")]
    TooManyConflicts {
        /// The KV key.
        key: String,
        /// Attempts made.
        attempts: u32,
    },
    /// Fewer healthy members than a quorum of the replication factor.
    #[error("at least {required} live replicas required, could only find {found}")]
    TooFewHealthyMembers {
        /// `quorum(replication_factor)`.
        required: usize,
        /// Healthy members found.
        found: usize,
    },
    /// More members are unhealthy or not yet serving than a read tolerates.
    #[error("too many unhealthy instances in the ring: {unavailable} unavailable, at most {allowed} tolerated")]
    TooManyUnhealthy {
        /// Members with tokens that cannot serve reads.
        unavailable: usize,
        /// `replication_factor - quorum(replication_factor)`.
        allowed: usize,
    },
    /// Not enough free tokens left in the `u32` space.
    #[error("cannot allocate {requested} tokens: only {free} free")]
    TokenSpaceExhausted {
        /// Tokens asked for.
        requested: usize,
        /// Tokens still free.
        free: u64,
    },
    /// The configuration is invalid.
    #[error("invalid ring config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: &'static str,
    },
}
