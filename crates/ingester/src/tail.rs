//! Live tails. Each open `Tail` call registers a [`Tailer`] with its
//! tenant's instance; every push offers the entries of each stream the
//! tailer's matchers select, after the query's pipeline, as one response
//! per resulting label set (Loki's ingester tailer).
//!
//! Responses wait in a small buffer for the gRPC stream. When the reader
//! falls behind and the buffer is full, the stream is dropped and noted
//! (bounds and labels); the notes travel with the next response that fits.
//! A tailer blocked for [`MAX_BLOCKED`] is closed, which ends its stream.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sluice_chunk::Labels;
use sluice_logql::{Expr, LabelSet, Matcher, Pipeline};
use sluice_proto::logproto::{DroppedStream, EntryAdapter, StreamAdapter, TailResponse};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos};
use tokio::sync::mpsc;
use tonic::Status;

use crate::error::IngesterError;

/// Responses buffered per tailer (Loki's `bufferSizeForTailResponse`).
pub(crate) const TAIL_BUFFER: usize = 5;

/// A tailer whose reader has not taken anything for this long is closed.
const MAX_BLOCKED: Duration = Duration::from_secs(15);

/// What a tailer sends into its gRPC stream.
pub(crate) type TailSender = mpsc::Sender<Result<TailResponse, Status>>;

/// One open tail.
pub(crate) struct Tailer {
    matchers: Vec<Matcher>,
    pipeline: Pipeline,
    max_dropped_streams: usize,
    state: Mutex<TailerState>,
}

struct TailerState {
    /// `None` once closed: dropping the sender ends the gRPC stream.
    sender: Option<TailSender>,
    dropped: Vec<DroppedStream>,
    blocked_since: Option<Instant>,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("matchers", &self.matchers.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// Compiles `query` (a log query) for a new tail sending into `sender`.
    pub(crate) fn new(
        query: &str,
        max_dropped_streams: usize,
        sender: TailSender,
    ) -> Result<Tailer, IngesterError> {
        let log = match sluice_logql::parse_expr(query)? {
            Expr::Log(log) => log,
            other => {
                return Err(IngesterError::UnsupportedQuery(format!(
                    "tail queries must be log queries, got `{other}`"
                )))
            }
        };
        let pipeline = Pipeline::new(&log.pipeline)
            .map_err(|err| IngesterError::UnsupportedQuery(err.to_string()))?;
        Ok(Tailer {
            matchers: log.matchers,
            pipeline,
            max_dropped_streams: max_dropped_streams.max(1),
            state: Mutex::new(TailerState {
                sender: Some(sender),
                dropped: Vec::new(),
                blocked_since: None,
            }),
        })
    }

    /// Returns whether the tail ended (closed here or by its reader).
    pub(crate) fn is_closed(&self) -> bool {
        self.state
            .lock()
            .sender
            .as_ref()
            .is_none_or(mpsc::Sender::is_closed)
    }

    /// Ends the tail: its gRPC stream finishes once the buffer is read.
    pub(crate) fn close(&self) {
        self.state.lock().sender = None;
    }

    /// Returns whether the tail selects a stream with these labels.
    pub(crate) fn selects(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|matcher| matcher.matches(labels.get(&matcher.name).unwrap_or("")))
    }

