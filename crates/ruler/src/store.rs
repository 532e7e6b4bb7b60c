//! Where rule groups live, per tenant and namespace.
//!
//! - `local`: a directory `<dir>/<tenant>/<file>`, each file a rule file
//!   whose name is the namespace. Read-only, as in Loki: edit the files
//!   (the ruler re-reads them every `poll_interval`).
//! - an object store (`filesystem`, `s3`, `gcs`, `azure`, configured in
//!   `storage_config`): one object per group,
//!   `rules/<tenant>/<base64url(namespace)>/<base64url(group)>`, holding
//!   the group as YAML. Writable through the rules API.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use bytes::Bytes;
use sluice_common::{ErrorCode, HttpError, TenantId};
use sluice_storage::{ObjectStorage, StorageConfig, StorageError};

use crate::config::RuleStorageConfig;
use crate::rulefmt::{self, RuleError, RuleGroup};

const RULES_PREFIX: &str = "rules";

/// Each namespace's groups, or why its file could not be loaded.
pub type Namespaces = BTreeMap<String, Result<Vec<RuleGroup>, RuleError>>;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleStoreError {
    /// The local store is read-only.
    #[error("the rules API cannot change rules stored in ruler.storage.type local: edit the rule files instead")]
    ReadOnly,
    /// The namespace or group does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A local file or directory could not be read.
    #[error("reading {path}: {source}")]
    Local {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("rule storage: {0}")]
    Storage(#[from] StorageError),
    /// A stored group is not valid.
    #[error("{0}")]
    Invalid(#[from] RuleError),
}

impl From<RuleStoreError> for HttpError {
    fn from(err: RuleStoreError) -> HttpError {
        let code = match &err {
            RuleStoreError::ReadOnly | RuleStoreError::Invalid(_) => ErrorCode::BadRequest,
            RuleStoreError::NotFound(_) => ErrorCode::NotFound,
            RuleStoreError::Storage(_) => ErrorCode::Unavailable,
            RuleStoreError::Local { .. } => ErrorCode::Internal,
        };
        HttpError::new(code, err.to_string())
    }
}

/// A rule store.
#[derive(Debug, Clone)]
pub enum RuleStore {
    /// A read-only directory (`None`: no directory configured, no rules).
    Local(Option<PathBuf>),
    /// An object store.
    Object(ObjectStorage),
}

impl RuleStore {
    /// Builds the store `ruler.storage` names.
    pub fn from_config(
        config: &RuleStorageConfig,
        storage: &StorageConfig,
        path_prefix: &Path,
    ) -> Result<RuleStore, RuleStoreError> {
        match config.kind.as_str() {
            "local" => {
                let directory = config.local.directory.trim();
                Ok(RuleStore::Local(
                    (!directory.is_empty()).then(|| PathBuf::from(directory)),
                ))
            }
            backend => Ok(RuleStore::Object(ObjectStorage::from_config(
                backend,
                storage,
                path_prefix,
            )?)),
        }
    }

    /// Describes the store for logs.
    pub fn describe(&self) -> String {
        match self {
            RuleStore::Local(Some(dir)) => format!("local:{}", dir.display()),
            RuleStore::Local(None) => "local:(no directory)".to_string(),
            RuleStore::Object(storage) => format!("{}/{RULES_PREFIX}", storage.description()),
        }
    }

    /// Lists every tenant's namespaces. A namespace that fails to load is
    /// reported in place so the caller can keep its previous rules.
    pub async fn list_all(&self) -> Result<BTreeMap<String, Namespaces>, RuleStoreError> {
        let mut all = BTreeMap::new();
        for tenant in self.tenants().await? {
            let namespaces = self.list_tenant(&tenant).await?;
            if !namespaces.is_empty() {
                all.insert(tenant, namespaces);
            }
        }
        Ok(all)
    }

    async fn tenants(&self) -> Result<Vec<String>, RuleStoreError> {
        let names = match self {
            RuleStore::Local(None) => Vec::new(),
            RuleStore::Local(Some(dir)) => {
                let mut names = Vec::new();
                let mut entries = match tokio::fs::read_dir(dir).await {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(source) => return Err(local_error(dir, source)),
                };
                while let Some(entry) = entries
                    .next_entry()
                    .await
                    .map_err(|source| local_error(dir, source))?
                {
                    let is_dir = entry
                        .file_type()
                        .await
                        .map(|kind| kind.is_dir())
                        .unwrap_or(false);
                    if is_dir {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names
            }
            RuleStore::Object(storage) => storage
                .list_dirs(RULES_PREFIX)
                .await?
                .into_iter()
                .filter_map(|dir| dir.rsplit('/').next().map(str::to_string))
                .collect(),
        };
        let mut tenants: Vec<String> = names
            .into_iter()
            .filter(|name| TenantId::new(name).is_ok())
            .collect();
        tenants.sort();
        Ok(tenants)
    }

    /// Lists one tenant's namespaces.
    pub async fn list_tenant(&self, tenant: &str) -> Result<Namespaces, RuleStoreError> {
        let mut namespaces = Namespaces::new();
        match self {
            RuleStore::Local(None) => {}
            RuleStore::Local(Some(dir)) => {
                let tenant_dir = dir.join(tenant);
                let mut entries = match tokio::fs::read_dir(&tenant_dir).await {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(namespaces)
                    }
                    Err(source) => return Err(local_error(&tenant_dir, source)),
                };
                while let Some(entry) = entries
                    .next_entry()
                    .await
                    .map_err(|source| local_error(&tenant_dir, source))?
                {
                    let path = entry.path();
                    let is_file = entry
                        .file_type()
                        .await
                        .map(|kind| kind.is_file() || kind.is_symlink())
                        .unwrap_or(false);
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !is_file || name.starts_with('.') {
                        continue;
                    }
                    let loaded = match tokio::fs::read_to_string(&path).await {
                        Ok(text) => rulefmt::parse_file(&path.display().to_string(), &text)
                            .map(|file| file.groups),
                        Err(err) => Err(RuleError(format!("{}: {err}", path.display()))),
                    };
                    namespaces.insert(name, loaded);
                }
            }
            RuleStore::Object(storage) => {
                let prefix = format!("{RULES_PREFIX}/{tenant}/");
                let mut keys: Vec<String> = storage
                    .list(&prefix)
                    .await?
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                keys.sort();
                for key in keys {
                    let Some((namespace, _group)) = decode_key(&prefix, &key) else {
                        continue;
                    };
                    let bytes = storage.get(&key).await?;
                    let source = format!("{tenant}/{namespace}");
                    let loaded = std::str::from_utf8(&bytes)
                        .map_err(|err| RuleError(format!("{source}: {err}")))
                        .and_then(|text| rulefmt::parse_group(&source, text));
                    let entry = namespaces
                        .entry(namespace)
                        .or_insert_with(|| Ok(Vec::new()));
                    match (entry, loaded) {
                        (Ok(groups), Ok(group)) => groups.push(group),
                        (entry @ Ok(_), Err(err)) => *entry = Err(err),
                        (Err(_), _) => {}
                    }
                }
            }
        }
        Ok(namespaces)
    }

    /// Stores (creates or replaces) one group of a namespace.
    pub async fn set_group(
        &self,
        tenant: &str,
        namespace: &str,
        group: &RuleGroup,
    ) -> Result<(), RuleStoreError> {
        let RuleStore::Object(storage) = self else {
            return Err(RuleStoreError::ReadOnly);
        };
        let yaml = serde_norway::to_string(group).unwrap_or_default();
        storage
            .put(
                &group_key(tenant, namespace, &group.name),
                Bytes::from(yaml),
            )
            .await?;
        Ok(())
    }

    /// Deletes one group.
    pub async fn delete_group(
        &self,
        tenant: &str,
        namespace: &str,
        group: &str,
    ) -> Result<(), RuleStoreError> {
        let RuleStore::Object(storage) = self else {
            return Err(RuleStoreError::ReadOnly);
        };
        let key = group_key(tenant, namespace, group);
        match storage.get(&key).await {
            Ok(_) => {}
            Err(StorageError::NotFound { .. }) => {
                return Err(RuleStoreError::NotFound("group does not exist".into()))
            }
            Err(err) => return Err(err.into()),
        }
        storage.delete(&key).await?;
        Ok(())
    }

    /// Deletes every group of a namespace.
    pub async fn delete_namespace(
        &self,
        tenant: &str,
        namespace: &str,
    ) -> Result<(), RuleStoreError> {
        let RuleStore::Object(storage) = self else {
            return Err(RuleStoreError::ReadOnly);
        };
        let prefix = format!("{RULES_PREFIX}/{tenant}/{}/", URL_SAFE.encode(namespace));
        let keys = storage.list(&prefix).await?;
        if keys.is_empty() {
            return Err(RuleStoreError::NotFound(
                "group namespace does not exist".into(),
            ));
        }
        for (key, _) in keys {
            storage.delete(&key).await?;
        }
        Ok(())
    }
}

fn local_error(path: &Path, source: std::io::Error) -> RuleStoreError {
    RuleStoreError::Local {
        path: path.display().to_string(),
        source,
    }
}

fn group_key(tenant: &str, namespace: &str, group: &str) -> String {
    format!(
        "{RULES_PREFIX}/{tenant}/{}/{}",
        URL_SAFE.encode(namespace),
        URL_SAFE.encode(group)
    )
}

fn decode_key(prefix: &str, key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(prefix)?;
    let (namespace, group) = rest.split_once('/')?;
    let decode = |part: &str| {
        URL_SAFE
            .decode(part)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    Some((decode(namespace)?, decode(group)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str =
        "name: g1\ninterval: 1m\nrules:\n  - record: x:y\n    expr: sum(rate({a=\"b\"}[1m]))\n";

    #[tokio::test]
    async fn local_directory_lists_files_as_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fake")).unwrap();
        std::fs::write(
            dir.path().join("fake/rules.yaml"),
            format!("groups:\n  - {}", GROUP.replace('\n', "\n    ")),
        )
        .unwrap();
        std::fs::write(dir.path().join("fake/bad.yaml"), "groups: [{name: ''}]\n").unwrap();
        std::fs::create_dir_all(dir.path().join("bad tenant")).unwrap();
        let store = RuleStore::Local(Some(dir.path().to_path_buf()));
        let all = store.list_all().await.unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["fake"]);
        let groups = all["fake"]["rules.yaml"].as_ref().unwrap();
        assert_eq!(groups[0].name, "g1");
        let err = all["fake"]["bad.yaml"].as_ref().unwrap_err();
        assert!(err.0.contains("bad.yaml"), "{err}");
        let group = rulefmt::parse_group("t", GROUP).unwrap();
        assert!(matches!(
            store.set_group("fake", "ns", &group).await,
            Err(RuleStoreError::ReadOnly)
        ));
    }

    #[tokio::test]
    async fn object_store_round_trips_groups() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StorageConfig::default();
        config.filesystem.directory = dir.path().display().to_string();
        let store = RuleStore::from_config(
            &RuleStorageConfig {
                kind: "filesystem".into(),
                ..RuleStorageConfig::default()
            },
            &config,
            dir.path(),
        )
        .unwrap();
        let group = rulefmt::parse_group("t", GROUP).unwrap();
        store.set_group("team-a", "ns/one", &group).await.unwrap();
        let mut second = group.clone();
        second.name = "g2".into();
        store.set_group("team-a", "ns/one", &second).await.unwrap();
        let all = store.list_all().await.unwrap();
        let groups = all["team-a"]["ns/one"].as_ref().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0], group);
        store.delete_group("team-a", "ns/one", "g1").await.unwrap();
        assert!(matches!(
            store.delete_group("team-a", "ns/one", "g1").await,
            Err(RuleStoreError::NotFound(_))
        ));
        store.delete_namespace("team-a", "ns/one").await.unwrap();
        assert!(store.list_all().await.unwrap().is_empty());
    }
}
