//! One stream: a label set and its chunks, newest last.

use parking_lot::Mutex;
use sluice_chunk::{ChunkError, Codec, Direction, Labels, MemChunk};
use sluice_logql::LineFilterChain;

use crate::config::IngesterConfig;

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
    chunks: Vec<MemChunk>,
    codec: Codec,
    block_size: usize,
    target_size: usize,
    /// The last accepted entry, to drop exact repeats as Loki does.
    last_timestamp: Option<i64>,
    last_line: String,
    min_timestamp: i64,
    max_timestamp: i64,
}

/// What one push did to a stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppendOutcome {
    pub(crate) appended: usize,
    pub(crate) chunks_created: usize,
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
    pub(crate) fn new(labels: Labels, config: &IngesterConfig) -> Stream {
        let labels_text = labels.to_string();
        let fingerprint = labels.fingerprint();
        Stream {
            labels,
            labels_text,
            fingerprint,
            data: Mutex::new(StreamData {
                chunks: Vec::new(),
                codec: config.chunk_encoding,
                block_size: config.chunk_block_size,
                target_size: config.chunk_target_size,
                last_timestamp: None,
                last_line: String::new(),
                min_timestamp: i64::MAX,
                max_timestamp: i64::MIN,
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
    ) -> AppendOutcome {
        let mut outcome = AppendOutcome::default();
        for (timestamp, line) in entries {
            if self.last_timestamp == Some(timestamp) && self.last_line == line {
                continue;
            }
            let needs_new_chunk = self.chunks.last().is_none_or(MemChunk::is_full);
            if needs_new_chunk {
                self.chunks
                    .push(MemChunk::new(self.codec, self.block_size, self.target_size));
                outcome.chunks_created += 1;
            }
            let chunk = self
                .chunks
                .last_mut()
                .expect("a chunk was pushed above when none existed");
            chunk.append(timestamp, line);
            self.last_timestamp = Some(timestamp);
            self.last_line.clear();
            self.last_line.push_str(line);
            self.min_timestamp = self.min_timestamp.min(timestamp);
            self.max_timestamp = self.max_timestamp.max(timestamp);
            outcome.appended += 1;
        }
        outcome
    }

    /// Returns whether the stream holds entries in `[from, through)`.
    pub(crate) fn overlaps(&self, from: i64, through: i64) -> bool {
        !self.chunks.is_empty() && self.min_timestamp < through && self.max_timestamp >= from
    }

    /// Returns up to `limit` entries in `[from, through)` that pass the
    /// line filters, in the query's direction.
    pub(crate) fn query(
        &self,
        from: i64,
        through: i64,
        direction: Direction,
        filters: &LineFilterChain,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, ChunkError> {
        let mut found: Vec<Found> = Vec::new();
        for (chunk_index, chunk) in self.chunks.iter().enumerate() {
            let Some((chunk_min, chunk_max)) = chunk.bounds() else {
                continue;
            };
            if chunk_min >= through || chunk_max < from {
                continue;
            }
            let mut iter = chunk.iter(from, through, direction)?;
            let mut taken: i64 = 0;
            while let Some((timestamp, line)) = iter.next_entry() {
                if !filters.matches(line.as_bytes()) {
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
                    line: line.to_string(),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_with(config: &IngesterConfig, entries: &[(i64, &str)]) -> Stream {
        let stream = Stream::new(Labels::from_pairs([("job", "test")]), config);
        stream.data.lock().append(entries.iter().copied());
        stream
    }

    fn everything() -> LineFilterChain {
        match sluice_logql::parse_expr("{job=\"test\"}").expect("valid query") {
            sluice_logql::Expr::Log(log) => log.line_filters(),
            other => panic!("not a log query: {other:?}"),
        }
    }

    #[test]
    fn out_of_order_entries_read_back_sorted_both_ways() {
        let config = IngesterConfig::default();
        let stream = stream_with(&config, &[(30, "c"), (10, "a"), (20, "b")]);
        let data = stream.data.lock();
        let forward = data
            .query(0, 100, Direction::Forward, &everything(), 100)
            .unwrap();
        assert_eq!(
            forward,
            vec![(10, "a".into()), (20, "b".into()), (30, "c".into())]
        );
        let backward = data
            .query(0, 100, Direction::Backward, &everything(), 2)
            .unwrap();
        assert_eq!(backward, vec![(30, "c".into()), (20, "b".into())]);
        let window = data
            .query(10, 30, Direction::Forward, &everything(), 100)
            .unwrap();
        assert_eq!(window, vec![(10, "a".into()), (20, "b".into())]);
    }

    #[test]
    fn exact_repeat_is_dropped_but_same_timestamp_other_line_is_kept() {
        let config = IngesterConfig::default();
        let stream = stream_with(&config, &[(10, "a"), (10, "a"), (10, "b")]);
        let data = stream.data.lock();
        let all = data
            .query(0, 100, Direction::Forward, &everything(), 100)
            .unwrap();
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
        let outcome = stream
            .data
            .lock()
            .append(entries.iter().map(|(ts, line)| (*ts, line.as_str())));
        assert_eq!(outcome.appended, 500);
        assert!(outcome.chunks_created > 1, "small target size cuts chunks");
        let data = stream.data.lock();
        let forward = data
            .query(0, 500, Direction::Forward, &everything(), 1000)
            .unwrap();
        let timestamps: Vec<i64> = forward.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(timestamps, (0..500).collect::<Vec<_>>());
        let newest = data
            .query(0, 500, Direction::Backward, &everything(), 3)
            .unwrap();
        let newest: Vec<i64> = newest.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(newest, vec![499, 498, 497]);
    }
}