    /// Runs pushed entries of one stream through the pipeline and sends
    /// what survives, one response per resulting label set.
    pub(crate) fn offer<'a>(
        &self,
        labels: &Labels,
        labels_text: &str,
        entries: impl Iterator<Item = &'a EntryAdapter>,
    ) {
        if self.is_closed() {
            return;
        }
        let streams = if self.pipeline.is_noop() {
            let entries: Vec<EntryAdapter> = entries
                .map(|entry| EntryAdapter {
                    timestamp: entry.timestamp,
                    line: entry.line.clone(),
                    structured_metadata: Vec::new(),
                })
                .collect();
            vec![StreamAdapter {
                labels: labels_text.to_string(),
                entries,
                hash: 0,
            }]
        } else {
            self.process(labels, entries)
        };
        for stream in streams {
            if !stream.entries.is_empty() {
                self.send(stream);
            }
        }
    }

    fn process<'a>(
        &self,
        labels: &Labels,
        entries: impl Iterator<Item = &'a EntryAdapter>,
    ) -> Vec<StreamAdapter> {
        let stream_labels: LabelSet = labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str()))
            .collect();
        let mut pipeline = self.pipeline.for_stream(&stream_labels);
        let mut streams: Vec<StreamAdapter> = Vec::new();
        let mut by_labels: HashMap<String, usize> = HashMap::new();
        for entry in entries {
            let timestamp = timestamp_to_nanos(entry.timestamp.as_ref());
            let Some(processed) = pipeline.process(timestamp, &entry.line) else {
                continue;
            };
            let key = processed.labels.to_string();
            let index = *by_labels.entry(key).or_insert_with_key(|key| {
                streams.push(StreamAdapter {
                    labels: key.clone(),
                    entries: Vec::new(),
                    hash: 0,
                });
                streams.len() - 1
            });
            streams[index].entries.push(EntryAdapter {
                timestamp: Some(timestamp_from_nanos(timestamp)),
                line: processed.line.to_string(),
                structured_metadata: Vec::new(),
            });
        }
        streams
    }

    fn send(&self, stream: StreamAdapter) {
        let mut state = self.state.lock();
        let Some(sender) = state.sender.clone() else {
            return;
        };
        if state
            .blocked_since
            .is_some_and(|since| since.elapsed() >= MAX_BLOCKED)
        {
            tracing::warn!("live tail reader blocked too long; closing the tail");
            state.sender = None;
            return;
        }
        let response = TailResponse {
            stream: Some(stream),
            dropped_streams: std::mem::take(&mut state.dropped),
        };
        match sender.try_send(Ok(response)) {
            Ok(()) => state.blocked_since = None,
            Err(mpsc::error::TrySendError::Full(Ok(response))) => {
                state.dropped = response.dropped_streams;
                if let Some(stream) = response.stream {
                    self.note_dropped(&mut state, stream);
                }
                state.blocked_since.get_or_insert_with(Instant::now);
            }
            Err(mpsc::error::TrySendError::Full(Err(_))) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => state.sender = None,
        }
    }

    fn note_dropped(&self, state: &mut TailerState, stream: StreamAdapter) {
        let (Some(first), Some(last)) = (stream.entries.first(), stream.entries.last()) else {
            return;
        };
        if state.dropped.len() >= self.max_dropped_streams {
            // As Loki: the list starts over rather than growing.
            state.dropped.clear();
        }
        state.dropped.push(DroppedStream {
            from: first.timestamp,
            to: last.timestamp,
            labels: stream.labels,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: i64, line: &str) -> EntryAdapter {
        EntryAdapter {
            timestamp: Some(timestamp_from_nanos(ts)),
            line: line.to_string(),
            structured_metadata: Vec::new(),
        }
    }

    fn labels() -> Labels {
        Labels::from_pairs([("job", "app")])
    }

    #[test]
    fn pipeline_filters_and_relabels() {
        let (sender, mut receiver) = mpsc::channel(TAIL_BUFFER);
        let tailer = Tailer::new(r#"{job="app"} |= "keep" | logfmt"#, 10, sender).unwrap();
        assert!(tailer.selects(&labels()));
        assert!(!tailer.selects(&Labels::from_pairs([("job", "db")])));
        let entries = [
            entry(1, "level=info msg=keep"),
            entry(2, "level=info msg=drop"),
            entry(3, "level=error msg=keep"),
        ];
        tailer.offer(&labels(), "{job=\"app\"}", entries.iter());
        let mut got = Vec::new();
        while let Ok(Ok(response)) = receiver.try_recv() {
            let stream = response.stream.unwrap();
            for entry in stream.entries {
                got.push((stream.labels.clone(), entry.line));
            }
        }
        got.sort();
        assert_eq!(
            got,
            vec![
                (
                    "{job=\"app\", level=\"error\", msg=\"keep\"}".to_string(),
                    "level=error msg=keep".to_string()
                ),
                (
                    "{job=\"app\", level=\"info\", msg=\"keep\"}".to_string(),
                    "level=info msg=keep".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_slow_reader_loses_streams_and_hears_about_them() {
        let (sender, mut receiver) = mpsc::channel(TAIL_BUFFER);
        let tailer = Tailer::new(r#"{job="app"}"#, 3, sender).unwrap();
        for ts in 0..(TAIL_BUFFER as i64 + 5) {
            tailer.offer(&labels(), "{job=\"app\"}", [entry(ts, "x")].iter());
        }
        // The buffer took the first five; five more were dropped, and the
        // note list (max 3) started over once.
        for _ in 0..TAIL_BUFFER {
            let response = receiver.try_recv().unwrap().unwrap();
            assert!(response.dropped_streams.is_empty());
        }
        tailer.offer(&labels(), "{job=\"app\"}", [entry(100, "y")].iter());
        let response = receiver.try_recv().unwrap().unwrap();
        assert_eq!(response.stream.unwrap().entries[0].line, "y");
        let dropped: Vec<i64> = response
            .dropped_streams
            .iter()
            .map(|dropped| timestamp_to_nanos(dropped.from.as_ref()))
            .collect();
        assert_eq!(dropped, vec![8, 9]);
        assert_eq!(response.dropped_streams[0].labels, "{job=\"app\"}");
    }

    #[test]
    fn closing_ends_the_stream_and_metric_queries_are_refused() {
        let (sender, mut receiver) = mpsc::channel(TAIL_BUFFER);
        let tailer = Tailer::new(r#"{job="app"}"#, 10, sender).unwrap();
        assert!(!tailer.is_closed());
        tailer.close();
        assert!(tailer.is_closed());
        assert!(receiver.blocking_recv().is_none());
        let (sender, _receiver) = mpsc::channel(TAIL_BUFFER);
        let err = Tailer::new(r#"count_over_time({job="app"}[1m])"#, 10, sender).unwrap_err();
        assert!(err.to_string().contains("log queries"), "{err}");
    }
}
