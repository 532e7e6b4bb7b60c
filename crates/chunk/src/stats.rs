//! Index statistics and byte volumes computed from chunk metadata, with
//! Loki's semantics (`/loki/api/v1/index/stats`, `/index/volume`):
//!
//! - a chunk counts when its `[from, through]` overlaps the asked range;
//! - its bytes and entries count for the fraction of its time span inside
//!   the range (Loki's `GetFactorOfTime`; a one-entry chunk counts whole);
//! - bytes are the uncompressed size of the chunk's blocks.
//!
//! Chunks may be reported by several sources: the store index and every
//! ingester holding a replica of the stream. Replicas fed the same pushes
//! cut the same chunks, so [`ChunkSet`] takes chunks of one stream from
//! different sources that start at the same timestamp for copies of one
//! chunk and keeps the fullest (a replica may be a push behind). A chunk
//! that one replica closed for idleness while another kept appending
//! still counts partly twice, so the numbers stay estimates, as Loki's are.

use std::collections::HashMap;

use crate::index::ChunkRef;
use crate::labels::Labels;

/// The size of one chunk, wherever it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkStat {
    /// Timestamp of the first entry, ns since epoch.
    pub from_ns: i64,
    /// Timestamp of the last entry, ns since epoch.
    pub through_ns: i64,
    /// Uncompressed size of its blocks in bytes.
    pub bytes: u64,
    /// Number of entries.
    pub entries: u64,
}

impl From<&ChunkRef> for ChunkStat {
    fn from(chunk: &ChunkRef) -> ChunkStat {
        ChunkStat {
            from_ns: chunk.from_ns,
            through_ns: chunk.through_ns,
            bytes: u64::from(chunk.size_bytes),
            entries: u64::from(chunk.entries),
        }
    }
}

impl ChunkStat {
    /// Returns whether the chunk overlaps `[from_ns, through_ns)`.
    pub fn overlaps(&self, from_ns: i64, through_ns: i64) -> bool {
        self.from_ns < through_ns && self.through_ns >= from_ns
    }

    /// Returns the fraction of the chunk's time span inside
    /// `[from_ns, through_ns]`: 0 outside, 1 for a one-entry chunk inside.
    pub fn overlap_factor(&self, from_ns: i64, through_ns: i64) -> f64 {
        if from_ns > self.through_ns || through_ns < self.from_ns {
            return 0.0;
        }
        if self.from_ns == self.through_ns {
            return 1.0;
        }
        let total = self.through_ns as f64 - self.from_ns as f64;
        let leading = (from_ns as f64 - self.from_ns as f64).max(0.0);
        let trailing = (self.through_ns as f64 - through_ns as f64).max(0.0);
        (total - leading - trailing) / total
    }

    /// Returns `(bytes, entries)` scaled by the overlap with the range.
    fn scaled(&self, from_ns: i64, through_ns: i64) -> (u64, u64) {
        let factor = self.overlap_factor(from_ns, through_ns);
        (
            (factor * self.bytes as f64) as u64,
            (factor * self.entries as f64) as u64,
        )
    }
}

/// Loki's index statistics: `{"streams","chunks","bytes","entries"}`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// Streams with at least one chunk in the range.
    pub streams: u64,
    /// Chunks overlapping the range.
    pub chunks: u64,
    /// Uncompressed bytes in the range (partial chunks scaled).
    pub bytes: u64,
    /// Entries in the range (partial chunks scaled).
    pub entries: u64,
}

/// How byte volumes are grouped (Loki's `aggregateBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateBy {
    /// One volume per label set (`series`, the default).
    Series,
    /// One volume per label name (`labels`).
    Labels,
}

impl AggregateBy {
    /// Parses Loki's `aggregateBy` value; empty means `series`.
    pub fn parse(text: &str) -> Option<AggregateBy> {
        match text {
            "" | "series" => Some(AggregateBy::Series),
            "labels" => Some(AggregateBy::Labels),
            _ => None,
        }
    }
}

/// What a volume request groups by.
#[derive(Debug, Clone, Copy)]
pub struct VolumeSpec<'a> {
    /// Series or label names.
    pub aggregate_by: AggregateBy,
    /// `targetLabels`: group by these labels only.
    pub target_labels: &'a [String],
    /// Names of the selector's matchers; without target labels, series are
    /// reduced to these labels (all labels when there are none: `{}`).
    pub matcher_names: &'a [String],
}

