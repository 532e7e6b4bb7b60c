//! Delete requests: what the delete API stores, what queriers read to hide
//! deleted lines, and what the compactor applies to the index and chunks.
//!
//! Each request is one JSON object `index/delete_requests/<tenant>/<id>.json`
//! in the control store, so adding, cancelling and marking requests never
//! rewrite a shared file. Times are milliseconds, as in Loki's API; a
//! request covers entries with `start <= ts <= end`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sluice_logql::{Expr, LineFilterChain, Matcher, Stage};
use sluice_storage::{ObjectStorage, StorageError};

use crate::error::CompactorError;

const REQUESTS_DIR: &str = "index/delete_requests/";
const NS_PER_MS: i64 = 1_000_000;
/// How long a querier's copy of a tenant's requests is reused.
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Random ids tried before giving up (8 hex digits rarely collide).
const MAX_ID_ATTEMPTS: u64 = 64;

/// Where a delete request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeleteRequestStatus {
    /// Stored; hidden from queries; not yet applied to storage.
    Received,
    /// Applied to storage by the compactor.
    Processed,
}

impl DeleteRequestStatus {
    /// Returns Loki's status string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeleteRequestStatus::Received => "received",
            DeleteRequestStatus::Processed => "processed",
        }
    }
}

/// One delete request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// 8 hex digits, unique per tenant.
    pub request_id: String,
    /// The tenant the request deletes from.
    pub tenant: String,
    /// A LogQL stream selector with optional line filters.
    pub query: String,
    /// First millisecond covered.
    pub start_ms: i64,
    /// Last millisecond covered (inclusive).
    pub end_ms: i64,
    /// When the request was received, ms since the epoch.
    pub created_ms: i64,
    /// Where it stands.
    pub status: DeleteRequestStatus,
    /// When the compactor finished applying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_ms: Option<i64>,
    /// Lines the compactor removed from rewritten chunks (whole chunks
    /// dropped are not counted line by line).
    #[serde(default)]
    pub deleted_lines: u64,
}

impl DeleteRequest {
    /// Returns the first covered nanosecond.
    pub fn start_ns(&self) -> i64 {
        self.start_ms.saturating_mul(NS_PER_MS)
    }

    /// Returns the last covered nanosecond (inclusive).
    pub fn end_ns(&self) -> i64 {
        self.end_ms.saturating_mul(NS_PER_MS)
    }
}

/// Why a delete query is refused (Loki's wording).
pub(crate) fn parse_query(query: &str) -> Result<(Vec<Matcher>, LineFilterChain), String> {
    let invalid = |reason: String| format!("invalid query expression: {reason}");
    match sluice_logql::parse_expr(query) {
        Ok(Expr::Log(log)) => {
            if let Some(stage) = log
                .pipeline
                .iter()
                .find(|stage| !matches!(stage, Stage::LineFilter(_)))
            {
                return Err(invalid(format!(
                    "only line filters may follow the selector, found `{stage}`"
                )));
            }
            let filters = log.line_filters();
            Ok((log.matchers, filters))
        }
        Ok(_) => Err(invalid(
            "a delete query is a stream selector with optional line filters".to_string(),
        )),
        Err(err) => Err(invalid(err.to_string())),
    }
}

/// A request ready to test streams and lines against.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRequest {
    pub(crate) request: DeleteRequest,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) filters: LineFilterChain,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
}

impl CompiledRequest {
    pub(crate) fn compile(request: DeleteRequest) -> Result<CompiledRequest, String> {
        let (matchers, filters) = parse_query(&request.query)?;
        Ok(CompiledRequest {
            start_ns: request.start_ns(),
            end_ns: request.end_ns(),
            request,
            matchers,
            filters,
        })
    }

    /// Returns whether the request applies to a stream.
    pub(crate) fn matches_stream<'a>(&self, label: &impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers
            .iter()
            .all(|matcher| matcher.matches(label(&matcher.name).unwrap_or("")))
    }

    /// Returns whether `[from, through]` overlaps the request's range.
    pub(crate) fn overlaps(&self, from_ns: i64, through_ns: i64) -> bool {
        from_ns <= self.end_ns && through_ns >= self.start_ns
    }

    /// Returns whether the request removes every entry of a chunk spanning
    /// `[from, through]` (no line filter, range fully covered).
    pub(crate) fn covers(&self, from_ns: i64, through_ns: i64) -> bool {
        self.filters.is_empty() && from_ns >= self.start_ns && through_ns <= self.end_ns
    }

    /// Returns whether the request deletes one entry.
    pub(crate) fn deletes(&self, ts_ns: i64, line: &str) -> bool {
        ts_ns >= self.start_ns && ts_ns <= self.end_ns && self.filters.matches(line.as_bytes())
    }
}

