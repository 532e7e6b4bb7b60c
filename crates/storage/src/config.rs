//! `storage_config`, with Loki's key names.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_common::server::humantime_serde_compat;

/// Where objects are stored; which backend is used comes from the schema
/// period's `object_store`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Local filesystem backend.
    pub filesystem: FilesystemConfig,
    /// S3 and S3-compatible backends (MinIO, Ceph, R2…).
    pub aws: AwsConfig,
    /// Google Cloud Storage (needs the `gcs` build feature).
    pub gcs: GcsConfig,
    /// Azure Blob Storage (needs the `azure` build feature).
    pub azure: AzureConfig,
    /// How queriers cache index files (Loki's `tsdb_shipper` /
    /// `boltdb_shipper` keys are accepted as aliases).
    #[serde(alias = "tsdb_shipper", alias = "boltdb_shipper")]
    pub index_shipper: IndexShipperConfig,
    /// Loki's cache of index lookups. Accepted so Loki configs load, not
    /// used: queriers answer lookups from the index files they download,
    /// faster than a cache round trip (a warning says so at startup).
    pub index_queries_cache_config: sluice_cache::CacheConfig,
}

/// `chunk_store_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkStoreConfig {
    /// Cache of chunk objects queriers read (memcached or embedded).
    pub chunk_cache_config: sluice_cache::CacheConfig,
}

/// `storage_config.filesystem`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    /// Root directory of the object tree; empty means `<path_prefix>/chunks`.
    pub directory: String,
}

/// `storage_config.aws`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    /// URL form: `s3://bucket/prefix`, or Loki's
    /// `s3://access_key:secret_key@region-or-endpoint/bucket`.
    pub s3: String,
    /// Bucket name (wins over the URL's).
    pub bucketnames: String,
    /// Endpoint of an S3-compatible server, e.g. `http://minio:9000`.
    pub endpoint: String,
    /// Region (default from `AWS_REGION`, else `us-east-1`).
    pub region: String,
    /// Access key (default from `AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// Secret key (default from `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
    /// Session token (default from `AWS_SESSION_TOKEN`).
    pub session_token: String,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO needs.
    pub s3forcepathstyle: bool,
    /// Allow plain HTTP endpoints.
    pub insecure: bool,
}

/// `storage_config.gcs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GcsConfig {
    /// Bucket name.
    pub bucket_name: String,
    /// Path to a service-account JSON key (default: the environment's
    /// application credentials).
    pub service_account: String,
}

/// `storage_config.azure`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AzureConfig {
    /// Storage account name.
    pub account_name: String,
    /// Storage account key.
    pub account_key: String,
    /// Container name.
    pub container_name: String,
}

/// `storage_config.index_shipper`: the querier's index cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexShipperConfig {
    /// Local directory for downloaded index files; empty means
    /// `<path_prefix>/index_cache`.
    pub cache_location: String,
    /// How often the cache looks for new or removed index files.
    #[serde(with = "humantime_serde_compat")]
    pub resync_interval: Duration,
}

impl Default for IndexShipperConfig {
    fn default() -> IndexShipperConfig {
        IndexShipperConfig {
            cache_location: String::new(),
            resync_interval: Duration::from_secs(5 * 60),
        }
    }
}
