//! Object storage for Sluice: where chunk objects and index files live
//! (local filesystem by default; S3 and S3-compatible servers such as MinIO;
//! GCS and Azure behind the `gcs` and `azure` features), the schema periods
//! that name them, and the querier's local cache of index files.
//!
//! Formats (chunk, index, key layout) belong to `sluice-chunk`; this crate
//! only moves bytes and keeps track of what exists.

mod backend;
mod config;
mod error;
mod index_cache;
mod schema;
mod store;

pub use backend::ObjectStorage;
pub use config::{
    AwsConfig, AzureConfig, ChunkStoreConfig, FilesystemConfig, GcsConfig, IndexShipperConfig,
    StorageConfig,
};
pub use error::StorageError;
pub use index_cache::{select_series, IndexCache, SeriesChunks};
pub use schema::{IndexConfig, PeriodEntry, SchemaConfig};
pub use store::{ChunkStore, Table};