/// The delete requests in the control store.
#[derive(Debug)]
pub struct DeleteRequestStore {
    backend: ObjectStorage,
    cache: Mutex<HashMap<String, (std::time::Instant, Vec<DeleteRequest>)>>,
    ids: RandomState,
}

impl DeleteRequestStore {
    /// Opens the requests kept in `backend`.
    pub fn new(backend: ObjectStorage) -> DeleteRequestStore {
        DeleteRequestStore {
            backend,
            cache: Mutex::new(HashMap::new()),
            ids: RandomState::new(),
        }
    }

    fn key(tenant: &str, request_id: &str) -> String {
        format!("{REQUESTS_DIR}{tenant}/{request_id}.json")
    }

    /// Stores a new request with a fresh id; returns it.
    pub async fn add(
        &self,
        tenant: &str,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        created_ms: i64,
    ) -> Result<DeleteRequest, CompactorError> {
        for attempt in 0..MAX_ID_ATTEMPTS {
            let mut hasher = self.ids.build_hasher();
            hasher.write(tenant.as_bytes());
            hasher.write(query.as_bytes());
            hasher.write_i64(created_ms);
            hasher.write_u64(attempt);
            let request = DeleteRequest {
                request_id: format!("{:08x}", hasher.finish() as u32),
                tenant: tenant.to_string(),
                query: query.to_string(),
                start_ms,
                end_ms,
                created_ms,
                status: DeleteRequestStatus::Received,
                processed_ms: None,
                deleted_lines: 0,
            };
            let key = Self::key(tenant, &request.request_id);
            if self
                .backend
                .put_if_absent(&key, encode(&request, &key)?)
                .await?
            {
                self.invalidate(tenant);
                return Ok(request);
            }
        }
        Err(CompactorError::Corrupt {
            what: "delete request",
            key: format!("{REQUESTS_DIR}{tenant}/"),
            reason: format!("no free request id after {MAX_ID_ATTEMPTS} attempts"),
        })
    }

    /// Returns a tenant's requests, oldest first.
    pub async fn list(&self, tenant: &str) -> Result<Vec<DeleteRequest>, CompactorError> {
        let mut requests = Vec::new();
        for (key, _) in self
            .backend
            .list(&format!("{REQUESTS_DIR}{tenant}/"))
            .await?
        {
            if let Some(request) = self.read(&key).await? {
                requests.push(request);
            }
        }
        requests.sort_by(|a, b| (a.created_ms, &a.request_id).cmp(&(b.created_ms, &b.request_id)));
        Ok(requests)
    }

    /// Like [`DeleteRequestStore::list`], reusing a copy up to 10 s old
    /// (queriers call this for every query).
    pub async fn list_cached(&self, tenant: &str) -> Result<Vec<DeleteRequest>, CompactorError> {
        if let Some((at, requests)) = self.cache.lock().get(tenant) {
            if at.elapsed() < CACHE_TTL {
                return Ok(requests.clone());
            }
        }
        let requests = self.list(tenant).await?;
        self.cache.lock().insert(
            tenant.to_string(),
            (std::time::Instant::now(), requests.clone()),
        );
        Ok(requests)
    }

    /// Returns every tenant's requests.
    pub async fn list_all(&self) -> Result<Vec<DeleteRequest>, CompactorError> {
        let mut requests = Vec::new();
        for dir in self.backend.list_dirs(REQUESTS_DIR).await? {
            if let Some(tenant) = dir.rsplit('/').next() {
                requests.extend(self.list(tenant).await?);
            }
        }
        Ok(requests)
    }

    /// Returns one request.
    pub async fn get(
        &self,
        tenant: &str,
        request_id: &str,
    ) -> Result<Option<DeleteRequest>, CompactorError> {
        if request_id.is_empty() || !request_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        self.read(&Self::key(tenant, request_id)).await
    }