/// One volume: a label set (by series) or `{name=""}` (by labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The series' labels, or one pair `(name, "")`.
    pub labels: Vec<(String, String)>,
    /// Loki's `name`: `{a="1", b="2"}` by series, the label name by labels.
    pub name: String,
    /// Uncompressed bytes.
    pub bytes: u64,
}

/// Chunks of many streams gathered from several sources, each chunk once.
#[derive(Debug, Default)]
pub struct ChunkSet {
    streams: HashMap<String, StreamChunks>,
}

#[derive(Debug)]
struct StreamChunks {
    labels: Labels,
    chunks: Vec<ChunkStat>,
    /// Positions in `chunks` by start timestamp.
    by_start: HashMap<i64, Vec<usize>>,
}

impl ChunkSet {
    /// Creates an empty set.
    pub fn new() -> ChunkSet {
        ChunkSet::default()
    }

    /// Adds the chunks one source (the store, or one ingester) holds of the
    /// stream `labels`. A chunk starting where a chunk of an earlier source
    /// starts is a copy of it: the one with more entries is kept.
    pub fn add(&mut self, labels: &Labels, chunks: impl IntoIterator<Item = ChunkStat>) {
        let key = labels.to_string();
        let stream = self.streams.entry(key).or_insert_with(|| StreamChunks {
            labels: labels.clone(),
            chunks: Vec::new(),
            by_start: HashMap::new(),
        });
        let known = stream.chunks.len();
        // Each known chunk stands for at most one chunk of this source.
        let mut matched = vec![false; known];
        for chunk in chunks {
            let copy_of = stream.by_start.get(&chunk.from_ns).and_then(|positions| {
                positions
                    .iter()
                    .copied()
                    .find(|&position| position < known && !matched[position])
            });
            match copy_of {
                Some(position) => {
                    matched[position] = true;
                    let existing = &mut stream.chunks[position];
                    if chunk.entries > existing.entries {
                        *existing = chunk;
                    }
                }
                None => {
                    stream
                        .by_start
                        .entry(chunk.from_ns)
                        .or_default()
                        .push(stream.chunks.len());
                    stream.chunks.push(chunk);
                }
            }
        }
    }

    /// Returns the number of distinct streams added.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Returns the statistics of `[from_ns, through_ns)`.
    pub fn stats(&self, from_ns: i64, through_ns: i64) -> IndexStats {
        let mut stats = IndexStats::default();
        for stream in self.streams.values() {
            let mut in_range = false;
            for chunk in &stream.chunks {
                if !chunk.overlaps(from_ns, through_ns) {
                    continue;
                }
                in_range = true;
                let (bytes, entries) = chunk.scaled(from_ns, through_ns);
                stats.chunks += 1;
                stats.bytes += bytes;
                stats.entries += entries;
            }
            if in_range {
                stats.streams += 1;
            }
        }
        stats
    }

    /// Returns the byte volumes of `[from_ns, through_ns)` grouped as `spec`
    /// says, largest first (ties by name), at most `limit`.
    pub fn volumes(
        &self,
        from_ns: i64,
        through_ns: i64,
        spec: VolumeSpec<'_>,
        limit: usize,
    ) -> Vec<Volume> {
        self.volumes_in_steps(&[(from_ns, through_ns)], spec, limit)
            .pop()
            .unwrap_or_default()
    }

