//! One stream: a label set and its chunks, oldest first. The newest chunk
//! takes appends until it is closed (full, idle, too old, or forced); closed
//! chunks wait for the flusher, and flushed ones stay for the retain period.

use std::time::Instant;

use parking_lot::Mutex;
use sluice_chunk::{
    ChunkError, ChunkFormat, ChunkIter, ChunkRef, Codec, Direction, Labels, MemChunk,
};
use sluice_common::token_bucket::TokenBucket;

use crate::config::IngesterConfig;
use crate::error::IngesterError;

/// Why a chunk was closed and flushed (Loki's `reason` label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FlushReason {
    Full,
    Idle,
    MaxAge,
    Forced,
}

impl FlushReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FlushReason::Full => "full",
            FlushReason::Idle => "idle",
            FlushReason::MaxAge => "max_age",
            FlushReason::Forced => "forced",
        }
    }
}

/// Where a chunk is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlushState {
    /// In memory only.
    Pending,
    /// Handed to a flush worker.
    Queued,
    /// Uploaded; waiting for its index entry to be shipped.
    Uploaded(ChunkRef),
    /// Uploaded and indexed at the given time.
    Flushed(Instant),
}

/// A chunk with its flush bookkeeping.
#[derive(Debug)]
pub(crate) struct ChunkDesc {
    pub(crate) id: u64,
    pub(crate) chunk: MemChunk,
    pub(crate) closed: Option<FlushReason>,
    pub(crate) last_append: Instant,
    pub(crate) state: FlushState,
    pub(crate) failures: u32,
    pub(crate) retry_after: Option<Instant>,
}

/// A stream's identity (immutable, readable without locking) and its data.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) labels: Labels,
    /// Canonical label string, as sent to clients.
    pub(crate) labels_text: String,
    pub(crate) fingerprint: u64,
    pub(crate) data: Mutex<StreamData>,
}

/// The mutable part of a stream.
#[derive(Debug)]
pub(crate) struct StreamData {
    pub(crate) chunks: Vec<ChunkDesc>,
    next_chunk_id: u64,
    codec: Codec,
    format: ChunkFormat,
    block_size: usize,
    target_size: usize,
    /// The last accepted entry, to drop exact repeats as Loki does.
    pub(crate) last_timestamp: Option<i64>,
    pub(crate) last_line: String,
    /// The newest timestamp the stream holds, for `unordered_writes`'
    /// window.
    pub(crate) highest_timestamp: Option<i64>,
    /// The stream's `per_stream_rate_limit` bucket, made on first use.
    pub(crate) rate_limiter: Option<TokenBucket>,
    /// Sequence number of the last WAL push record applied to this stream;
    /// replay skips records a checkpoint already holds.
    pub(crate) last_seq: u64,
}

/// What one append did to a stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendOutcome {
    pub(crate) appended: usize,
    pub(crate) chunks_created: usize,
    pub(crate) chunks_closed_full: usize,
}

/// An entry copied out of a chunk, with a key that orders ties exactly as
/// they were appended.
struct Found {
    timestamp: i64,
    chunk_index: usize,
    sequence: i64,
    line: String,
}

impl Stream {
    /// The error of a chunk of this stream that cannot be read.
    pub(crate) fn chunk_error(&self, source: ChunkError) -> IngesterError {
        IngesterError::Chunk {
            stream: self.labels_text.clone(),
            source,
        }
    }

    pub(crate) fn new(labels: Labels, config: &IngesterConfig) -> Stream {
        let labels_text = labels.to_string();
        let fingerprint = labels.fingerprint();
        Stream {
            labels,
            labels_text,
            fingerprint,
            data: Mutex::new(StreamData {
                chunks: Vec::new(),
                next_chunk_id: 0,
                codec: config.chunk_encoding,
                format: config.chunk_format,
                block_size: config.chunk_block_size,
                target_size: config.chunk_target_size,
                last_timestamp: None,
                last_line: String::new(),
                highest_timestamp: None,
                rate_limiter: None,
                last_seq: 0,
            }),
        }
    }
}

impl StreamData {
    /// Appends entries in any timestamp order; an entry identical to the
    /// previous accepted one (timestamp and line) is dropped silently.
    pub(crate) fn append<'a>(
        &mut self,
        entries: impl Iterator<Item = (i64, &'a str)>,
        now: Instant,
    ) -> AppendOutcome {
        let mut outcome = AppendOutcome::default();
        for (timestamp, line) in entries {
            if self.last_timestamp == Some(timestamp) && self.last_line == line {
                continue;
            }
            let head_usable = self
                .chunks
                .last()
                .is_some_and(|desc| desc.closed.is_none() && desc.state == FlushState::Pending);
            if head_usable {
                let head = self.chunks.last_mut().expect("checked above");
                if head.chunk.is_full() {
                    head.closed = Some(FlushReason::Full);
                    outcome.chunks_closed_full += 1;
                }
            }
            let needs_new_chunk = self
                .chunks
                .last()
                .is_none_or(|desc| desc.closed.is_some() || desc.state != FlushState::Pending);
            if needs_new_chunk {
                self.push_chunk(
                    MemChunk::new(self.codec, self.block_size, self.target_size)
                        .with_format(self.format),
                    now,
                );
                outcome.chunks_created += 1;
            }
            let head = self
                .chunks
                .last_mut()
                .expect("a chunk was pushed above when none was open");
            head.chunk.append(timestamp, line);
            head.last_append = now;
            self.last_timestamp = Some(timestamp);
            self.highest_timestamp = Some(
                self.highest_timestamp
                    .map_or(timestamp, |highest| highest.max(timestamp)),
            );
            self.last_line.clear();
            self.last_line.push_str(line);
            outcome.appended += 1;
        }
        outcome
    }

