//! Why a push was refused, with Loki's wording.

use sluice_common::{ErrorCode, ServiceError};

/// A push failure that reaches the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The tenant header is missing or invalid.
    #[error(transparent)]
    Tenant(#[from] sluice_common::TenantError),
    /// The Content-Encoding is not one Loki accepts.
    #[error("Content-Encoding {0:?} not supported")]
    UnsupportedEncoding(String),
    /// gzip or deflate bytes that do not decompress.
    #[error("{encoding}: {reason}")]
    Decompress {
        /// The Content-Encoding.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The body is not valid raw snappy.
    #[error("snappy: corrupt input")]
    Snappy,
    /// The snappy payload is not a PushRequest.
    #[error("proto: {0}")]
    Protobuf(String),
    /// The JSON body is malformed.
    #[error("{0}")]
    Json(String),
    /// The body (after decompression) exceeds the configured size.
    #[error("message size {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Bytes seen (at least).
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A body streamed past the size limit (no Content-Length told us
    /// in advance).
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The client did not send the body within the server's read timeout.
    #[error("{0}")]
    BodyRead(String),
    /// Some streams or entries failed validation; the rest were stored.
    #[error("{0}")]
    Invalid(String),
    /// The tenant's ingestion rate refused the whole push.
    #[error("{0}")]
    RateLimited(String),
    /// The ingester refused or failed the push.
    #[error("{message}")]
    Ingester {
        /// The code the ingester sent.
        code: ErrorCode,
        /// Its message.
        message: String,
    },
}

impl ServiceError for PushError {
    fn code(&self) -> ErrorCode {
        match self {
            PushError::Tenant(err) => err.code(),
            PushError::TooLarge { .. } | PushError::BodyTooLarge { .. } => {
                ErrorCode::PayloadTooLarge
            }
            PushError::RateLimited(_) => ErrorCode::RateLimited,
            PushError::Ingester { code, .. } => *code,
            _ => ErrorCode::BadRequest,
        }
    }
}
