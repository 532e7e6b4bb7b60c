//! The durable queue of recorded samples between the rule groups and the
//! remote-write clients.
//!
//! Each group evaluation's samples are one record of a write-ahead log
//! (`sluice-wal`, fsynced before the evaluation counts as done); each
//! client's progress is an ack record. A batch leaves memory once every
//! client acknowledged it; a checkpoint (every `wal.truncate_frequency`,
//! and at shutdown) writes the unsent batches and the clients' progress
//! and deletes the older segments. After a crash the replay restores the
//! unsent batches, so a restart loses no sample; a batch whose ack had not
//! reached the disk is sent again (the receiver ignores an identical
//! sample).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use sluice_wal::{FsyncPolicy, Wal, WalConfig, WalError};
use tokio::sync::Notify;

use crate::metrics::RulerMetrics;
use crate::prompb::TimeSeries;

/// One WAL record: a batch (`tenant` and `timeseries` set) or a client's
/// ack (`ack_client` set).
#[derive(Clone, PartialEq, prost::Message)]
struct WalRecord {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(string, tag = "2")]
    tenant: String,
    #[prost(message, repeated, tag = "3")]
    timeseries: Vec<TimeSeries>,
    #[prost(string, tag = "4")]
    ack_client: String,
    #[prost(uint64, tag = "5")]
    ack_seq: u64,
    #[prost(int64, tag = "6")]
    created_ms: i64,
}

/// A batch of samples of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Order of appending, from 1.
    pub seq: u64,
    /// The tenant (`X-Scope-OrgID` of the request).
    pub tenant: String,
    /// The series.
    pub timeseries: Vec<TimeSeries>,
    /// When it was appended, Unix ms.
    pub created_ms: i64,
}

impl Batch {
    /// Samples in the batch.
    pub fn samples(&self) -> usize {
        self.timeseries
            .iter()
            .map(|series| series.samples.len())
            .sum()
    }
}

#[derive(Debug, Default)]
struct State {
    pending: BTreeMap<u64, Arc<Batch>>,
    next_seq: u64,
    acked: HashMap<String, u64>,
}

/// The queue.
#[derive(Debug)]
pub struct SampleWal {
    wal: Wal,
    state: Mutex<State>,
    clients: Vec<String>,
    appended: Notify,
    metrics: RulerMetrics,
}

impl SampleWal {
    /// Opens (and replays) the WAL in `dir` for these clients.
    pub fn open(
        dir: PathBuf,
        clients: Vec<String>,
        metrics: RulerMetrics,
    ) -> Result<SampleWal, WalError> {
        let config = WalConfig {
            fsync: FsyncPolicy::Always,
            segment_size: 16 * 1024 * 1024,
            ..WalConfig::new(dir)
        };
        let (wal, mut replay) = Wal::open(config)?;
        let mut state = State::default();
        while let Some(record) = replay.next_record()? {
            let Ok(decoded) = <WalRecord as prost::Message>::decode(record.data) else {
                tracing::warn!("skipping an unreadable ruler WAL record");
                continue;
            };
            state.next_seq = state.next_seq.max(decoded.seq).max(decoded.ack_seq);
            if decoded.ack_client.is_empty() {
                state.pending.insert(
                    decoded.seq,
                    Arc::new(Batch {
                        seq: decoded.seq,
                        tenant: decoded.tenant,
                        timeseries: decoded.timeseries,
                        created_ms: decoded.created_ms,
                    }),
                );
            } else {
                let acked = state.acked.entry(decoded.ack_client).or_default();
                *acked = (*acked).max(decoded.ack_seq);
            }
        }
        drop(replay);
        let queue = SampleWal {
            wal,
            state: Mutex::new(state),
            clients,
            appended: Notify::new(),
            metrics,
        };
        {
            let mut state = queue.state.lock();
            queue.trim(&mut state);
            let replayed = state.pending.len();
            if replayed > 0 {
                tracing::info!(batches = replayed, "ruler WAL replayed unsent samples");
            }
        }
        Ok(queue)
    }

    /// Appends a batch and waits until it is durable.
    pub async fn append(
        &self,
        tenant: &str,
        timeseries: Vec<TimeSeries>,
        created_ms: i64,
    ) -> Result<(), WalError> {
        if timeseries.is_empty() {
            return Ok(());
        }
        let ticket = {
            let mut state = self.state.lock();
            state.next_seq += 1;
            let batch = Batch {
                seq: state.next_seq,
                tenant: tenant.to_string(),
                timeseries,
                created_ms,
            };
            let record = WalRecord {
                seq: batch.seq,
                tenant: batch.tenant.clone(),
                timeseries: batch.timeseries.clone(),
                created_ms,
                ..WalRecord::default()
            };
            // Submitted under the lock so the WAL's order is the seq order
            // and a checkpoint sees every submitted batch.
            let ticket = self.wal.submit(prost::Message::encode_to_vec(&record))?;
            self.metrics.samples_appended.inc_by(batch.samples() as u64);
            state.pending.insert(batch.seq, Arc::new(batch));
            self.update_pending(&state);
            ticket
        };
        self.appended.notify_waiters();
        ticket.wait_async().await?;
        Ok(())
    }