    /// Adds a chunk (new, or restored from a checkpoint) as the head.
    pub(crate) fn push_chunk(&mut self, chunk: MemChunk, now: Instant) {
        if let Some((_, newest)) = chunk.bounds() {
            self.highest_timestamp = Some(
                self.highest_timestamp
                    .map_or(newest, |highest| highest.max(newest)),
            );
        }
        let id = self.next_chunk_id;
        self.next_chunk_id += 1;
        self.chunks.push(ChunkDesc {
            id,
            chunk,
            closed: None,
            last_append: now,
            state: FlushState::Pending,
            failures: 0,
            retry_after: None,
        });
    }

    /// Returns whether the stream holds entries in `[from, through)`.
    pub(crate) fn overlaps(&self, from: i64, through: i64) -> bool {
        self.chunks.iter().any(|desc| {
            desc.chunk
                .bounds()
                .is_some_and(|(min, max)| min < through && max >= from)
        })
    }

    /// Returns whether the stream has no chunks left.
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes of uncompressed head blocks the stream holds.
    pub(crate) fn head_bytes(&self) -> usize {
        self.chunks.iter().map(|desc| desc.chunk.head_bytes()).sum()
    }

    /// Compresses every head block into a block now and frees its buffers;
    /// returns the uncompressed bytes that were in them.
    pub(crate) fn compress_heads(&mut self) -> usize {
        let mut compressed = 0;
        for desc in &mut self.chunks {
            let bytes = desc.chunk.head_bytes();
            if bytes > 0 {
                desc.chunk.cut_block_and_release();
                compressed += bytes;
            }
        }
        compressed
    }

    /// Iterators over the chunks that overlap `[from, through)`, in chunk
    /// order. They own what they read (shared compressed blocks, a copy of
    /// the head's entries in range), so the caller can release the
    /// stream's lock before [`read`]ing them: pushes to the stream do not
    /// wait for decompression, pipelines or parsers.
    pub(crate) fn iters(
        &self,
        from: i64,
        through: i64,
        direction: Direction,
    ) -> Result<Vec<ChunkIter>, ChunkError> {
        let mut iters = Vec::new();
        for desc in &self.chunks {
            let Some((chunk_min, chunk_max)) = desc.chunk.bounds() else {
                continue;
            };
            if chunk_min >= through || chunk_max < from {
                continue;
            }
            iters.push(desc.chunk.iter(from, through, direction)?);
        }
        Ok(iters)
    }
}

