//! Errors of the ingester and the codes they carry to clients.

use sluice_common::{ErrorCode, ServiceError};

/// Why the ingester refused a push or a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngesterError {
    /// The request carries no tenant id.
    #[error("no org id")]
    MissingTenant,
    /// The tenant id is invalid.
    #[error(transparent)]
    Tenant(#[from] sluice_common::TenantError),
    /// A stream's label string does not parse.
    #[error("{0}")]
    InvalidLabels(String),
    /// A new stream would exceed the tenant's stream limit.
    #[error("{}", crate::limits::STREAM_LIMIT_MESSAGE)]
    StreamLimit,
    /// Entries refused by a stream (rate limit, order); the rest of the
    /// push was stored. The message lists them as Loki does.
    #[error("{message}")]
    EntriesRefused {
        /// 429 for the rate limit, else 400.
        code: ErrorCode,
        /// Loki's multi-line text.
        message: String,
    },
    /// The query does not parse.
    #[error("{0}")]
    InvalidQuery(#[from] sluice_logql::ParseError),
    /// The query uses a pipeline stage the ingester cannot run.
    #[error("{0}")]
    UnsupportedQuery(String),
    /// A chunk could not be read.
    #[error("reading chunk of stream {stream}: {source}")]
    Chunk {
        /// The stream's labels.
        stream: String,
        /// What failed.
        source: sluice_chunk::ChunkError,
    },
    /// A push message is not a valid `PushRequest` (as tonic reports a
    /// message it cannot decode: internal, since only a distributor sends
    /// pushes).
    #[error("failed to decode Protobuf message: {0}")]
    MalformedPush(String),
    /// The ingester is shutting down.
    #[error("ingester is shutting down")]
    ShuttingDown,
    /// The write-ahead log could not make the push durable (e.g. disk
    /// full); nothing of the push was applied.
    #[error("write-ahead log failed, push not accepted: {0}")]
    Wal(String),
    /// Opening or replaying the WAL failed.
    #[error("{0}")]
    Startup(String),
}

impl ServiceError for IngesterError {
    fn code(&self) -> ErrorCode {
        match self {
            IngesterError::MissingTenant => ErrorCode::Unauthorized,
            IngesterError::Tenant(err) => err.code(),
            IngesterError::InvalidLabels(_)
            | IngesterError::InvalidQuery(_)
            | IngesterError::UnsupportedQuery(_) => ErrorCode::BadRequest,
            IngesterError::StreamLimit => ErrorCode::RateLimited,
            IngesterError::EntriesRefused { code, .. } => *code,
            IngesterError::Chunk { .. } | IngesterError::MalformedPush(_) => ErrorCode::Internal,
            IngesterError::ShuttingDown | IngesterError::Wal(_) => ErrorCode::Unavailable,
            IngesterError::Startup(_) => ErrorCode::Internal,
        }
    }
}

impl From<IngesterError> for tonic::Status {
    fn from(err: IngesterError) -> tonic::Status {
        sluice_common::error::HttpError::from(err).to_status()
    }
}
