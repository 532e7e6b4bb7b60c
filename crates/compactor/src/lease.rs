//! The lease that makes one compactor work at a time.
//!
//! Leases are objects `index/compactor/lease/<generation>` in the control
//! store, holding the holder's name and an expiry time; the highest
//! generation is the current lease. A compactor takes a free or expired
//! lease by *creating* the next generation with a conditional put
//! (`PutMode::Create`), so of two compactors racing for it exactly one
//! wins. The holder renews by rewriting its own generation (nobody else
//! writes it) and gives the lease up as soon as a higher generation
//! appears or its own expiry passes without a renewal.

use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sluice_storage::{ObjectStorage, StorageError};

use crate::error::CompactorError;

const LEASE_DIR: &str = "index/compactor/lease/";

/// What a lease object says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseBody {
    holder: String,
    expires_ns: i64,
}

/// The lease this instance holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    renewed_ns: i64,
}

/// One instance's view of the compactor lease.
#[derive(Debug)]
pub(crate) struct Lease {
    backend: ObjectStorage,
    holder: String,
    ttl_ns: i64,
    held: Mutex<Option<Held>>,
}

impl Lease {
    pub(crate) fn new(backend: ObjectStorage, holder: String, ttl_ns: i64) -> Lease {
        Lease {
            backend,
            holder,
            ttl_ns,
            held: Mutex::new(None),
        }
    }

    /// Returns whether this instance holds the lease at `now_ns`, taking or
    /// renewing it as needed. Renewal happens once a third of the lease
    /// time has passed, so most calls do no I/O.
    pub(crate) async fn ensure(&self, now_ns: i64) -> Result<bool, CompactorError> {
        let held = *self.held.lock();
        if let Some(held) = held {
            let age = now_ns.saturating_sub(held.renewed_ns);
            if age < self.ttl_ns / 3 {
                return Ok(true);
            }
            if age < self.ttl_ns && self.renew(held, now_ns).await? {
                return Ok(true);
            }
            *self.held.lock() = None;
            tracing::warn!(holder = %self.holder, generation = held.generation, "compactor lease lost");
        }
        self.acquire(now_ns).await
    }

    /// Like [`Lease::ensure`], but an error when the lease is not held.
    pub(crate) async fn check(&self, now_ns: i64) -> Result<(), CompactorError> {
        if self.ensure(now_ns).await? {
            Ok(())
        } else {
            Err(CompactorError::LeaseLost)
        }
    }

