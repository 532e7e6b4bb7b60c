//! Pieces every Sluice service shares: tenant ids, the error-code table that
//! maps failures to HTTP and gRPC statuses, Loki's time and duration syntax,
//! the HTTP server settings, request metrics and module readiness.

pub mod duration;
pub mod error;
pub mod http_metrics;
pub mod limits;
pub mod readiness;
pub mod server;
pub mod tenant;
pub mod time;

pub use error::{ErrorCode, HttpError, ServiceError};
pub use limits::{DeletionMode, LimitsConfig, RetentionOverride, StreamRetention};
pub use tenant::{TenantError, TenantId};