    /// Removes a request (cancellation).
    pub async fn remove(&self, tenant: &str, request_id: &str) -> Result<(), CompactorError> {
        self.backend.delete(&Self::key(tenant, request_id)).await?;
        self.invalidate(tenant);
        Ok(())
    }

    /// Records that the compactor applied a request. A request cancelled
    /// meanwhile stays cancelled.
    pub(crate) async fn mark_processed(
        &self,
        request: &DeleteRequest,
        now_ms: i64,
        deleted_lines: u64,
    ) -> Result<(), CompactorError> {
        let key = Self::key(&request.tenant, &request.request_id);
        let Some(mut stored) = self.read(&key).await? else {
            return Ok(());
        };
        stored.status = DeleteRequestStatus::Processed;
        stored.processed_ms = Some(now_ms);
        stored.deleted_lines = stored.deleted_lines.saturating_add(deleted_lines);
        self.backend.put(&key, encode(&stored, &key)?).await?;
        self.invalidate(&request.tenant);
        Ok(())
    }

    fn invalidate(&self, tenant: &str) {
        self.cache.lock().remove(tenant);
    }

    async fn read(&self, key: &str) -> Result<Option<DeleteRequest>, CompactorError> {
        match self.backend.get(key).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| CompactorError::Corrupt {
                        what: "delete request",
                        key: key.to_string(),
                        reason: err.to_string(),
                    })
            }
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

fn encode(request: &DeleteRequest, key: &str) -> Result<Bytes, CompactorError> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|err| CompactorError::Corrupt {
            what: "delete request",
            key: key.to_string(),
            reason: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn store() -> DeleteRequestStore {
        DeleteRequestStore::new(ObjectStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            "memory".to_string(),
        ))
    }

    #[tokio::test]
    async fn add_list_cancel_process() {
        let store = store();
        let first = store.add("t", r#"{a="1"}"#, 0, 1000, 5).await.unwrap();
        let second = store
            .add("t", r#"{a="2"} |= "x""#, 0, 1000, 6)
            .await
            .unwrap();
        store.add("u", r#"{a="3"}"#, 0, 1000, 7).await.unwrap();
        assert_eq!(first.request_id.len(), 8);
        assert_ne!(first.request_id, second.request_id);
        let listed = store.list("t").await.unwrap();
        assert_eq!(listed, vec![first.clone(), second.clone()]);
        assert_eq!(store.list_all().await.unwrap().len(), 3);
        store.mark_processed(&second, 9, 4).await.unwrap();
        let processed = store.get("t", &second.request_id).await.unwrap().unwrap();
        assert_eq!(processed.status, DeleteRequestStatus::Processed);
        assert_eq!(processed.deleted_lines, 4);
        store.remove("t", &first.request_id).await.unwrap();
        assert!(store.get("t", &first.request_id).await.unwrap().is_none());
        assert!(store.get("t", "../../x").await.unwrap().is_none());
        // A cancelled request stays cancelled.
        store.mark_processed(&first, 10, 0).await.unwrap();
        assert!(store.get("t", &first.request_id).await.unwrap().is_none());
    }

    #[test]
    fn queries_are_selectors_with_line_filters() {
        assert!(parse_query(r#"{a="1"} |= "x" != "y" |~ "z.*""#).is_ok());
        assert!(parse_query(r#"{a="1"} | json"#)
            .unwrap_err()
            .starts_with("invalid query expression: "));
        assert!(parse_query(r#"count_over_time({a="1"}[1m])"#).is_err());
        assert!(parse_query("{a=}").is_err());
        let request = CompiledRequest::compile(DeleteRequest {
            request_id: "00000001".into(),
            tenant: "t".into(),
            query: r#"{a="1"} |= "secret""#.into(),
            start_ms: 1,
            end_ms: 2,
            created_ms: 0,
            status: DeleteRequestStatus::Received,
            processed_ms: None,
            deleted_lines: 0,
        })
        .unwrap();
        assert!(request.deletes(1_000_000, "a secret"));
        assert!(request.deletes(2_000_000, "a secret"));
        assert!(!request.deletes(2_000_001, "a secret"));
        assert!(!request.deletes(999_999, "a secret"));
        assert!(!request.deletes(1_500_000, "public"));
        assert!(!request.covers(1_000_000, 2_000_000));
        assert!(request.overlaps(0, 1_000_000));
        assert!(!request.overlaps(2_000_001, 3_000_000));
    }
}