    /// Gives the lease up (on shutdown), so another instance can take it
    /// without waiting for it to expire.
    pub(crate) async fn release(&self) {
        let Some(held) = self.held.lock().take() else {
            return;
        };
        let body = LeaseBody {
            holder: self.holder.clone(),
            expires_ns: i64::MIN,
        };
        match self.latest_generation().await {
            Ok(Some(latest)) if latest == held.generation => {
                if let Err(err) = self.write(held.generation, &body).await {
                    tracing::warn!(error = %err, "cannot release the compactor lease");
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot release the compactor lease"),
        }
    }

    async fn renew(&self, held: Held, now_ns: i64) -> Result<bool, CompactorError> {
        if self.latest_generation().await? != Some(held.generation) {
            return Ok(false);
        }
        let body = LeaseBody {
            holder: self.holder.clone(),
            expires_ns: now_ns.saturating_add(self.ttl_ns),
        };
        self.write(held.generation, &body).await?;
        // A contender may have created the next generation meanwhile (it
        // can only have done so after our previous expiry): then it wins.
        if self.latest_generation().await? != Some(held.generation) {
            return Ok(false);
        }
        *self.held.lock() = Some(Held {
            generation: held.generation,
            renewed_ns: now_ns,
        });
        Ok(true)
    }

    async fn acquire(&self, now_ns: i64) -> Result<bool, CompactorError> {
        let latest = self.latest_generation().await?;
        let next = match latest {
            None => 1,
            Some(generation) => match self.read(generation).await? {
                Some(body) if body.holder == self.holder || body.expires_ns < now_ns => {
                    generation + 1
                }
                // Deleted between listing and reading: a newer one exists.
                None => return Ok(false),
                Some(_) => return Ok(false),
            },
        };
        let body = LeaseBody {
            holder: self.holder.clone(),
            expires_ns: now_ns.saturating_add(self.ttl_ns),
        };
        let bytes = serde_json::to_vec(&body).map_err(|err| CompactorError::Corrupt {
            what: "lease",
            key: key(next),
            reason: err.to_string(),
        })?;
        if !self
            .backend
            .put_if_absent(&key(next), Bytes::from(bytes))
            .await?
        {
            return Ok(false);
        }
        *self.held.lock() = Some(Held {
            generation: next,
            renewed_ns: now_ns,
        });
        tracing::info!(holder = %self.holder, generation = next, "compactor lease acquired");
        // Older generations are never read again.
        for old in self.generations().await? {
            if old < next {
                if let Err(err) = self.backend.delete(&key(old)).await {
                    tracing::debug!(error = %err, "cannot remove an old lease generation");
                }
            }
        }
        Ok(true)
    }

    async fn generations(&self) -> Result<Vec<u64>, StorageError> {
        let mut generations: Vec<u64> = self
            .backend
            .list(LEASE_DIR)
            .await?
            .into_iter()
            .filter_map(|(key, _)| key.rsplit('/').next().and_then(|name| name.parse().ok()))
            .collect();
        generations.sort_unstable();
        Ok(generations)
    }

    async fn latest_generation(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.generations().await?.last().copied())
    }

    async fn read(&self, generation: u64) -> Result<Option<LeaseBody>, CompactorError> {
        match self.backend.get(&key(generation)).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| CompactorError::Corrupt {
                        what: "lease",
                        key: key(generation),
                        reason: err.to_string(),
                    })
            }
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    async fn write(&self, generation: u64, body: &LeaseBody) -> Result<(), CompactorError> {
        let bytes = serde_json::to_vec(body).map_err(|err| CompactorError::Corrupt {
            what: "lease",
            key: key(generation),
            reason: err.to_string(),
        })?;
        self.backend
            .put(&key(generation), Bytes::from(bytes))
            .await
            .map_err(CompactorError::from)
    }
}

/// The object key of a lease generation (zero-padded so keys sort).
fn key(generation: u64) -> String {
    format!("{LEASE_DIR}{generation:020}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn backend() -> ObjectStorage {
        ObjectStorage::new(
            Arc::new(object_store::memory::InMemory::new()),
            "memory".to_string(),
        )
    }

    #[tokio::test]
    async fn one_holder_then_takeover_after_expiry() {
        let shared = backend();
        let first = Lease::new(shared.clone(), "a".into(), 60 * SECOND);
        let second = Lease::new(shared.clone(), "b".into(), 60 * SECOND);
        assert!(first.ensure(0).await.unwrap());
        assert!(!second.ensure(0).await.unwrap());
        // Renewal keeps it.
        assert!(first.ensure(40 * SECOND).await.unwrap());
        assert!(!second.ensure(90 * SECOND).await.unwrap());
        // The holder stops renewing: after expiry the other takes over and
        // the old holder notices.
        assert!(second.ensure(101 * SECOND).await.unwrap());
        assert!(!first.ensure(102 * SECOND).await.unwrap());
        assert!(matches!(
            first.check(102 * SECOND).await,
            Err(CompactorError::LeaseLost)
        ));
        // Only the newest generation is left.
        assert_eq!(second.generations().await.unwrap(), vec![2]);
    }

    #[tokio::test]
    async fn release_hands_over_at_once() {
        let shared = backend();
        let first = Lease::new(shared.clone(), "a".into(), 60 * SECOND);
        let second = Lease::new(shared, "b".into(), 60 * SECOND);
        assert!(first.ensure(0).await.unwrap());
        first.release().await;
        assert!(second.ensure(SECOND).await.unwrap());
    }

    #[tokio::test]
    async fn racing_contenders_get_one_winner() {
        let shared = backend();
        let leases: Vec<Arc<Lease>> = (0..8)
            .map(|index| Arc::new(Lease::new(shared.clone(), format!("c{index}"), 60 * SECOND)))
            .collect();
        let results = futures::future::join_all(leases.iter().map(|lease| {
            let lease = Arc::clone(lease);
            async move { lease.ensure(0).await.unwrap() }
        }))
        .await;
        assert_eq!(results.iter().filter(|held| **held).count(), 1);
    }
}
