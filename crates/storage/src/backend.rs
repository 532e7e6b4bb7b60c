//! One object-store backend behind a small byte-moving API. Every error
//! names the operation and key.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::config::{AwsConfig, StorageConfig};
use crate::error::StorageError;

/// A handle on one object store.
#[derive(Debug, Clone)]
pub struct ObjectStorage {
    inner: Arc<dyn ObjectStore>,
    description: String,
}

impl ObjectStorage {
    /// Wraps any object store (tests use `object_store::memory::InMemory`).
    pub fn new(inner: Arc<dyn ObjectStore>, description: impl Into<String>) -> ObjectStorage {
        ObjectStorage {
            inner,
            description: description.into(),
        }
    }

    /// Builds the backend a schema period names.
    pub fn from_config(
        backend: &str,
        config: &StorageConfig,
        path_prefix: &Path,
    ) -> Result<ObjectStorage, StorageError> {
        match backend {
            "filesystem" => {
                let directory = if config.filesystem.directory.is_empty() {
                    path_prefix.join("chunks")
                } else {
                    Path::new(&config.filesystem.directory).to_path_buf()
                };
                std::fs::create_dir_all(&directory).map_err(|source| StorageError::Local {
                    operation: "creating storage_config.filesystem.directory",
                    path: directory.display().to_string(),
                    source,
                })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&directory)
                    .map_err(|err| {
                        StorageError::Config(format!(
                            "storage_config.filesystem.directory {}: {err}",
                            directory.display()
                        ))
                    })?;
                Ok(ObjectStorage::new(
                    Arc::new(store),
                    format!("filesystem:{}", directory.display()),
                ))
            }
            "s3" => s3(&config.aws),
            "gcs" => gcs(config),
            "azure" => azure(config),
            other => Err(StorageError::Config(format!(
                "unknown object store {other:?}"
            ))),
        }
    }

    /// Returns a human-readable name of the backend, for logs.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Stores an object (atomically replacing any previous one).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StorageError> {
        self.inner
            .put(&ObjectPath::from(key), PutPayload::from_bytes(bytes))
            .await
            .map(|_| ())
            .map_err(|source| backend_error("put", key, source))
    }

    /// Stores an object only if no object exists at `key` (an atomic
    /// conditional create). Returns whether this call created it.
    pub async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool, StorageError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .inner
            .put_opts(
                &ObjectPath::from(key),
                PutPayload::from_bytes(bytes),
                options,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(source) => Err(backend_error("conditional put", key, source)),
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let result = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(|source| backend_error("get", key, source))?;
        result
            .bytes()
            .await
            .map_err(|source| backend_error("get", key, source))
    }

    /// Lists every key under a prefix (recursively), with sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let prefix_path = ObjectPath::from(prefix);
        self.inner
            .list(Some(&prefix_path))
            .map_ok(|meta| (meta.location.to_string(), meta.size))
            .try_collect()
            .await
            .map_err(|source| backend_error("list", prefix, source))
    }

    /// Lists the "directories" directly under a prefix: the distinct next
    /// path segments of the keys below it, as full prefixes without a
    /// trailing `/`.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix_path = ObjectPath::from(prefix);
        let listed = self
            .inner
            .list_with_delimiter(Some(&prefix_path))
            .await
            .map_err(|source| backend_error("list", prefix, source))?;
        let mut dirs: Vec<String> = listed
            .common_prefixes
            .into_iter()
            .map(|path| path.to_string())
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// Deletes an object; deleting a missing object succeeds.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(backend_error("delete", key, source)),
        }
    }
}

fn backend_error(operation: &'static str, key: &str, source: object_store::Error) -> StorageError {
    match source {
        object_store::Error::NotFound { .. } => StorageError::NotFound {
            key: key.to_string(),
        },
        source => StorageError::Backend {
            operation,
            key: key.to_string(),
            source,
        },
    }
}

