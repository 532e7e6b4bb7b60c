//! The compactor: keeps the index small and enforces retention and delete
//! requests.
//!
//! Every `compaction_interval` the compactor that holds the lease (one
//! per store, see [`lease`](crate::Compactor)) walks every index table and
//! tenant and replaces the many files ingesters uploaded with one merged,
//! deduplicated file. While merging it drops the chunks that retention or
//! a delete request removes, and rewrites chunks only partly covered by a
//! delete request. Chunks that leave the index are recorded in marker
//! objects and their objects are deleted only after
//! `retention_delete_delay`, and only if no live index file still refers to
//! them. Every step is idempotent, so a compactor killed anywhere finishes
//! the job when it runs again. `docs/retention.md` describes the protocol.
//!
//! The public surface: [`CompactorConfig`], [`Compactor`] (with
//! [`Compactor::run`] and [`Compactor::router`] for the delete API), the
//! [`Clock`] it reads time from, the [`TenantLimits`] lookup it takes
//! retention and deletion settings from, and [`DeleteRequestStore`], which
//! queriers read to hide deleted lines before the compactor removes them.

mod clock;
mod compactor;
mod config;
mod delete_requests;
mod error;
mod http;
mod lease;
mod limits;
mod markers;
mod metrics;
mod retention;
mod rewrite;
mod table;

pub use clock::{Clock, ManualClock, SystemClock};
pub use compactor::{Compactor, CompactorDeps, RunReport};
pub use config::CompactorConfig;
pub use delete_requests::{DeleteRequest, DeleteRequestStatus, DeleteRequestStore};
pub use error::CompactorError;
pub use limits::TenantLimits;
pub use retention::validate_limits;