    /// Returns the byte volumes of each step `[start, end)` (ascending, not
    /// overlapping) as [`ChunkSet::volumes`] does for one range. Each chunk
    /// is visited once, for the steps it overlaps.
    pub fn volumes_in_steps(
        &self,
        steps: &[(i64, i64)],
        spec: VolumeSpec<'_>,
        limit: usize,
    ) -> Vec<Vec<Volume>> {
        let keep = |name: &str, restrict: &[String]| {
            restrict.is_empty() || restrict.iter().any(|kept| kept == name)
        };
        let series_restriction = if spec.target_labels.is_empty() {
            spec.matcher_names
        } else {
            spec.target_labels
        };
        let mut per_step: Vec<HashMap<Vec<(String, String)>, u64>> =
            vec![HashMap::new(); steps.len()];
        let mut stream_bytes: HashMap<usize, u64> = HashMap::new();
        for stream in self.streams.values() {
            // Bytes of this stream per step it has chunks in.
            stream_bytes.clear();
            for chunk in &stream.chunks {
                let first = steps.partition_point(|&(_, end)| end <= chunk.from_ns);
                for (offset, &(start, end)) in steps[first..].iter().enumerate() {
                    if start > chunk.through_ns {
                        break;
                    }
                    if chunk.overlaps(start, end) {
                        *stream_bytes.entry(first + offset).or_default() +=
                            chunk.scaled(start, end).0;
                    }
                }
            }
            if stream_bytes.is_empty() {
                continue;
            }
            let keys: Vec<Vec<(String, String)>> = match spec.aggregate_by {
                AggregateBy::Series => vec![stream
                    .labels
                    .iter()
                    .filter(|label| keep(&label.name, series_restriction))
                    .map(|label| (label.name.clone(), label.value.clone()))
                    .collect()],
                AggregateBy::Labels => stream
                    .labels
                    .iter()
                    .filter(|label| keep(&label.name, spec.target_labels))
                    .map(|label| vec![(label.name.clone(), String::new())])
                    .collect(),
            };
            for (&step, &bytes) in &stream_bytes {
                for key in &keys {
                    *per_step[step].entry(key.clone()).or_default() += bytes;
                }
            }
        }
        per_step
            .into_iter()
            .map(|volumes| {
                let mut out: Vec<Volume> = volumes
                    .into_iter()
                    .map(|(labels, bytes)| {
                        let name = match spec.aggregate_by {
                            AggregateBy::Series => Labels::from_pairs(
                                labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                            )
                            .to_string(),
                            AggregateBy::Labels => labels[0].0.clone(),
                        };
                        Volume {
                            labels,
                            name,
                            bytes,
                        }
                    })
                    .collect();
                out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
                out.truncate(limit);
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(from_ns: i64, through_ns: i64, bytes: u64, entries: u64) -> ChunkStat {
        ChunkStat {
            from_ns,
            through_ns,
            bytes,
            entries,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn factor_follows_lokis_get_factor_of_time() {
        let c = chunk(100, 200, 1000, 10);
        assert_eq!(c.overlap_factor(0, 1000), 1.0);
        assert_eq!(c.overlap_factor(150, 1000), 0.5);
        assert_eq!(c.overlap_factor(0, 125), 0.25);
        assert_eq!(c.overlap_factor(201, 300), 0.0);
        assert_eq!(chunk(5, 5, 1, 1).overlap_factor(0, 10), 1.0);
    }

    #[test]
    fn replicas_count_once_and_partial_chunks_scale() {
        let mut set = ChunkSet::new();
        let app = labels(&[("job", "app")]);
        // Two replicas report the same two chunks, a third is one push
        // behind on the head chunk; the store has the first one flushed.
        for _ in 0..2 {
            set.add(&app, [chunk(0, 100, 1000, 10), chunk(100, 200, 400, 4)]);
        }
        set.add(&app, [chunk(0, 100, 1000, 10), chunk(100, 150, 200, 2)]);
        set.add(&app, [chunk(0, 100, 1000, 10)]);
        set.add(&labels(&[("job", "db")]), [chunk(500, 600, 50, 5)]);
        assert_eq!(set.stream_count(), 2);
        assert_eq!(
            set.stats(0, 1000),
            IndexStats {
                streams: 2,
                chunks: 3,
                bytes: 1450,
                entries: 19
            }
        );
        // A source with two chunks starting together has two chunks.
        let mut twins = ChunkSet::new();
        twins.add(&app, [chunk(0, 10, 1, 1), chunk(0, 20, 2, 2)]);
        twins.add(&app, [chunk(0, 10, 1, 1)]);
        assert_eq!(twins.stats(0, 100).chunks, 2);
        // Half of the first chunk; the second starts at the range's end.
        assert_eq!(
            set.stats(50, 100),
            IndexStats {
                streams: 1,
                chunks: 1,
                bytes: 500,
                entries: 5
            }
        );
        assert_eq!(set.stats(1000, 2000), IndexStats::default());
    }

    #[test]
    fn volumes_by_series_reduce_to_matcher_or_target_labels() {
        let mut set = ChunkSet::new();
        set.add(
            &labels(&[("job", "app"), ("pod", "a")]),
            [chunk(0, 10, 300, 3)],
        );
        set.add(
            &labels(&[("job", "app"), ("pod", "b")]),
            [chunk(0, 10, 200, 2)],
        );
        set.add(
            &labels(&[("job", "db"), ("pod", "c")]),
            [chunk(0, 10, 600, 6)],
        );
        let all = set.volumes(
            0,
            100,
            VolumeSpec {
                aggregate_by: AggregateBy::Series,
                target_labels: &[],
                matcher_names: &[],
            },
            100,
        );
        let names: Vec<(&str, u64)> = all.iter().map(|v| (v.name.as_str(), v.bytes)).collect();
        assert_eq!(
            names,
            vec![
                ("{job=\"db\", pod=\"c\"}", 600),
                ("{job=\"app\", pod=\"a\"}", 300),
                ("{job=\"app\", pod=\"b\"}", 200)
            ]
        );
        let by_job = set.volumes(
            0,
            100,
            VolumeSpec {
                aggregate_by: AggregateBy::Series,
                target_labels: &[],
                matcher_names: &["job".to_string()],
            },
            1,
        );
        assert_eq!(by_job.len(), 1, "limit applies");
        assert_eq!(by_job[0].labels, vec![("job".into(), "db".into())]);
        let by_pod = set.volumes(
            0,
            100,
            VolumeSpec {
                aggregate_by: AggregateBy::Series,
                target_labels: &["pod".to_string()],
                matcher_names: &["job".to_string()],
            },
            100,
        );
        assert_eq!(by_pod[2].labels, vec![("pod".into(), "b".into())]);
    }

    #[test]
    fn volumes_in_steps_split_chunks_like_one_range_each() {
        let mut set = ChunkSet::new();
        set.add(&labels(&[("job", "app")]), [chunk(0, 100, 1000, 10)]);
        set.add(&labels(&[("job", "db")]), [chunk(150, 150, 7, 1)]);
        let spec = VolumeSpec {
            aggregate_by: AggregateBy::Series,
            target_labels: &[],
            matcher_names: &[],
        };
        let steps = [(0, 50), (50, 100), (100, 200), (200, 300)];
        let got: Vec<Vec<(String, u64)>> = set
            .volumes_in_steps(&steps, spec, 100)
            .into_iter()
            .map(|step| step.into_iter().map(|v| (v.name, v.bytes)).collect())
            .collect();
        // The app chunk [0, 100] is half in each of the first two steps and
        // touches the third at its last entry.
        assert_eq!(
            got,
            vec![
                vec![("{job=\"app\"}".to_string(), 500)],
                vec![("{job=\"app\"}".to_string(), 500)],
                vec![
                    ("{job=\"db\"}".to_string(), 7),
                    ("{job=\"app\"}".to_string(), 0)
                ],
                vec![],
            ]
        );
        for (index, &(start, end)) in steps.iter().enumerate() {
            let one: Vec<(String, u64)> = set
                .volumes(start, end, spec, 100)
                .into_iter()
                .map(|v| (v.name, v.bytes))
                .collect();
            assert_eq!(one, got[index], "step {index}");
        }
    }

    #[test]
    fn volumes_by_labels_sum_per_name_with_ties_by_name() {
        let mut set = ChunkSet::new();
        set.add(
            &labels(&[("job", "app"), ("pod", "a")]),
            [chunk(0, 10, 300, 3)],
        );
        set.add(&labels(&[("job", "db")]), [chunk(0, 10, 100, 1)]);
        let volumes = set.volumes(
            0,
            100,
            VolumeSpec {
                aggregate_by: AggregateBy::Labels,
                target_labels: &[],
                matcher_names: &["job".to_string()],
            },
            100,
        );
        let names: Vec<(&str, u64)> = volumes.iter().map(|v| (v.name.as_str(), v.bytes)).collect();
        assert_eq!(names, vec![("job", 400), ("pod", 300)]);
        assert_eq!(volumes[1].labels, vec![("pod".into(), String::new())]);
        assert_eq!(AggregateBy::parse(""), Some(AggregateBy::Series));
        assert_eq!(AggregateBy::parse("labels"), Some(AggregateBy::Labels));
        assert_eq!(AggregateBy::parse("pods"), None);
    }
}