/// Reads the entries of [`StreamData::iters`] (same direction) that pass
/// `keep`: up to `limit` of them in the query's direction, each line as
/// `render` writes it (the line itself, or its digest).
pub(crate) fn read(
    iters: Vec<ChunkIter>,
    direction: Direction,
    keep: &mut dyn FnMut(i64, &str) -> bool,
    render: &dyn Fn(&str) -> String,
    limit: usize,
) -> Result<Vec<(i64, String)>, ChunkError> {
    let mut found: Vec<Found> = Vec::new();
    for (chunk_index, mut iter) in iters.into_iter().enumerate() {
        let mut taken: i64 = 0;
        while let Some((timestamp, line)) = iter.try_next_entry()? {
            if !keep(timestamp, line) {
                continue;
            }
            // Backward iteration yields a chunk's entries in reverse, so a
            // decreasing sequence restores append order under an
            // ascending sort.
            let sequence = match direction {
                Direction::Forward => taken,
                Direction::Backward => -taken,
            };
            found.push(Found {
                timestamp,
                chunk_index,
                sequence,
                line: render(line),
            });
            taken += 1;
            if taken as usize >= limit {
                break;
            }
        }
    }
    found.sort_by_key(|entry| (entry.timestamp, entry.chunk_index, entry.sequence));
    if direction == Direction::Backward {
        found.reverse();
    }
    found.truncate(limit);
    Ok(found
        .into_iter()
        .map(|entry| (entry.timestamp, entry.line))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_all(_: i64, _: &str) -> bool {
        true
    }

    /// Up to `limit` entries in `[from, through)` that pass `keep`, read
    /// under the lock.
    fn query(
        data: &StreamData,
        (from, through): (i64, i64),
        direction: Direction,
        keep: &mut dyn FnMut(i64, &str) -> bool,
        limit: usize,
    ) -> Vec<(i64, String)> {
        let iters = data.iters(from, through, direction).unwrap();
        read(iters, direction, keep, &str::to_string, limit).unwrap()
    }

    fn stream_with(config: &IngesterConfig, entries: &[(i64, &str)]) -> Stream {
        let stream = Stream::new(Labels::from_pairs([("job", "test")]), config);
        stream
            .data
            .lock()
            .append(entries.iter().copied(), Instant::now());
        stream
    }

    #[test]
    fn out_of_order_entries_read_back_sorted_both_ways() {
        let config = IngesterConfig::default();
        let stream = stream_with(&config, &[(30, "c"), (10, "a"), (20, "b")]);
        let data = stream.data.lock();
        let forward = query(&data, (0, 100), Direction::Forward, &mut keep_all, 100);
        assert_eq!(
            forward,
            vec![(10, "a".into()), (20, "b".into()), (30, "c".into())]
        );
        let backward = query(&data, (0, 100), Direction::Backward, &mut keep_all, 2);
        assert_eq!(backward, vec![(30, "c".into()), (20, "b".into())]);
        let window = query(&data, (10, 30), Direction::Forward, &mut keep_all, 100);
        assert_eq!(window, vec![(10, "a".into()), (20, "b".into())]);
    }

    #[test]
    fn reads_run_after_the_lock_is_released_and_see_what_was_there() {
        let config = IngesterConfig {
            chunk_block_size: 64,
            ..IngesterConfig::default()
        };
        let lines: Vec<String> = (0..50)
            .map(|i| format!("line {i:02} of the stream"))
            .collect();
        let entries: Vec<(i64, &str)> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| (i as i64, line.as_str()))
            .collect();
        let stream = stream_with(&config, &entries);
        let iters = stream
            .data
            .lock()
            .iters(0, 100, Direction::Forward)
            .unwrap();
        // The lock is free while reading: a push goes through meanwhile,
        // and the read sees the stream as it was (compressed blocks and
        // head alike).
        let mut pushed = false;
        let mut push = |_: i64, _: &str| {
            if !pushed {
                let mut data = stream.data.try_lock().expect("the read holds no lock");
                data.append([(60, "pushed during the read")].into_iter(), Instant::now());
                pushed = true;
            }
            true
        };
        let read_back = read(iters, Direction::Forward, &mut push, &str::to_string, 100).unwrap();
        let expected: Vec<(i64, String)> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| (i as i64, line.clone()))
            .collect();
        assert_eq!(read_back, expected);
        let now = query(
            &stream.data.lock(),
            (55, 100),
            Direction::Forward,
            &mut keep_all,
            100,
        );
        assert_eq!(now, vec![(60, "pushed during the read".to_string())]);
    }

    #[test]
    fn exact_repeat_is_dropped_but_same_timestamp_other_line_is_kept() {
        let config = IngesterConfig::default();
        let stream = stream_with(&config, &[(10, "a"), (10, "a"), (10, "b")]);
        let data = stream.data.lock();
        let all = query(&data, (0, 100), Direction::Forward, &mut keep_all, 100);
        assert_eq!(all, vec![(10, "a".into()), (10, "b".into())]);
    }

    #[test]
    fn ordering_holds_across_many_chunks() {
        let config = IngesterConfig {
            chunk_block_size: 64,
            chunk_target_size: 64,
            ..IngesterConfig::default()
        };
        let entries: Vec<(i64, String)> = (0..500)
            .map(|i| ((i * 7919) % 500, format!("line {i}")))
            .collect();
        let stream = Stream::new(Labels::from_pairs([("job", "test")]), &config);
        let outcome = stream.data.lock().append(
            entries.iter().map(|(ts, line)| (*ts, line.as_str())),
            Instant::now(),
        );
        assert_eq!(outcome.appended, 500);
        assert!(outcome.chunks_created > 1, "small target size cuts chunks");
        assert_eq!(outcome.chunks_closed_full, outcome.chunks_created - 1);
        let data = stream.data.lock();
        let forward = query(&data, (0, 500), Direction::Forward, &mut keep_all, 1000);
        let timestamps: Vec<i64> = forward.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(timestamps, (0..500).collect::<Vec<_>>());
        let newest = query(&data, (0, 500), Direction::Backward, &mut keep_all, 3);
        let newest: Vec<i64> = newest.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(newest, vec![499, 498, 497]);
    }

    #[test]
    fn a_closed_chunk_takes_no_more_appends() {
        let config = IngesterConfig::default();
        let stream = stream_with(&config, &[(1, "a")]);
        let mut data = stream.data.lock();
        data.chunks[0].closed = Some(FlushReason::Idle);
        let outcome = data.append([(2, "b")].into_iter(), Instant::now());
        assert_eq!(outcome.chunks_created, 1);
        assert_eq!(data.chunks.len(), 2);
        assert_eq!(data.chunks[1].chunk.entries(), 1);
    }
}