/// What an `s3://` URL says.
#[derive(Debug, Default, PartialEq, Eq)]
struct S3Url {
    bucket: String,
    prefix: String,
    region: String,
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

/// Parses `s3://bucket/prefix` or Loki's
/// `s3://access_key:secret_key@region-or-endpoint/bucket`. A host with
/// credentials, or one that looks like a region or an endpoint (has a dot
/// or a port), is Loki's form.
fn parse_s3_url(text: &str) -> Result<S3Url, StorageError> {
    let url = url::Url::parse(text)
        .map_err(|err| StorageError::Config(format!("storage_config.aws.s3: {text:?}: {err}")))?;
    if url.scheme() != "s3" && url.scheme() != "s3n" {
        return Err(StorageError::Config(format!(
            "storage_config.aws.s3: {text:?} must start with s3://"
        )));
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let path = url.path().trim_matches('/').to_string();
    let has_credentials = !url.username().is_empty();
    let looks_like_region =
        host.split('-').count() >= 3 && host.chars().last().is_some_and(|c| c.is_ascii_digit());
    let looks_like_endpoint = host.contains('.') || url.port().is_some() || host == "localhost";
    if has_credentials || looks_like_region || looks_like_endpoint {
        let (bucket, prefix) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let mut parsed = S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            access_key_id: percent_decode(url.username()),
            secret_access_key: percent_decode(url.password().unwrap_or_default()),
            ..S3Url::default()
        };
        if looks_like_region && !looks_like_endpoint {
            parsed.region = host;
        } else if looks_like_endpoint {
            let port = url
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default();
            parsed.endpoint = format!("https://{host}{port}");
        }
        Ok(parsed)
    } else {
        Ok(S3Url {
            bucket: host,
            prefix: path,
            ..S3Url::default()
        })
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn s3(config: &AwsConfig) -> Result<ObjectStorage, StorageError> {
    let from_url = if config.s3.is_empty() {
        S3Url::default()
    } else {
        parse_s3_url(&config.s3)?
    };
    let pick = |configured: &str, from_url: &str| {
        if configured.is_empty() {
            from_url.to_string()
        } else {
            configured.to_string()
        }
    };
    let bucket = pick(&config.bucketnames, &from_url.bucket);
    if bucket.is_empty() {
        return Err(StorageError::Config(
            "storage_config.aws: no bucket: set bucketnames or s3: s3://bucket".to_string(),
        ));
    }
    if bucket.contains(',') {
        return Err(StorageError::Config(
            "storage_config.aws.bucketnames: several buckets are not supported; give one"
                .to_string(),
        ));
    }
    // Environment first (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    // AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT…), config on top.
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
    let region = pick(&config.region, &from_url.region);
    if !region.is_empty() {
        builder = builder.with_region(region);
    }
    let mut endpoint = pick(&config.endpoint, &from_url.endpoint);
    let mut path_style = config.s3forcepathstyle;
    if !endpoint.is_empty() {
        if !endpoint.contains("://") {
            let scheme = if config.insecure { "http" } else { "https" };
            endpoint = format!("{scheme}://{endpoint}");
        } else if config.insecure && config.endpoint.is_empty() {
            // An endpoint taken from the s3:// URL defaults to https;
            // `insecure` asks for plain HTTP.
            endpoint = endpoint.replacen("https://", "http://", 1);
        }
        // Like the AWS SDKs: an endpoint that is an IP address, localhost or
        // has an explicit port cannot take the bucket as a subdomain.
        path_style = path_style || needs_path_style(&endpoint);
        if !path_style {
            endpoint = bucket_in_host(&endpoint, &bucket)?;
        }
        builder = builder.with_endpoint(endpoint.clone());
    }
    if config.insecure || endpoint.starts_with("http://") {
        builder = builder.with_allow_http(true);
    }
    let access_key = pick(&config.access_key_id, &from_url.access_key_id);
    if !access_key.is_empty() {
        builder = builder.with_access_key_id(access_key);
    }
    let secret = pick(&config.secret_access_key, &from_url.secret_access_key);
    if !secret.is_empty() {
        builder = builder.with_secret_access_key(secret);
    }
    if !config.session_token.is_empty() {
        builder = builder.with_token(&config.session_token);
    }
    builder = builder.with_virtual_hosted_style_request(!path_style);
    let store = builder
        .build()
        .map_err(|err| StorageError::Config(format!("storage_config.aws: {err}")))?;
    let description = format!("s3:{bucket}/{}", from_url.prefix);
    let store: Arc<dyn ObjectStore> = if from_url.prefix.is_empty() {
        Arc::new(store)
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(
            store,
            from_url.prefix.as_str(),
        ))
    };
    Ok(ObjectStorage::new(store, description))
}

/// Returns whether an endpoint must be addressed path-style.
fn needs_path_style(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else {
        return true;
    };
    let ip_host = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
    ip_host || url.host_str() == Some("localhost") || url.port().is_some()
}

/// Returns the endpoint with the bucket as a subdomain, as object_store's
/// virtual-hosted mode expects (`https://bucket.s3.example.com`).
fn bucket_in_host(endpoint: &str, bucket: &str) -> Result<String, StorageError> {
    let mut url = url::Url::parse(endpoint).map_err(|err| {
        StorageError::Config(format!("storage_config.aws.endpoint: {endpoint:?}: {err}"))
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    if host.starts_with(&format!("{bucket}.")) {
        return Ok(endpoint.trim_end_matches('/').to_string());
    }
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|err| {
            StorageError::Config(format!("storage_config.aws.endpoint: {endpoint:?}: {err}"))
        })?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(feature = "gcs")]
fn gcs(config: &StorageConfig) -> Result<ObjectStorage, StorageError> {
    let gcs = &config.gcs;
    if gcs.bucket_name.is_empty() {
        return Err(StorageError::Config(
            "storage_config.gcs.bucket_name: required".to_string(),
        ));
    }
    let mut builder =
        object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(&gcs.bucket_name);
    if !gcs.service_account.is_empty() {
        builder = builder.with_service_account_path(&gcs.service_account);
    }
    let store = builder
        .build()
        .map_err(|err| StorageError::Config(format!("storage_config.gcs: {err}")))?;
    Ok(ObjectStorage::new(
        Arc::new(store),
        format!("gcs:{}", gcs.bucket_name),
    ))
}

#[cfg(not(feature = "gcs"))]
fn gcs(_: &StorageConfig) -> Result<ObjectStorage, StorageError> {
    Err(StorageError::Config(
        "object_store gcs: this build lacks GCS support; rebuild with `--features sluice-storage/gcs`".to_string(),
    ))
}

#[cfg(feature = "azure")]
fn azure(config: &StorageConfig) -> Result<ObjectStorage, StorageError> {
    let azure = &config.azure;
    if azure.container_name.is_empty() {
        return Err(StorageError::Config(
            "storage_config.azure.container_name: required".to_string(),
        ));
    }
    let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env()
        .with_container_name(&azure.container_name);
    if !azure.account_name.is_empty() {
        builder = builder.with_account(&azure.account_name);
    }
    if !azure.account_key.is_empty() {
        builder = builder.with_access_key(&azure.account_key);
    }
    let store = builder
        .build()
        .map_err(|err| StorageError::Config(format!("storage_config.azure: {err}")))?;
    Ok(ObjectStorage::new(
        Arc::new(store),
        format!("azure:{}", azure.container_name),
    ))
}

#[cfg(not(feature = "azure"))]
fn azure(_: &StorageConfig) -> Result<ObjectStorage, StorageError> {
    Err(StorageError::Config(
        "object_store azure: this build lacks Azure support; rebuild with `--features sluice-storage/azure`".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            parse_s3_url("s3://logs/sluice/prod").unwrap(),
            S3Url {
                bucket: "logs".into(),
                prefix: "sluice/prod".into(),
                ..S3Url::default()
            }
        );
        assert_eq!(
            parse_s3_url("s3://AKID:se%2Fcret@us-west-2/loki").unwrap(),
            S3Url {
                bucket: "loki".into(),
                region: "us-west-2".into(),
                access_key_id: "AKID".into(),
                secret_access_key: "se/cret".into(),
                ..S3Url::default()
            }
        );
        let minio = parse_s3_url("s3://user:pass@minio.local:9000/chunks").unwrap();
        assert_eq!(minio.endpoint, "https://minio.local:9000");
        assert_eq!(minio.bucket, "chunks");
        assert!(parse_s3_url("http://bucket").is_err());
    }

    #[test]
    fn endpoint_addressing() {
        assert!(needs_path_style("http://127.0.0.1:9000"));
        assert!(needs_path_style("http://localhost"));
        assert!(needs_path_style("http://minio:9000"));
        assert!(!needs_path_style("https://s3.eu-central-1.example.com"));
        assert_eq!(
            bucket_in_host("https://s3.example.com", "logs").unwrap(),
            "https://logs.s3.example.com"
        );
        assert_eq!(
            bucket_in_host("https://logs.s3.example.com/", "logs").unwrap(),
            "https://logs.s3.example.com"
        );
    }

    #[tokio::test]
    async fn filesystem_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            ObjectStorage::from_config("filesystem", &StorageConfig::default(), dir.path())
                .unwrap();
        storage
            .put("fake/chunks/1/a", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(
            storage.get("fake/chunks/1/a").await.unwrap(),
            Bytes::from_static(b"hello")
        );
        let listed = storage.list("fake/").await.unwrap();
        assert_eq!(listed, vec![("fake/chunks/1/a".to_string(), 5)]);
        storage.delete("fake/chunks/1/a").await.unwrap();
        storage.delete("fake/chunks/1/a").await.unwrap();
        assert!(matches!(
            storage.get("fake/chunks/1/a").await.unwrap_err(),
            StorageError::NotFound { .. }
        ));
        assert!(dir.path().join("chunks").is_dir());
    }

    #[tokio::test]
    async fn conditional_create_and_directory_listing() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            ObjectStorage::from_config("filesystem", &StorageConfig::default(), dir.path())
                .unwrap();
        assert!(storage
            .put_if_absent("lease/1", Bytes::from_static(b"a"))
            .await
            .unwrap());
        assert!(!storage
            .put_if_absent("lease/1", Bytes::from_static(b"b"))
            .await
            .unwrap());
        assert_eq!(
            storage.get("lease/1").await.unwrap(),
            Bytes::from_static(b"a")
        );
        storage
            .put("index/index_1/fake/x.idx", Bytes::from_static(b"x"))
            .await
            .unwrap();
        storage
            .put("index/index_2/other/y.idx", Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(
            storage.list_dirs("index").await.unwrap(),
            vec!["index/index_1".to_string(), "index/index_2".to_string()]
        );
        assert_eq!(
            storage.list_dirs("index/index_2/").await.unwrap(),
            vec!["index/index_2/other".to_string()]
        );
        assert!(storage.list_dirs("nothing").await.unwrap().is_empty());
    }

    #[test]
    fn missing_bucket_is_named() {
        let err = s3(&AwsConfig::default()).unwrap_err().to_string();
        assert!(err.contains("bucket"), "{err}");
    }
}
