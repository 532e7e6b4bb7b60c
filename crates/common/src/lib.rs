//! Pieces every Sluice service shares: tenant ids, the error-code table that
//! maps failures to HTTP and gRPC statuses, Loki's time and duration syntax,
//! the HTTP server settings, request metrics and module readiness, and
//! each tenant's limits (defaults plus hot-reloaded runtime overrides) with
//! the counters of what they refused; HTTP request tracing.

pub mod byte_size;
pub mod discard;
pub mod duration;
pub mod error;
pub mod http_metrics;
pub mod http_server;
pub mod limits;
pub mod overrides;
pub mod readiness;
pub mod runtime_config;
pub mod server;
pub mod telemetry;
pub mod tenant;
pub mod time;
pub mod token_bucket;

pub use discard::{DiscardMetrics, DiscardReason};
pub use error::{ErrorCode, HttpError, ServiceError};
pub use limits::{DeletionMode, LimitsConfig, RetentionOverride, StreamRetention};
pub use overrides::Overrides;
pub use tenant::{TenantError, TenantId};
