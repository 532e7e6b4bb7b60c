//! An object store over a local directory that can "crash": after a set
//! number of writes and deletes, every further write or delete fails, as
//! if the process had died right before it. Reads keep working, so a test
//! can inspect what a crash at that point leaves behind.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use parking_lot::Mutex;

/// Replaces files the first time a key is read, then fails that read as
/// if the file had vanished between a listing and the download.
struct ReplaceOnGet {
    trigger: String,
    puts: Vec<(String, Bytes)>,
    deletes: Vec<String>,
}

/// Writes and deletes allowed and done.
#[derive(Debug)]
struct Budget {
    /// Writes and deletes still allowed; negative: unlimited.
    remaining: AtomicI64,
    done: AtomicU64,
    /// The keys written or deleted, in order.
    log: Mutex<Vec<String>>,
}

impl Budget {
    fn allow(&self, key: &str) -> Result<()> {
        let allowed = self
            .remaining
            .fetch_update(
                Ordering::SeqCst,
                Ordering::SeqCst,
                |remaining| match remaining {
                    remaining if remaining < 0 => Some(remaining),
                    0 => None,
                    remaining => Some(remaining - 1),
                },
            )
            .is_ok();
        if allowed {
            self.done.fetch_add(1, Ordering::SeqCst);
            self.log.lock().push(key.to_string());
            Ok(())
        } else {
            Err(crashed())
        }
    }
}

/// A crashable filesystem object store.
pub struct FaultyStore {
    inner: Arc<LocalFileSystem>,
    budget: Arc<Budget>,
    replace_on_get: Mutex<Option<ReplaceOnGet>>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore").finish_non_exhaustive()
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    pub fn new(root: &Path) -> FaultyStore {
        FaultyStore {
            inner: Arc::new(LocalFileSystem::new_with_prefix(root).expect("local store")),
            budget: Arc::new(Budget {
                remaining: AtomicI64::new(-1),
                done: AtomicU64::new(0),
                log: Mutex::new(Vec::new()),
            }),
            replace_on_get: Mutex::new(None),
        }
    }

    /// Allows `writes` more writes or deletes, then fails every one.
    pub fn crash_after(&self, writes: u64) {
        self.budget
            .remaining
            .store(i64::try_from(writes).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    /// Lifts the limit (the restarted process).
    pub fn recover(&self) {
        self.budget.remaining.store(-1, Ordering::SeqCst);
    }

    /// Returns the writes and deletes performed so far.
    pub fn mutations(&self) -> u64 {
        self.budget.done.load(Ordering::SeqCst)
    }

    /// Returns the keys written or deleted so far, in order.
    pub fn mutation_log(&self) -> Vec<String> {
        self.budget.log.lock().clone()
    }

    /// The first read of `trigger` writes `puts`, deletes `deletes`, and
    /// fails with "not found".
    pub fn replace_on_get(&self, trigger: &str, puts: Vec<(String, Bytes)>, deletes: Vec<String>) {
        *self.replace_on_get.lock() = Some(ReplaceOnGet {
            trigger: trigger.to_string(),
            puts,
            deletes,
        });
    }

    fn allow_mutation(&self, key: &ObjectPath) -> Result<()> {
        self.budget.allow(key.as_ref())
    }
}

fn crashed() -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: "injected crash: the process is gone".into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.allow_mutation(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.allow_mutation(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> Result<GetResult> {
        let hook = {
            let mut slot = self.replace_on_get.lock();
            match slot.as_ref() {
                Some(hook) if hook.trigger == location.as_ref() => slot.take(),
                _ => None,
            }
        };
        if let Some(hook) = hook {
            for (key, bytes) in hook.puts {
                self.inner.put(&ObjectPath::from(key), bytes.into()).await?;
            }
            for key in hook.deletes {
                self.inner.delete(&ObjectPath::from(key)).await?;
            }
            return Err(object_store::Error::NotFound {
                path: location.to_string(),
                source: "replaced by a compaction".into(),
            });
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<ObjectPath>>,
    ) -> BoxStream<'static, Result<ObjectPath>> {
        let inner = Arc::clone(&self.inner);
        let budget = Arc::clone(&self.budget);
        // The budget is checked per location, as each is deleted.
        locations
            .then(move |location| {
                let inner = Arc::clone(&inner);
                let budget = Arc::clone(&budget);
                async move {
                    let location = location?;
                    budget.allow(location.as_ref())?;
                    inner.delete(&location).await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> Result<()> {
        self.allow_mutation(to)?;
        self.inner.copy_opts(from, to, options).await
    }
}
