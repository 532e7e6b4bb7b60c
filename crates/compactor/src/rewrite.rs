//! Applying delete requests to one chunk: keep it, drop it, or write a
//! new chunk without the deleted entries.
//!
//! The rewritten chunk holds the surviving entries in timestamp order,
//! encoded with the original codec and block size, so rewriting the same
//! chunk for the same requests always yields the same bytes and therefore
//! the same object key: a compactor that stops after uploading it and runs
//! again produces the identical object, never a second copy.

use sluice_chunk::{ChunkRef, Direction, MemChunk};
use sluice_storage::ChunkStore;

use crate::delete_requests::CompiledRequest;
use crate::error::CompactorError;

/// What delete requests do to one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rewrite {
    /// No entry matched: the chunk stays.
    Unchanged,
    /// Every entry matched: the chunk leaves the index.
    Dropped {
        /// Entries removed.
        lines: u64,
    },
    /// Some entries matched: the new chunk replaces the old one.
    Replaced {
        /// The new chunk.
        chunk: ChunkRef,
        /// Entries removed.
        lines: u64,
    },
}

/// Downloads a chunk, removes the entries any of `requests` deletes and
/// uploads the result when something changed.
pub(crate) async fn rewrite_chunk(
    store: &ChunkStore,
    tenant: &str,
    chunk: ChunkRef,
    requests: Vec<CompiledRequest>,
) -> Result<Rewrite, CompactorError> {
    let decoded = store.get_chunk(tenant, &chunk).await?;
    let key = store.chunk_key(tenant, &chunk).to_path();
    let filtered = tokio::task::spawn_blocking(move || filter_chunk(&decoded, &requests))
        .await
        .map_err(|err| CompactorError::task("chunk rewrite", err))?
        .map_err(|reason| CompactorError::Corrupt {
            what: "chunk",
            key,
            reason,
        })?;
    match filtered {
        Filtered::Unchanged => Ok(Rewrite::Unchanged),
        Filtered::Empty { deleted } => Ok(Rewrite::Dropped { lines: deleted }),
        Filtered::Rewritten {
            bytes,
            from_ns,
            through_ns,
            entries,
            uncompressed,
            deleted,
        } => {
            let new_chunk = store
                .put_encoded_chunk(
                    tenant,
                    chunk.fingerprint,
                    from_ns,
                    through_ns,
                    entries,
                    uncompressed,
                    bytes,
                )
                .await?;
            Ok(Rewrite::Replaced {
                chunk: new_chunk,
                lines: deleted,
            })
        }
    }
}

enum Filtered {
    Unchanged,
    Empty {
        deleted: u64,
    },
    Rewritten {
        bytes: Vec<u8>,
        from_ns: i64,
        through_ns: i64,
        entries: usize,
        uncompressed: usize,
        deleted: u64,
    },
}

fn filter_chunk(chunk: &MemChunk, requests: &[CompiledRequest]) -> Result<Filtered, String> {
    let mut kept = MemChunk::new(chunk.codec(), chunk.block_size(), 0)
        .with_zstd_level(sluice_chunk::DEFAULT_ZSTD_LEVEL);
    let mut deleted = 0u64;
    let mut iter = chunk
        .iter(i64::MIN, i64::MAX, Direction::Forward)
        .map_err(|err| err.to_string())?;
    while let Some((ts_ns, line)) = iter.try_next_entry().map_err(|err| err.to_string())? {
        if requests.iter().any(|request| request.deletes(ts_ns, line)) {
            deleted += 1;
        } else {
            kept.append(ts_ns, line);
        }
    }
    if deleted == 0 {
        return Ok(Filtered::Unchanged);
    }
    let Some((from_ns, through_ns)) = kept.bounds() else {
        return Ok(Filtered::Empty { deleted });
    };
    Ok(Filtered::Rewritten {
        entries: kept.entries(),
        uncompressed: kept.uncompressed_bytes(),
        bytes: kept.encode(),
        from_ns,
        through_ns,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use sluice_chunk::Codec;

    use super::*;
    use crate::delete_requests::{DeleteRequest, DeleteRequestStatus};

    fn request(query: &str, start_ms: i64, end_ms: i64) -> CompiledRequest {
        CompiledRequest::compile(DeleteRequest {
            request_id: "0000000a".into(),
            tenant: "t".into(),
            query: query.into(),
            start_ms,
            end_ms,
            created_ms: 0,
            status: DeleteRequestStatus::Received,
            processed_ms: None,
            deleted_lines: 0,
        })
        .unwrap()
    }

    fn chunk() -> MemChunk {
        let mut chunk = MemChunk::new(Codec::Zstd, 64, 0);
        for index in 0..100i64 {
            let line = if index % 10 == 0 {
                format!("secret {index}")
            } else {
                format!("public {index}")
            };
            chunk.append(index * 1_000_000, &line);
        }
        chunk
    }

    #[test]
    fn removes_exactly_the_matching_entries_deterministically() {
        let requests = vec![request(r#"{a="1"} |= "secret""#, 0, 49)];
        let Filtered::Rewritten {
            bytes,
            from_ns,
            through_ns,
            entries,
            deleted,
            ..
        } = filter_chunk(&chunk(), &requests).unwrap()
        else {
            panic!("expected a rewrite");
        };
        assert_eq!(deleted, 5);
        assert_eq!(entries, 95);
        assert_eq!((from_ns, through_ns), (1_000_000, 99_000_000));
        let decoded = MemChunk::decode(&bytes).unwrap();
        let lines = decoded
            .iter(i64::MIN, i64::MAX, Direction::Forward)
            .unwrap()
            .collect_all();
        assert_eq!(lines.len(), 95);
        assert!(lines
            .iter()
            .all(|(ts, line)| !line.starts_with("secret") || *ts >= 50_000_000));
        let Filtered::Rewritten { bytes: again, .. } = filter_chunk(&chunk(), &requests).unwrap()
        else {
            panic!("expected a rewrite");
        };
        assert_eq!(bytes, again);
    }

    #[test]
    fn unchanged_and_empty() {
        let none = vec![request(r#"{a="1"} |= "absent""#, 0, 1000)];
        assert!(matches!(
            filter_chunk(&chunk(), &none).unwrap(),
            Filtered::Unchanged
        ));
        let all = vec![request(r#"{a="1"}"#, 0, 1000)];
        assert!(matches!(
            filter_chunk(&chunk(), &all).unwrap(),
            Filtered::Empty { deleted: 100 }
        ));
    }
}