    /// Notified (all waiters) on every append.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    /// Batches after `after` for a client, oldest first, dropping those
    /// older than `max_age_ms` (relative to `now_ms`).
    pub fn batches_after(&self, after: u64, now_ms: i64, max_age_ms: i64) -> Vec<Arc<Batch>> {
        let mut state = self.state.lock();
        let too_old: Vec<u64> = state
            .pending
            .values()
            .filter(|batch| now_ms - batch.created_ms > max_age_ms)
            .map(|batch| batch.seq)
            .collect();
        for seq in too_old {
            if let Some(batch) = state.pending.remove(&seq) {
                tracing::warn!(tenant = %batch.tenant, samples = batch.samples(), "dropping unsent samples older than ruler.wal.max_age");
                self.metrics
                    .samples_dropped_too_old
                    .inc_by(batch.samples() as u64);
            }
        }
        self.update_pending(&state);
        state
            .pending
            .range(after + 1..)
            .map(|(_, batch)| Arc::clone(batch))
            .collect()
    }

    /// Where a client resumes: its last durable ack.
    pub fn acked(&self, client: &str) -> u64 {
        self.state.lock().acked.get(client).copied().unwrap_or(0)
    }

    /// Records that `client` is done with every batch up to `seq`.
    pub fn ack(&self, client: &str, seq: u64) -> Result<(), WalError> {
        let mut state = self.state.lock();
        let acked = state.acked.entry(client.to_string()).or_default();
        if seq <= *acked {
            return Ok(());
        }
        *acked = seq;
        let record = WalRecord {
            ack_client: client.to_string(),
            ack_seq: seq,
            ..WalRecord::default()
        };
        // Not waited for: losing an ack only means sending again.
        let _ticket = self.wal.submit(prost::Message::encode_to_vec(&record))?;
        self.trim(&mut state);
        Ok(())
    }

    fn trim(&self, state: &mut State) {
        let done = self
            .clients
            .iter()
            .map(|client| state.acked.get(client).copied().unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX);
        state.pending.retain(|&seq, _| seq > done);
        self.update_pending(state);
    }

    fn update_pending(&self, state: &State) {
        let samples: usize = state.pending.values().map(|batch| batch.samples()).sum();
        self.metrics.pending_samples.set(samples as i64);
    }

    /// Replaces the segments with a checkpoint of the unsent batches and
    /// the clients' progress (blocking: call off the async runtime).
    pub fn checkpoint(&self) -> Result<(), WalError> {
        self.wal.checkpoint(|writer| {
            let (batches, acked) = {
                let state = self.state.lock();
                (
                    state.pending.values().cloned().collect::<Vec<_>>(),
                    state.acked.clone(),
                )
            };
            for (client, seq) in acked {
                writer.write(&prost::Message::encode_to_vec(&WalRecord {
                    ack_client: client,
                    ack_seq: seq,
                    ..WalRecord::default()
                }))?;
            }
            for batch in batches {
                writer.write(&prost::Message::encode_to_vec(&WalRecord {
                    seq: batch.seq,
                    tenant: batch.tenant.clone(),
                    timeseries: batch.timeseries.clone(),
                    created_ms: batch.created_ms,
                    ..WalRecord::default()
                }))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Flushes and stops the WAL writer.
    pub fn close(self) -> Result<(), WalError> {
        self.wal.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompb::{Label, Sample};

    fn series(value: f64) -> Vec<TimeSeries> {
        vec![TimeSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: "x".into(),
            }],
            samples: vec![Sample {
                value,
                timestamp: 1,
            }],
        }]
    }

    fn open(dir: &std::path::Path) -> SampleWal {
        SampleWal::open(
            dir.to_path_buf(),
            vec!["a".into(), "b".into()],
            RulerMetrics::default(),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsent_batches_survive_a_restart_and_acks_trim() {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path());
        for value in [1.0, 2.0, 3.0] {
            wal.append("fake", series(value), 10).await.unwrap();
        }
        wal.ack("a", 2).unwrap();
        wal.ack("b", 1).unwrap();
        assert_eq!(wal.batches_after(0, 10, 1000).len(), 2);
        wal.close().unwrap();

        let wal = open(dir.path());
        assert_eq!(wal.acked("a"), 2);
        assert_eq!(wal.acked("b"), 1);
        let batches = wal.batches_after(wal.acked("b"), 10, 1000);
        assert_eq!(batches.iter().map(|b| b.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(batches[1].timeseries, series(3.0));
        // New batches continue the sequence.
        wal.append("fake", series(4.0), 10).await.unwrap();
        assert_eq!(wal.batches_after(3, 10, 1000)[0].seq, 4);
        tokio::task::block_in_place(|| wal.checkpoint()).unwrap();
        wal.ack("b", 4).unwrap();
        wal.ack("a", 4).unwrap();
        assert!(wal.batches_after(0, 10, 1000).is_empty());
        wal.close().unwrap();

        let wal = open(dir.path());
        assert!(wal.batches_after(0, 10, 1000).is_empty());
        assert_eq!(wal.acked("a"), 4);
        // Too old: dropped.
        wal.append("fake", series(5.0), 10).await.unwrap();
        assert!(wal.batches_after(0, 10_000, 1000).is_empty());
    }
}
