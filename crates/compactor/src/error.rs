//! Compactor failures, naming the object or setting involved.

use sluice_common::{ErrorCode, ServiceError};
use sluice_storage::StorageError;

/// Why a compactor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactorError {
    /// A setting is invalid; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An object the compactor reads does not hold what its key promises.
    #[error("corrupt {what} {key}: {reason}")]
    Corrupt {
        /// What kind of object: index file, marker, delete request, lease.
        what: &'static str,
        /// The object key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Another compactor took over the lease while this one was working.
    #[error("the compactor lease was lost to another instance")]
    LeaseLost,
    /// A blocking task (decoding, encoding, merging) failed to run.
    #[error("{task} task failed: {reason}")]
    Task {
        /// Which task.
        task: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl CompactorError {
    pub(crate) fn task(task: &'static str, err: impl std::fmt::Display) -> CompactorError {
        CompactorError::Task {
            task,
            reason: err.to_string(),
        }
    }
}

impl ServiceError for CompactorError {
    fn code(&self) -> ErrorCode {
        match self {
            CompactorError::Storage(err) => err.code(),
            CompactorError::LeaseLost => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }
}
