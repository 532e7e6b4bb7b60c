//! Storage failures, naming the object involved.

use sluice_common::{ErrorCode, ServiceError};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The configuration cannot produce a store; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The object does not exist.
    #[error("object {key} not found")]
    NotFound {
        /// The object key.
        key: String,
    },
    /// The object store failed (unreachable, permission denied, disk full…).
    #[error("{operation} {key}: {source}")]
    Backend {
        /// What was being done: put, get, list, delete.
        operation: &'static str,
        /// The object key or prefix.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The object exists but its bytes are not what the key promises.
    #[error("corrupt object {key}: {reason}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A local cache file could not be read or written.
    #[error("{operation} {path}: {source}")]
    Local {
        /// What was being done.
        operation: &'static str,
        /// The local path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl ServiceError for StorageError {
    fn code(&self) -> ErrorCode {
        match self {
            StorageError::NotFound { .. } | StorageError::Corrupt { .. } => ErrorCode::Internal,
            StorageError::Backend { .. } => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}
