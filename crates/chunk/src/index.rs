//! The immutable per-(period, tenant) index file: label matchers → series →
//! chunk refs. `docs/formats.md` ("Index") documents the layout byte by byte.
//!
//! ```text
//! magic u32 BE (0x534C4931, "SLI1") | version u8 (1)
//! sections, each followed by its CRC-32 u32 BE: meta, symbols, series, postings
//! table of contents: uvarint #sections, then per section u8 kind,
//!                    uvarint offset, uvarint length
//! CRC-32 u32 BE of the table of contents | its offset u64 BE
//! ```
//!
//! [`IndexWriter`] accumulates `(labels, chunk ref)` pairs (or whole files, for
//! compaction) and serializes them; [`IndexReader`] validates a file completely
//! and loads it into memory, then answers label names, label values and series
//! selection by matchers without touching chunks.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::error::ChunkError;
use crate::key::ChunkKey;
use crate::labels::{go_quote, Label, Labels};
use crate::varint;

/// The magic number an index file starts with: "SLI1" in ASCII.
pub const INDEX_MAGIC: u32 = 0x534C_4931;
/// The index format version [`IndexWriter::finish`] writes.
pub const INDEX_FORMAT_V1: u8 = 1;

/// Magic and version.
const HEADER_LEN: usize = 5;
/// Table-of-contents CRC and offset.
const TRAILER_LEN: usize = 12;
/// A CRC-32 after each section.
const CRC_LEN: usize = 4;
/// Most table-of-contents entries a reader accepts.
const MAX_SECTIONS: usize = 64;
/// Section kinds, in the order the writer emits them; the kind byte is the
/// position plus one.
const SECTION_NAMES: [&str; 4] = ["meta", "symbols", "series", "postings"];
const META: usize = 0;
const SYMBOLS: usize = 1;
const SERIES: usize = 2;
const POSTINGS: usize = 3;
/// Smallest encoding of one series: fingerprint, label count, chunk count.
const MIN_SERIES_LEN: usize = 10;
/// Smallest encoding of one chunk ref: two 1-byte varints, checksum, two
/// 1-byte varints.
const MIN_CHUNK_LEN: usize = 8;

/// A reference to one chunk object, as stored in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChunkRef {
    /// The stream fingerprint the chunk was written under (its object key's).
    pub fingerprint: u64,
    /// Timestamp of the chunk's first entry, ns since epoch.
    pub from_ns: i64,
    /// Timestamp of the chunk's last entry, ns since epoch.
    pub through_ns: i64,
    /// Checksum of the chunk object's bytes (part of its key).
    pub checksum: u32,
    /// Uncompressed size of the chunk's blocks in bytes (what Loki's index
    /// records, in KB, for index stats and volumes); not the object size.
    pub size_bytes: u32,
    /// Number of log entries in the chunk.
    pub entries: u32,
}

impl ChunkRef {
    /// Returns the chunk's object key for `tenant` in index period `period`.
    pub fn key(&self, tenant: &str, period: i64) -> ChunkKey {
        ChunkKey {
            tenant: tenant.to_owned(),
            period,
            fingerprint: self.fingerprint,
            from_ns: self.from_ns,
            through_ns: self.through_ns,
            checksum: self.checksum,
        }
    }

    /// Returns whether the chunk's `[from, through]` overlaps the query range
    /// `[from_ns, through_ns)` (never, when that range is empty).
    pub fn overlaps(&self, from_ns: i64, through_ns: i64) -> bool {
        from_ns < through_ns && self.from_ns < through_ns && self.through_ns >= from_ns
    }

    /// The identity used for deduplication and ordering within a series.
    fn identity(&self) -> (i64, i64, u32) {
        (self.from_ns, self.through_ns, self.checksum)
    }
}

/// A series' position in one [`IndexReader`] (series are sorted by labels).
/// Only meaningful for the reader that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(u32);

impl SeriesId {
    /// Returns the zero-based position of the series in its index file.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One label matcher for [`IndexReader::select`]: the caller (the LogQL crate)
/// turns `=`, `!=`, `=~` and `!~` into a predicate over label values.
#[derive(Clone, Copy)]
pub struct LabelMatcher<'a> {
    /// The label name.
    pub name: &'a str,
    /// Whether a series' value for `name` (`""` when the label is absent) is
    /// accepted.
    pub matches: &'a dyn Fn(&str) -> bool,
}

impl<'a> LabelMatcher<'a> {
    /// Builds a matcher from a label name and a predicate over its values.
    pub fn new(name: &'a str, matches: &'a dyn Fn(&str) -> bool) -> LabelMatcher<'a> {
        LabelMatcher { name, matches }
    }
}

impl fmt::Debug for LabelMatcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelMatcher")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Chunk refs of one series, keyed (and so deduplicated and ordered) by
/// (from, through, checksum).
type ChunkSet = BTreeMap<(i64, i64, u32), ChunkRef>;

/// Builds one index file.
///
/// A series is a label set plus a fingerprint (normally
/// `labels.fingerprint()`, but the chunk ref's fingerprint is kept as given, so
/// two fingerprints for one label set make two series). Label sets are
/// normalized: pairs sorted by (name, value), exact duplicate pairs dropped,
/// empty values dropped (as [`Labels`] always does).
#[derive(Debug, Clone)]
pub struct IndexWriter {
    tenant: String,
    period: i64,
    series: BTreeMap<Labels, BTreeMap<u64, ChunkSet>>,
}

impl IndexWriter {
    /// Starts an empty index for `tenant`'s period `period`.
    pub fn new(tenant: &str, period: i64) -> IndexWriter {
        IndexWriter {
            tenant: tenant.to_owned(),
            period,
            series: BTreeMap::new(),
        }
    }

    /// Adds one chunk of the series `labels`. A chunk with the same
    /// fingerprint, from, through and checksum as one already in the series is
    /// ignored (the first one's size and entries are kept).
    pub fn add(&mut self, labels: &Labels, chunk: ChunkRef) {
        if labels.first_duplicate_name().is_some() {
            let mut pairs: Vec<Label> = labels.iter().cloned().collect();
            pairs.sort();
            pairs.dedup();
            let normalized: Labels = pairs.into_iter().collect();
            insert(self.series.entry(normalized).or_default(), chunk);
        } else if let Some(fingerprints) = self.series.get_mut(labels) {
            insert(fingerprints, chunk);
        } else {
            insert(self.series.entry(labels.clone()).or_default(), chunk);
        }
    }

    /// Adds every series and chunk of `reader`, deduplicating chunks as
    /// [`IndexWriter::add`] does, so compacting overlapping files yields each
    /// chunk once. The reader's tenant and period are not checked.
    pub fn merge_from(&mut self, reader: &IndexReader) {
        for entry in &reader.series {
            let labels = reader.labels_of(entry).to_labels();
            let fingerprints = self.series.entry(labels).or_default();
            for chunk in reader
                .chunks
                .get(entry.chunks.0..entry.chunks.1)
                .unwrap_or(&[])
            {
                insert(fingerprints, *chunk);
            }
        }
    }

    /// Returns whether no chunk has been added.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Returns the number of series (label set and fingerprint pairs) so far.
    pub fn series_count(&self) -> usize {
        self.series.values().map(BTreeMap::len).sum()
    }

    /// Returns the number of distinct chunk refs so far.
    pub fn chunk_count(&self) -> usize {
        self.chunk_sets().map(BTreeMap::len).sum()
    }

    /// Returns the smallest chunk `from` and largest chunk `through` so far,
    /// `None` when empty (what a compacted file's name records).
    pub fn time_range(&self) -> Option<(i64, i64)> {
        time_range(self.chunk_sets().flat_map(BTreeMap::values))
    }

    fn chunk_sets(&self) -> impl Iterator<Item = &ChunkSet> {
        self.series.values().flat_map(BTreeMap::values)
    }

    /// Serializes the index (format version 1).
    pub fn finish(self) -> Vec<u8> {
        let mut symbols: Vec<&str> = self
            .series
            .keys()
            .flat_map(|labels| labels.iter())
            .flat_map(|label| [label.name.as_str(), label.value.as_str()])
            .collect();
        symbols.sort_unstable();
        symbols.dedup();
        let symbol_ids: HashMap<&str, u64> = symbols
            .iter()
            .enumerate()
            .map(|(id, text)| (*text, id as u64))
            .collect();
        let symbol = |text: &str| symbol_ids.get(text).copied().unwrap_or_default();

        let series_count = self.series_count();
        let chunk_count = self.chunk_count();
        let base_ns = self
            .chunk_sets()
            .filter_map(|chunks| chunks.values().next())
            .map(|chunk| chunk.from_ns)
            .min()
            .unwrap_or(0);

        let mut meta = Vec::with_capacity(32 + self.tenant.len());
        varint::put_uvarint(&mut meta, self.tenant.len() as u64);
        meta.extend_from_slice(self.tenant.as_bytes());
        varint::put_varint(&mut meta, self.period);
        varint::put_uvarint(&mut meta, series_count as u64);
        varint::put_uvarint(&mut meta, chunk_count as u64);
        varint::put_varint(&mut meta, base_ns);

        let mut symbol_section = Vec::with_capacity(symbols.iter().map(|s| s.len() + 2).sum());
        varint::put_uvarint(&mut symbol_section, symbols.len() as u64);
        for text in &symbols {
            varint::put_uvarint(&mut symbol_section, text.len() as u64);
            symbol_section.extend_from_slice(text.as_bytes());
        }

        let mut series = Vec::with_capacity(series_count * 24 + chunk_count * 24);
        // (name symbol, value symbol, series id) for every label of every series.
        let mut postings: Vec<(u64, u64, u64)> = Vec::new();
        varint::put_uvarint(&mut series, series_count as u64);
        let mut id = 0u64;
        let mut pairs = Vec::new();
        for (labels, fingerprints) in &self.series {
            pairs.clear();
            pairs.extend(
                labels
                    .iter()
                    .map(|label| (symbol(&label.name), symbol(&label.value))),
            );
            for (fingerprint, chunks) in fingerprints {
                series.extend_from_slice(&fingerprint.to_be_bytes());
                varint::put_uvarint(&mut series, pairs.len() as u64);
                for &(name, value) in &pairs {
                    varint::put_uvarint(&mut series, name);
                    varint::put_uvarint(&mut series, value);
                    postings.push((name, value, id));
                }
                varint::put_uvarint(&mut series, chunks.len() as u64);
                let mut previous_from = base_ns;
                for chunk in chunks.values() {
                    let from_delta = (chunk.from_ns as u64).wrapping_sub(previous_from as u64);
                    let length = (chunk.through_ns as u64).wrapping_sub(chunk.from_ns as u64);
                    varint::put_uvarint(&mut series, from_delta);
                    varint::put_uvarint(&mut series, length);
                    series.extend_from_slice(&chunk.checksum.to_be_bytes());
                    varint::put_uvarint(&mut series, u64::from(chunk.size_bytes));
                    varint::put_uvarint(&mut series, u64::from(chunk.entries));
                    previous_from = chunk.from_ns;
                }
                id += 1;
            }
        }

        postings.sort_unstable();
        let mut posting_section = Vec::with_capacity(postings.len() * 2 + 16);
        let names = postings.chunk_by(|left, right| left.0 == right.0);
        varint::put_uvarint(&mut posting_section, names.clone().count() as u64);
        for name in names {
            let values = name.chunk_by(|left, right| left.1 == right.1);
            varint::put_uvarint(&mut posting_section, name[0].0);
            varint::put_uvarint(&mut posting_section, values.clone().count() as u64);
            for ids in values {
                varint::put_uvarint(&mut posting_section, ids[0].1);
                varint::put_uvarint(&mut posting_section, ids.len() as u64);
                let mut next = 0u64;
                for &(_, _, id) in ids {
                    varint::put_uvarint(&mut posting_section, id - next);
                    next = id + 1;
                }
            }
        }

        let sections = [meta, symbol_section, series, posting_section];
        let total: usize = sections.iter().map(|body| body.len() + CRC_LEN).sum();
        let mut out = Vec::with_capacity(HEADER_LEN + total + 64 + TRAILER_LEN);
        out.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        out.push(INDEX_FORMAT_V1);
        let mut toc = Vec::with_capacity(64);
        varint::put_uvarint(&mut toc, sections.len() as u64);
        for (kind, body) in sections.iter().enumerate() {
            toc.push(kind as u8 + 1);
            varint::put_uvarint(&mut toc, out.len() as u64);
            varint::put_uvarint(&mut toc, body.len() as u64);
            out.extend_from_slice(body);
            out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
        }
        let toc_offset = out.len() as u64;
        out.extend_from_slice(&toc);
        out.extend_from_slice(&crc32fast::hash(&toc).to_be_bytes());
        out.extend_from_slice(&toc_offset.to_be_bytes());
        out
    }
}

fn insert(fingerprints: &mut BTreeMap<u64, ChunkSet>, chunk: ChunkRef) {
    fingerprints
        .entry(chunk.fingerprint)
        .or_default()
        .entry(chunk.identity())
        .or_insert(chunk);
}

fn time_range<'a>(chunks: impl Iterator<Item = &'a ChunkRef>) -> Option<(i64, i64)> {
    chunks.fold(None, |range, chunk| match range {
        None => Some((chunk.from_ns, chunk.through_ns)),
        Some((from, through)) => Some((from.min(chunk.from_ns), through.max(chunk.through_ns))),
    })
}

/// One series in memory: its fingerprint and ranges into the reader's flat
/// label-pair and chunk arrays.
#[derive(Debug, Clone, Copy)]
struct SeriesEntry {
    fingerprint: u64,
    pairs: (usize, usize),
    chunks: (usize, usize),
}

/// One label name's postings: its symbol and a range into `values`.
#[derive(Debug, Clone, Copy)]
struct NamePostings {
    name: u32,
    values: (usize, usize),
}

/// One label value's postings: its symbol and a range into `ids`.
#[derive(Debug, Clone, Copy)]
struct ValuePostings {
    value: u32,
    ids: (usize, usize),
}

/// A loaded, fully validated index file.
///
/// `open` checks the magic, version, every CRC, every bound and ordering, and
/// that the postings agree exactly with the series; after that no query can
/// fail or panic.
#[derive(Clone)]
pub struct IndexReader {
    tenant: String,
    period: i64,
    /// All symbols concatenated; symbol `i` is `symbol_data[ends[i-1]..ends[i]]`.
    symbol_data: String,
    symbol_ends: Vec<usize>,
    series: Vec<SeriesEntry>,
    /// (name symbol, value symbol) pairs of all series, series after series.
    pairs: Vec<(u32, u32)>,
    chunks: Vec<ChunkRef>,
    names: Vec<NamePostings>,
    values: Vec<ValuePostings>,
    ids: Vec<u32>,
    time_range: Option<(i64, i64)>,
}

impl fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexReader")
            .field("tenant", &self.tenant)
            .field("period", &self.period)
            .field("series", &self.series.len())
            .field("chunks", &self.chunks.len())
            .field("symbols", &self.symbol_ends.len())
            .finish()
    }
}

/// One matcher, resolved against the postings.
struct Plan {
    name: u32,
    /// The value symbols the plan picks, ascending.
    picked: Vec<u32>,
    /// The `values` entries of the picked values.
    picked_entries: Vec<usize>,
    /// Total postings of the picked values.
    picked_len: usize,
    /// `false`: keep series with a picked value; `true`: drop them.
    exclude: bool,
    /// Upper bound of the series the plan keeps.
    estimate: usize,
}

impl IndexReader {
    /// Validates and loads an index file. Any structural problem is an error
    /// naming it ([`ChunkError::CorruptIndex`], [`ChunkError::BadIndexMagic`],
    /// [`ChunkError::UnsupportedIndexVersion`],
    /// [`ChunkError::IndexChecksumMismatch`]), never a panic.
    pub fn open(bytes: Vec<u8>) -> Result<IndexReader, ChunkError> {
        IndexReader::open_slice(&bytes)
    }

    /// Like [`IndexReader::open`], borrowing the bytes.
    pub fn open_slice(bytes: &[u8]) -> Result<IndexReader, ChunkError> {
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(ChunkError::corrupt_index(format!(
                "{} bytes is shorter than the index header and trailer",
                bytes.len()
            )));
        }
        let magic = read_u32(bytes, 0)?;
        if magic != INDEX_MAGIC {
            return Err(ChunkError::BadIndexMagic {
                found: magic,
                expected: INDEX_MAGIC,
            });
        }
        match bytes.get(4).copied().unwrap_or_default() {
            INDEX_FORMAT_V1 => {
                let sections = read_toc(bytes)?;
                parse_v1(sections)
            }
            other => Err(ChunkError::UnsupportedIndexVersion(other)),
        }
    }

    /// Returns the tenant the index belongs to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Returns the index period the file covers.
    pub fn period(&self) -> i64 {
        self.period
    }

    /// Returns the number of series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Returns the number of chunk refs (over all series).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Returns the smallest chunk `from` and the largest chunk `through`,
    /// `None` for an empty index.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        self.time_range
    }

    /// Returns every label name, sorted and deduplicated.
    pub fn label_names(&self) -> Vec<&str> {
        self.names
            .iter()
            .map(|name| self.symbol(name.name))
            .collect()
    }

    /// Returns every value of label `name`, sorted and deduplicated (empty
    /// when no series has the label).
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.find_name(name)
            .map(|postings| {
                self.value_entries(postings)
                    .iter()
                    .map(|value| self.symbol(value.value))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Returns every series id, in label order.
    pub fn series_ids(&self) -> impl Iterator<Item = SeriesId> {
        (0..self.series.len() as u32).map(SeriesId)
    }

    /// Returns the series whose labels satisfy every matcher, in label order.
    ///
    /// Prometheus semantics: a series is selected when each matcher's
    /// predicate accepts the series' value for the matcher's label, `""` when
    /// the series lacks the label. No matcher selects every series. (A series
    /// with several values for one name, which validation normally rejects,
    /// passes a matcher whose predicate rejects `""` when any value is
    /// accepted, and one whose predicate accepts `""` when no value is
    /// rejected.)
    ///
    /// Uses the postings: each predicate runs once per distinct value of its
    /// label; matchers run from the most selective; small candidate sets are
    /// checked against the series' labels instead of merging large postings.
    pub fn select(&self, matchers: &[LabelMatcher<'_>]) -> Vec<SeriesId> {
        let all = self.series.len();
        let mut plans = Vec::with_capacity(matchers.len());
        for matcher in matchers {
            let accepts_empty = (matcher.matches)("");
            let Some(postings) = self.find_name(matcher.name) else {
                if accepts_empty {
                    continue;
                }
                return Vec::new();
            };
            let mut plan = Plan {
                name: postings.name,
                picked: Vec::new(),
                picked_entries: Vec::new(),
                picked_len: 0,
                exclude: accepts_empty,
                estimate: 0,
            };
            for (offset, value) in self.value_entries(postings).iter().enumerate() {
                // Non-empty-matching: pick accepted values; empty-matching:
                // pick the rejected ones, whose series get excluded.
                if (matcher.matches)(self.symbol(value.value)) != accepts_empty {
                    plan.picked.push(value.value);
                    plan.picked_entries.push(postings.values.0 + offset);
                    plan.picked_len += value.ids.1 - value.ids.0;
                }
            }
            if plan.picked.is_empty() {
                if accepts_empty {
                    continue;
                }
                return Vec::new();
            }
            plan.estimate = if plan.exclude {
                all.saturating_sub(plan.picked_len)
            } else {
                plan.picked_len
            };
            plans.push(plan);
        }
        plans.sort_by_key(|plan| plan.estimate);
        let mut plans = plans.into_iter();
        let mut candidates: Vec<u32> = match plans.next() {
            None => (0..all as u32).collect(),
            Some(first) if first.exclude => {
                complement(&self.union(&first.picked_entries), all as u32)
            }
            Some(first) => self.union(&first.picked_entries).into_owned(),
        };
        for plan in plans {
            if candidates.is_empty() {
                break;
            }
            if candidates.len() <= plan.picked_len {
                candidates.retain(|&id| self.has_picked_value(id, &plan) != plan.exclude);
            } else {
                let picked = self.union(&plan.picked_entries);
                candidates = if plan.exclude {
                    difference(&candidates, &picked)
                } else {
                    intersection(&candidates, &picked)
                };
            }
        }
        candidates.into_iter().map(SeriesId).collect()
    }

    /// Returns a series' labels and all its chunk refs (sorted by from,
    /// through, checksum). An id from another reader that is out of range
    /// yields an empty series rather than a panic.
    pub fn series(&self, id: SeriesId) -> (SeriesLabels<'_>, &[ChunkRef]) {
        match self.series.get(id.index()) {
            Some(entry) => (
                self.labels_of(entry),
                self.chunks
                    .get(entry.chunks.0..entry.chunks.1)
                    .unwrap_or(&[]),
            ),
            None => (
                SeriesLabels {
                    reader: self,
                    pairs: &[],
                },
                &[],
            ),
        }
    }

    /// Returns the fingerprint the series was indexed under (0 for an out of
    /// range id).
    pub fn fingerprint(&self, id: SeriesId) -> u64 {
        self.series
            .get(id.index())
            .map_or(0, |entry| entry.fingerprint)
    }

    /// Returns the series' chunks whose `[from, through]` overlaps
    /// `[from_ns, through_ns)` (see [`ChunkRef::overlaps`]), in `from` order.
    pub fn chunks_in_range(
        &self,
        id: SeriesId,
        from_ns: i64,
        through_ns: i64,
    ) -> impl Iterator<Item = &ChunkRef> {
        self.series(id)
            .1
            .iter()
            .take_while(move |chunk| chunk.from_ns < through_ns)
            .filter(move |chunk| chunk.overlaps(from_ns, through_ns))
    }

    fn labels_of(&self, entry: &SeriesEntry) -> SeriesLabels<'_> {
        SeriesLabels {
            reader: self,
            pairs: self.pairs.get(entry.pairs.0..entry.pairs.1).unwrap_or(&[]),
        }
    }

    fn symbol(&self, id: u32) -> &str {
        let index = id as usize;
        let start = match index.checked_sub(1) {
            Some(previous) => self.symbol_ends.get(previous).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.symbol_ends.get(index).copied().unwrap_or(start);
        self.symbol_data.get(start..end).unwrap_or("")
    }

    fn find_symbol(&self, text: &str) -> Option<u32> {
        let (mut low, mut high) = (0usize, self.symbol_ends.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match self.symbol(middle as u32).cmp(text) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle as u32),
            }
        }
        None
    }

    fn find_name(&self, name: &str) -> Option<&NamePostings> {
        let symbol = self.find_symbol(name)?;
        self.names
            .binary_search_by_key(&symbol, |postings| postings.name)
            .ok()
            .and_then(|index| self.names.get(index))
    }

    fn value_entries(&self, postings: &NamePostings) -> &[ValuePostings] {
        self.values
            .get(postings.values.0..postings.values.1)
            .unwrap_or(&[])
    }

    fn ids_of(&self, value: usize) -> &[u32] {
        self.values
            .get(value)
            .and_then(|value| self.ids.get(value.ids.0..value.ids.1))
            .unwrap_or(&[])
    }

    /// Returns the sorted union of the postings of `values` entries.
    fn union(&self, values: &[usize]) -> Cow<'_, [u32]> {
        match values {
            [single] => Cow::Borrowed(self.ids_of(*single)),
            _ => {
                let mut ids: Vec<u32> = values
                    .iter()
                    .flat_map(|&value| self.ids_of(value).iter().copied())
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                Cow::Owned(ids)
            }
        }
    }

    /// Returns whether series `id` has a value for `plan.name` in
    /// `plan.picked`.
    fn has_picked_value(&self, id: u32, plan: &Plan) -> bool {
        let Some(entry) = self.series.get(id as usize) else {
            return false;
        };
        let pairs = self.pairs.get(entry.pairs.0..entry.pairs.1).unwrap_or(&[]);
        let start = pairs.partition_point(|&(name, _)| name < plan.name);
        pairs
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|&&(name, _)| name == plan.name)
            .any(|(_, value)| plan.picked.binary_search(value).is_ok())
    }
}

/// Returns the ids in `0..all` that are not in the sorted `ids`.
fn complement(ids: &[u32], all: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity((all as usize).saturating_sub(ids.len()));
    let mut excluded = ids.iter().peekable();
    for id in 0..all {
        if excluded.peek() == Some(&&id) {
            excluded.next();
        } else {
            out.push(id);
        }
    }
    out
}

/// Returns the sorted intersection of two sorted id lists.
fn intersection(left: &[u32], right: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(left.len().min(right.len()));
    let (mut i, mut j) = (0, 0);
    while let (Some(&a), Some(&b)) = (left.get(i), right.get(j)) {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Returns the ids of sorted `left` not in sorted `right`.
fn difference(left: &[u32], right: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(left.len());
    let mut j = 0;
    for &a in left {
        while right.get(j).is_some_and(|&b| b < a) {
            j += 1;
        }
        if right.get(j) != Some(&a) {
            out.push(a);
        }
    }
    out
}

/// A cheap view of one series' labels in an [`IndexReader`], sorted by
/// (name, value).
#[derive(Clone, Copy)]
pub struct SeriesLabels<'a> {
    reader: &'a IndexReader,
    pairs: &'a [(u32, u32)],
}

impl<'a> SeriesLabels<'a> {
    /// Returns the `(name, value)` pairs, sorted by name then value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let reader = self.reader;
        self.pairs
            .iter()
            .map(move |&(name, value)| (reader.symbol(name), reader.symbol(value)))
    }

    /// Returns the (first) value of label `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value)
    }

    /// Returns the number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Returns whether the series has no labels.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Returns an owned [`Labels`] with the same pairs.
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.iter())
    }
}

impl fmt::Display for SeriesLabels<'_> {
    /// Writes the canonical form `{a="1", b="2"}`, as [`Labels`] does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (index, (name, value)) in self.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
            f.write_str("=")?;
            f.write_str(&go_quote(value))?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for SeriesLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq<Labels> for SeriesLabels<'_> {
    fn eq(&self, other: &Labels) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((name, value), label)| name == label.name && value == label.value)
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads the table of contents and returns the four section bodies, each
/// checked against its CRC.
fn read_toc(bytes: &[u8]) -> Result<[&[u8]; 4], ChunkError> {
    let trailer_start = bytes.len() - TRAILER_LEN;
    let toc_offset = usize::try_from(read_u64(bytes, trailer_start + CRC_LEN)?)
        .ok()
        .filter(|offset| (HEADER_LEN..=trailer_start).contains(offset))
        .ok_or_else(|| ChunkError::corrupt_index("table of contents offset out of bounds"))?;
    let toc = bytes.get(toc_offset..trailer_start).unwrap_or(&[]);
    if crc32fast::hash(toc) != read_u32(bytes, trailer_start)? {
        return Err(ChunkError::IndexChecksumMismatch { section: "toc" });
    }
    let mut cursor = Cursor::new(toc, "toc");
    let count = cursor.count("section count", 3)?;
    if count > MAX_SECTIONS {
        return Err(cursor.bad("section count"));
    }
    let mut spans = Vec::with_capacity(count);
    for _ in 0..count {
        let kind = cursor
            .bytes(1, "section kind")?
            .first()
            .copied()
            .unwrap_or(0);
        let offset = cursor.usize("section offset")?;
        let len = cursor.usize("section length")?;
        let end = offset
            .checked_add(len)
            .and_then(|end| end.checked_add(CRC_LEN))
            .filter(|end| offset >= HEADER_LEN && *end <= toc_offset)
            .ok_or_else(|| {
                ChunkError::corrupt_index(format!("section of kind {kind} out of bounds"))
            })?;
        spans.push((offset, end, kind));
    }
    cursor.finish()?;
    spans.sort_unstable();
    let mut previous_end = HEADER_LEN;
    let mut found: [Option<&[u8]>; 4] = [None; 4];
    for (offset, end, kind) in spans {
        if offset < previous_end {
            return Err(ChunkError::corrupt_index("sections overlap"));
        }
        previous_end = end;
        // Kinds this version does not know are skipped.
        let Some(slot) = (kind as usize)
            .checked_sub(1)
            .and_then(|index| found.get_mut(index))
        else {
            continue;
        };
        if slot.is_some() {
            return Err(ChunkError::corrupt_index(format!(
                "duplicate section of kind {kind}"
            )));
        }
        let body = bytes.get(offset..end - CRC_LEN).unwrap_or(&[]);
        if crc32fast::hash(body) != read_u32(bytes, end - CRC_LEN)? {
            return Err(ChunkError::IndexChecksumMismatch {
                section: SECTION_NAMES
                    .get(kind as usize - 1)
                    .copied()
                    .unwrap_or("unknown"),
            });
        }
        *slot = Some(body);
    }
    let mut sections: [&[u8]; 4] = [&[]; 4];
    for (index, (slot, body)) in sections.iter_mut().zip(found).enumerate() {
        *slot = body.ok_or_else(|| {
            ChunkError::corrupt_index(format!("missing {} section", SECTION_NAMES[index]))
        })?;
    }
    Ok(sections)
}

fn parse_v1(sections: [&[u8]; 4]) -> Result<IndexReader, ChunkError> {
    // Meta.
    let mut meta = Cursor::new(sections[META], SECTION_NAMES[META]);
    let tenant_len = meta.usize("tenant length")?;
    let tenant = std::str::from_utf8(meta.bytes(tenant_len, "tenant")?)
        .map_err(|_| meta.bad("tenant"))?
        .to_owned();
    let period = meta.varint("period")?;
    let series_count = meta.usize("series count")?;
    let chunk_count = meta.usize("chunk count")?;
    let base_ns = meta.varint("base time")?;
    meta.finish()?;

    // Symbols.
    let mut cursor = Cursor::new(sections[SYMBOLS], SECTION_NAMES[SYMBOLS]);
    let symbol_count = cursor.count("symbol count", 2)?;
    if u32::try_from(symbol_count).is_err() {
        return Err(cursor.bad("symbol count"));
    }
    let mut symbol_data = String::with_capacity(sections[SYMBOLS].len());
    let mut symbol_ends = Vec::with_capacity(symbol_count);
    let mut previous: Option<&str> = None;
    for _ in 0..symbol_count {
        let len = cursor.usize("symbol length")?;
        let text = std::str::from_utf8(cursor.bytes(len, "symbol")?)
            .map_err(|_| cursor.bad("symbol UTF-8"))?;
        if text.is_empty() || previous.is_some_and(|previous| previous >= text) {
            return Err(cursor.bad("symbol order"));
        }
        previous = Some(text);
        symbol_data.push_str(text);
        symbol_ends.push(symbol_data.len());
    }
    cursor.finish()?;

    // Series.
    let mut cursor = Cursor::new(sections[SERIES], SECTION_NAMES[SERIES]);
    let count = cursor.count("series count", MIN_SERIES_LEN)?;
    if count != series_count || u32::try_from(count).is_err() {
        return Err(cursor.bad("series count"));
    }
    let mut series: Vec<SeriesEntry> = Vec::with_capacity(count);
    let mut pairs: Vec<(u32, u32)> =
        Vec::with_capacity(count.saturating_mul(4).min(cursor.remaining() / 2));
    let mut chunks: Vec<ChunkRef> =
        Vec::with_capacity(chunk_count.min(cursor.remaining() / MIN_CHUNK_LEN));
    for _ in 0..count {
        let fingerprint = cursor.u64("fingerprint")?;
        let label_count = cursor.count("label count", 2)?;
        let pairs_start = pairs.len();
        for _ in 0..label_count {
            let name = cursor.symbol("label name", symbol_count)?;
            let value = cursor.symbol("label value", symbol_count)?;
            if pairs.len() > pairs_start && pairs.last() >= Some(&(name, value)) {
                return Err(cursor.bad("label order"));
            }
            pairs.push((name, value));
        }
        let labels = pairs_start..pairs.len();
        if let Some(previous) = series.last() {
            let order = pairs[previous.pairs.0..previous.pairs.1]
                .cmp(&pairs[labels.clone()])
                .then(previous.fingerprint.cmp(&fingerprint));
            if order != std::cmp::Ordering::Less {
                return Err(cursor.bad("series order"));
            }
        }
        let series_chunks = cursor.count("chunk count", MIN_CHUNK_LEN)?;
        let chunks_start = chunks.len();
        let mut previous_from = base_ns;
        for _ in 0..series_chunks {
            let from_ns = previous_from
                .checked_add_unsigned(cursor.uvarint("chunk from")?)
                .ok_or_else(|| cursor.bad("chunk from"))?;
            let through_ns = from_ns.wrapping_add_unsigned(cursor.uvarint("chunk length")?);
            let chunk = ChunkRef {
                fingerprint,
                from_ns,
                through_ns,
                checksum: cursor.u32("chunk checksum")?,
                size_bytes: cursor.u32_varint("chunk size")?,
                entries: cursor.u32_varint("chunk entries")?,
            };
            if chunks.len() > chunks_start
                && chunks.last().map(ChunkRef::identity) >= Some(chunk.identity())
            {
                return Err(cursor.bad("chunk order"));
            }
            chunks.push(chunk);
            previous_from = from_ns;
        }
        series.push(SeriesEntry {
            fingerprint,
            pairs: (pairs_start, pairs.len()),
            chunks: (chunks_start, chunks.len()),
        });
    }
    if chunks.len() != chunk_count {
        return Err(cursor.bad("chunk count"));
    }
    cursor.finish()?;

    // Postings.
    let mut cursor = Cursor::new(sections[POSTINGS], SECTION_NAMES[POSTINGS]);
    let name_count = cursor.count("name count", 4)?;
    let mut names: Vec<NamePostings> = Vec::with_capacity(name_count);
    let mut values: Vec<ValuePostings> = Vec::new();
    let mut ids: Vec<u32> = Vec::with_capacity(pairs.len().min(cursor.remaining()));
    for _ in 0..name_count {
        let name = cursor.symbol("posting name", symbol_count)?;
        if names.last().is_some_and(|previous| previous.name >= name) {
            return Err(cursor.bad("posting name order"));
        }
        let value_count = cursor.count("value count", 2)?;
        if value_count == 0 {
            return Err(cursor.bad("value count"));
        }
        let values_start = values.len();
        for _ in 0..value_count {
            let value = cursor.symbol("posting value", symbol_count)?;
            if values.len() > values_start && values.last().is_some_and(|v| v.value >= value) {
                return Err(cursor.bad("posting value order"));
            }
            let id_count = cursor.count("series id count", 1)?;
            if id_count == 0 {
                return Err(cursor.bad("series id count"));
            }
            let ids_start = ids.len();
            let mut next = 0u64;
            for _ in 0..id_count {
                let id = next
                    .checked_add(cursor.uvarint("series id")?)
                    .filter(|id| *id < series.len() as u64)
                    .ok_or_else(|| cursor.bad("series id"))?;
                let entry = series[id as usize];
                if pairs[entry.pairs.0..entry.pairs.1]
                    .binary_search(&(name, value))
                    .is_err()
                {
                    return Err(cursor.bad("posting (series lacks the label)"));
                }
                ids.push(id as u32);
                next = id + 1;
            }
            values.push(ValuePostings {
                value,
                ids: (ids_start, ids.len()),
            });
        }
        names.push(NamePostings {
            name,
            values: (values_start, values.len()),
        });
    }
    cursor.finish()?;
    if ids.len() != pairs.len() {
        return Err(ChunkError::corrupt_index(format!(
            "postings list {} labels, series have {}",
            ids.len(),
            pairs.len()
        )));
    }

    let time_range = time_range(chunks.iter());
    Ok(IndexReader {
        tenant,
        period,
        symbol_data,
        symbol_ends,
        series,
        pairs,
        chunks,
        names,
        values,
        ids,
        time_range,
    })
}

/// A bounds-checked reader over one section that names the section and the
/// field in its errors.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    section: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], section: &'static str) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            section,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn bad(&self, what: &str) -> ChunkError {
        ChunkError::corrupt_index(format!(
            "bad {what} in {} section at byte {}",
            self.section, self.pos
        ))
    }

    fn uvarint(&mut self, what: &str) -> Result<u64, ChunkError> {
        let (value, used) = self
            .buf
            .get(self.pos..)
            .and_then(varint::uvarint)
            .ok_or_else(|| self.bad(what))?;
        self.pos += used;
        Ok(value)
    }

    fn varint(&mut self, what: &str) -> Result<i64, ChunkError> {
        let (value, used) = self
            .buf
            .get(self.pos..)
            .and_then(varint::varint)
            .ok_or_else(|| self.bad(what))?;
        self.pos += used;
        Ok(value)
    }

    fn usize(&mut self, what: &str) -> Result<usize, ChunkError> {
        let value = self.uvarint(what)?;
        usize::try_from(value).map_err(|_| self.bad(what))
    }

    fn u32_varint(&mut self, what: &str) -> Result<u32, ChunkError> {
        let value = self.uvarint(what)?;
        u32::try_from(value).map_err(|_| self.bad(what))
    }

    /// Reads an item count, rejecting counts that could not fit in the rest
    /// of the section at `min_item_len` bytes each (bounds allocations).
    fn count(&mut self, what: &str, min_item_len: usize) -> Result<usize, ChunkError> {
        let count = self.usize(what)?;
        if count.saturating_mul(min_item_len) > self.remaining() {
            return Err(self.bad(what));
        }
        Ok(count)
    }

    fn symbol(&mut self, what: &str, symbol_count: usize) -> Result<u32, ChunkError> {
        let value = self.uvarint(what)?;
        u32::try_from(value)
            .ok()
            .filter(|symbol| (*symbol as usize) < symbol_count)
            .ok_or_else(|| self.bad(what))
    }

    fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8], ChunkError> {
        let end = self.pos.checked_add(len).ok_or_else(|| self.bad(what))?;
        let slice = self.buf.get(self.pos..end).ok_or_else(|| self.bad(what))?;
        self.pos = end;
        Ok(slice)
    }

    fn u32(&mut self, what: &str) -> Result<u32, ChunkError> {
        let slice = self.bytes(4, what)?;
        <[u8; 4]>::try_from(slice)
            .map(u32::from_be_bytes)
            .map_err(|_| self.bad(what))
    }

    fn u64(&mut self, what: &str) -> Result<u64, ChunkError> {
        let slice = self.bytes(8, what)?;
        <[u8; 8]>::try_from(slice)
            .map(u64::from_be_bytes)
            .map_err(|_| self.bad(what))
    }

    fn finish(&self) -> Result<(), ChunkError> {
        if self.pos != self.buf.len() {
            return Err(ChunkError::corrupt_index(format!(
                "{} trailing bytes after the {} section",
                self.remaining(),
                self.section
            )));
        }
        Ok(())
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, ChunkError> {
    bytes
        .get(at..at.saturating_add(4))
        .and_then(|slice| <[u8; 4]>::try_from(slice).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| ChunkError::corrupt_index("truncated u32"))
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, ChunkError> {
    bytes
        .get(at..at.saturating_add(8))
        .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ChunkError::corrupt_index("truncated u64"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn chunk(labels: &Labels, from_ns: i64, through_ns: i64, checksum: u32) -> ChunkRef {
        ChunkRef {
            fingerprint: labels.fingerprint(),
            from_ns,
            through_ns,
            checksum,
            size_bytes: 1000 + checksum,
            entries: 10 + checksum,
        }
    }

    /// Six series over `app`, `level`, `env` (absent in two) and `pod`.
    fn sample() -> (IndexReader, Vec<Labels>) {
        let sets = vec![
            labels(&[("app", "api"), ("level", "info"), ("env", "prod")]),
            labels(&[("app", "api"), ("level", "error"), ("env", "prod")]),
            labels(&[("app", "api"), ("level", "error"), ("env", "dev")]),
            labels(&[("app", "web"), ("level", "info")]),
            labels(&[("app", "web"), ("level", "error"), ("pod", "web-1")]),
            labels(&[("app", "db"), ("level", "warn"), ("env", "prod")]),
        ];
        let mut writer = IndexWriter::new("tenant-a", 19723);
        assert!(writer.is_empty());
        for (index, set) in sets.iter().enumerate() {
            let base = index as i64 * 1000;
            // Added out of order; the writer sorts.
            writer.add(set, chunk(set, base + 500, base + 900, 2));
            writer.add(set, chunk(set, base, base + 400, 1));
        }
        assert!(!writer.is_empty());
        assert_eq!(writer.series_count(), 6);
        assert_eq!(writer.chunk_count(), 12);
        assert_eq!(writer.time_range(), Some((0, 5900)));
        let reader = IndexReader::open(writer.finish()).expect("valid index");
        (reader, sets)
    }

    fn eq(value: &'static str) -> impl Fn(&str) -> bool {
        move |candidate| candidate == value
    }

    fn ne(value: &'static str) -> impl Fn(&str) -> bool {
        move |candidate| candidate != value
    }

    /// The label sets of the selected series, as strings.
    fn select(reader: &IndexReader, matchers: &[LabelMatcher<'_>]) -> Vec<String> {
        let ids = reader.select(matchers);
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "sorted ids");
        ids.into_iter()
            .map(|id| reader.series(id).0.to_string())
            .collect()
    }

    /// Brute force: the Prometheus definition applied to every series.
    fn select_naive(reader: &IndexReader, matchers: &[LabelMatcher<'_>]) -> Vec<String> {
        reader
            .series_ids()
            .map(|id| reader.series(id).0)
            .filter(|series| {
                matchers
                    .iter()
                    .all(|matcher| (matcher.matches)(series.get(matcher.name).unwrap_or("")))
            })
            .map(|series| series.to_string())
            .collect()
    }

    #[test]
    fn round_trips_series_and_chunks() {
        let (reader, sets) = sample();
        assert_eq!(reader.tenant(), "tenant-a");
        assert_eq!(reader.period(), 19723);
        assert_eq!(reader.series_count(), 6);
        assert_eq!(reader.chunk_count(), 12);
        assert_eq!(reader.time_range(), Some((0, 5900)));
        let mut sorted = sets.clone();
        sorted.sort();
        for (id, expected) in reader.series_ids().zip(&sorted) {
            let (series, chunks) = reader.series(id);
            assert_eq!(series, *expected);
            assert_eq!(series.to_labels(), *expected);
            assert_eq!(series.to_string(), expected.to_string());
            assert_eq!(format!("{series:?}"), expected.to_string());
            assert_eq!(series.len(), expected.len());
            assert!(!series.is_empty());
            assert_eq!(series.get("app"), expected.get("app"));
            assert_eq!(reader.fingerprint(id), expected.fingerprint());
            assert_eq!(chunks.len(), 2);
            assert_eq!(chunks[0].checksum, 1, "sorted by from");
            assert_eq!(chunks[1].checksum, 2);
            assert_eq!(chunks[0].size_bytes, 1001);
            assert_eq!(chunks[1].entries, 12);
            assert_eq!(chunks[0].fingerprint, expected.fingerprint());
        }
        assert_eq!(reader.series_ids().count(), 6);
        // An id past the end is an empty series, not a panic.
        let (series, chunks) = reader.series(SeriesId(99));
        assert!(series.is_empty() && chunks.is_empty());
        assert_eq!(reader.fingerprint(SeriesId(99)), 0);
        assert!(format!("{reader:?}").contains("tenant-a"));
    }

    #[test]
    fn re_encoding_a_merged_file_is_byte_identical() {
        let mut writer = IndexWriter::new("t", 1);
        let set = labels(&[("a", "1")]);
        writer.add(&set, chunk(&set, -50, 10, 7));
        writer.add(&set, chunk(&set, i64::MIN, i64::MAX, 8));
        writer.add(&set, chunk(&set, 100, 5, 9)); // through before from survives
        let bytes = writer.finish();
        let reader = IndexReader::open_slice(&bytes).expect("valid");
        let mut merged = IndexWriter::new("t", 1);
        merged.merge_from(&reader);
        assert_eq!(merged.finish(), bytes);
        let (_, chunks) = reader.series(SeriesId(0));
        let ranges: Vec<_> = chunks.iter().map(|c| (c.from_ns, c.through_ns)).collect();
        assert_eq!(ranges, [(i64::MIN, i64::MAX), (-50, 10), (100, 5)]);
    }

    /// The worked example in `docs/formats.md`.
    #[test]
    fn matches_the_documented_example() {
        let set = labels(&[("a", "1")]);
        let mut writer = IndexWriter::new("t", 0);
        writer.add(
            &set,
            ChunkRef {
                fingerprint: set.fingerprint(),
                from_ns: 0,
                through_ns: 10,
                checksum: 1,
                size_bytes: 2,
                entries: 3,
            },
        );
        let hex: Vec<String> = writer.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex.join(" "), DOCUMENTED_EXAMPLE);
    }

    const DOCUMENTED_EXAMPLE: &str = concat!(
        "53 4c 49 31 01 ",
        "01 74 00 01 01 00 ",
        "6e 15 6f 7f ",
        "02 01 31 01 61 ",
        "02 59 2c 30 ",
        "01 d3 b9 71 81 93 76 d8 35 01 01 00 01 00 0a 00 00 00 01 02 03 ",
        "dc 22 e6 4f ",
        "01 01 01 00 01 00 ",
        "e6 59 0d 92 ",
        "04 01 05 06 02 0f 05 03 18 15 04 31 06 ",
        "14 3b aa e8 ",
        "00 00 00 00 00 00 00 3b",
    );

    #[test]
    fn empty_index_round_trips() {
        let bytes = IndexWriter::new("", 0).finish();
        let reader = IndexReader::open(bytes.clone()).expect("valid");
        assert_eq!(reader.series_count(), 0);
        assert_eq!(reader.chunk_count(), 0);
        assert_eq!(reader.time_range(), None);
        assert!(reader.label_names().is_empty());
        assert!(reader.label_values("a").is_empty());
        assert!(reader.select(&[]).is_empty());
        let accept_all = |_: &str| true;
        assert!(reader
            .select(&[LabelMatcher::new("a", &accept_all)])
            .is_empty());
        assert_eq!(&bytes[..4], b"SLI1");
        assert_eq!(bytes[4], INDEX_FORMAT_V1);
    }

    #[test]
    fn label_names_and_values() {
        let (reader, _) = sample();
        assert_eq!(reader.label_names(), ["app", "env", "level", "pod"]);
        assert_eq!(reader.label_values("app"), ["api", "db", "web"]);
        assert_eq!(reader.label_values("level"), ["error", "info", "warn"]);
        assert_eq!(reader.label_values("env"), ["dev", "prod"]);
        assert_eq!(reader.label_values("pod"), ["web-1"]);
        assert!(reader.label_values("missing").is_empty());
        // A symbol that is a value but not a name.
        assert!(reader.label_values("api").is_empty());
    }

    #[test]
    fn select_equality_and_negation() {
        let (reader, _) = sample();
        let api = eq("api");
        let error = eq("error");
        let not_api = ne("api");
        let not_error = ne("error");
        assert_eq!(
            select(
                &reader,
                &[
                    LabelMatcher::new("app", &api),
                    LabelMatcher::new("level", &error)
                ]
            ),
            [
                r#"{app="api", env="dev", level="error"}"#,
                r#"{app="api", env="prod", level="error"}"#
            ]
        );
        assert_eq!(
            select(&reader, &[LabelMatcher::new("app", &not_api)]).len(),
            3
        );
        assert_eq!(
            select(
                &reader,
                &[
                    LabelMatcher::new("app", &api),
                    LabelMatcher::new("level", &not_error)
                ]
            ),
            [r#"{app="api", env="prod", level="info"}"#]
        );
        // No matcher: everything.
        assert_eq!(reader.select(&[]).len(), 6);
        // An unknown value or name with a non-empty-matching predicate: nothing.
        let nope = eq("nope");
        assert!(reader.select(&[LabelMatcher::new("app", &nope)]).is_empty());
        assert!(reader.select(&[LabelMatcher::new("nope", &api)]).is_empty());
        // != on an unknown label matches everything (absent = "").
        assert_eq!(
            reader.select(&[LabelMatcher::new("nope", &not_api)]).len(),
            6
        );
    }

    #[test]
    fn select_absent_labels_and_empty_matching_predicates() {
        let (reader, _) = sample();
        // env="" selects the series without env.
        let empty = eq("");
        assert_eq!(
            select(&reader, &[LabelMatcher::new("env", &empty)]),
            [
                r#"{app="web", level="error", pod="web-1"}"#,
                r#"{app="web", level="info"}"#
            ]
        );
        // env!="" selects the series with env.
        let non_empty = ne("");
        assert_eq!(
            select(&reader, &[LabelMatcher::new("env", &non_empty)]).len(),
            4
        );
        // env!="prod" includes the series without env.
        let not_prod = ne("prod");
        assert_eq!(
            select(&reader, &[LabelMatcher::new("env", &not_prod)]),
            [
                r#"{app="api", env="dev", level="error"}"#,
                r#"{app="web", level="error", pod="web-1"}"#,
                r#"{app="web", level="info"}"#
            ]
        );
        // env=~"prod|" (regex matching "") = prod or absent.
        let prod_or_empty = |value: &str| value == "prod" || value.is_empty();
        assert_eq!(
            select(&reader, &[LabelMatcher::new("env", &prod_or_empty)]).len(),
            5
        );
        // env!~".+" = absent.
        let not_any = |value: &str| value.is_empty();
        assert_eq!(
            select(&reader, &[LabelMatcher::new("env", &not_any)]).len(),
            2
        );
        // env=~".*" matches everything, even without env.
        let any = |_: &str| true;
        assert_eq!(select(&reader, &[LabelMatcher::new("env", &any)]).len(), 6);
        // Only complement matchers, combined.
        let not_web = ne("web");
        assert_eq!(
            select(
                &reader,
                &[
                    LabelMatcher::new("env", &not_prod),
                    LabelMatcher::new("app", &not_web)
                ]
            ),
            [r#"{app="api", env="dev", level="error"}"#]
        );
    }

    #[test]
    fn select_regex_like_predicates() {
        let (reader, _) = sample();
        let a_or_w = |value: &str| value.starts_with('a') || value.starts_with('w');
        let not_info = |value: &str| value != "info" && value != "warn";
        let matchers = [
            LabelMatcher::new("app", &a_or_w),
            LabelMatcher::new("level", &not_info),
        ];
        assert_eq!(
            select(&reader, &matchers),
            [
                r#"{app="api", env="dev", level="error"}"#,
                r#"{app="api", env="prod", level="error"}"#,
                r#"{app="web", level="error", pod="web-1"}"#
            ]
        );
        assert_eq!(select(&reader, &matchers), select_naive(&reader, &matchers));
        assert!(format!("{:?}", matchers[0]).contains("app"));
    }

    #[test]
    fn select_agrees_with_brute_force_on_a_larger_index() {
        let mut writer = IndexWriter::new("t", 0);
        for index in 0..600u32 {
            let service = format!("svc-{}", index % 37);
            let level = ["debug", "info", "warn", "error"][(index % 4) as usize];
            let pod = format!("pod-{index}");
            let mut pairs = vec![
                ("service", service.as_str()),
                ("level", level),
                ("pod", pod.as_str()),
            ];
            if index % 3 == 0 {
                pairs.push(("env", "prod"));
            }
            let set = labels(&pairs);
            writer.add(
                &set,
                chunk(&set, i64::from(index), i64::from(index) + 10, index),
            );
        }
        let reader = IndexReader::open(writer.finish()).expect("valid");
        let svc_1 = eq("svc-1");
        let error = eq("error");
        let not_debug = ne("debug");
        let not_prod = ne("prod");
        let pods_7 = |value: &str| value.ends_with('7');
        let svc_1x = |value: &str| value.starts_with("svc-1");
        let empty = eq("");
        let cases: Vec<Vec<LabelMatcher<'_>>> = vec![
            vec![
                LabelMatcher::new("service", &svc_1),
                LabelMatcher::new("level", &error),
            ],
            vec![
                LabelMatcher::new("level", &not_debug),
                LabelMatcher::new("env", &not_prod),
            ],
            vec![
                LabelMatcher::new("pod", &pods_7),
                LabelMatcher::new("env", &empty),
            ],
            vec![
                LabelMatcher::new("service", &svc_1x),
                LabelMatcher::new("pod", &pods_7),
                LabelMatcher::new("level", &not_debug),
            ],
            vec![LabelMatcher::new("level", &not_debug)],
            vec![
                LabelMatcher::new("env", &not_prod),
                LabelMatcher::new("service", &svc_1x),
            ],
        ];
        for matchers in &cases {
            let got = select(&reader, matchers);
            assert!(!got.is_empty(), "{matchers:?}");
            assert_eq!(got, select_naive(&reader, matchers), "{matchers:?}");
        }
    }

    #[test]
    fn merge_dedupes_chunks_across_files() {
        let a = labels(&[("app", "api")]);
        let b = labels(&[("app", "web")]);
        let mut first = IndexWriter::new("t", 7);
        first.add(&a, chunk(&a, 0, 10, 1));
        first.add(&a, chunk(&a, 20, 30, 2));
        first.add(&a, chunk(&a, 0, 10, 1)); // duplicate within one writer
        let mut second = IndexWriter::new("t", 7);
        second.add(&a, chunk(&a, 20, 30, 2)); // overlaps the first file
        second.add(&a, chunk(&a, 20, 30, 3)); // same range, other checksum
        second.add(&b, chunk(&b, 5, 6, 4));
        let first = IndexReader::open(first.finish()).expect("first");
        let second = IndexReader::open(second.finish()).expect("second");
        assert_eq!(first.chunk_count(), 2);
        let mut compacted = IndexWriter::new("t", 7);
        compacted.merge_from(&first);
        compacted.merge_from(&second);
        compacted.merge_from(&first); // idempotent
        let merged = IndexReader::open(compacted.finish()).expect("merged");
        assert_eq!(merged.series_count(), 2);
        assert_eq!(merged.chunk_count(), 4);
        let checksums: Vec<u32> = merged
            .series_ids()
            .flat_map(|id| merged.series(id).1.iter().map(|c| c.checksum))
            .collect();
        assert_eq!(checksums, [1, 2, 3, 4]);
    }

    #[test]
    fn duplicate_names_and_fingerprints_are_kept_apart() {
        let mut writer = IndexWriter::new("t", 0);
        let duplicated = labels(&[("a", "2"), ("a", "1"), ("a", "2"), ("b", "x")]);
        writer.add(&duplicated, chunk(&duplicated, 0, 1, 1));
        let plain = labels(&[("a", "1")]);
        writer.add(&plain, chunk(&plain, 0, 1, 1));
        let mut other_fingerprint = chunk(&plain, 0, 1, 1);
        other_fingerprint.fingerprint ^= 1;
        writer.add(&plain, other_fingerprint);
        let reader = IndexReader::open(writer.finish()).expect("valid");
        assert_eq!(reader.series_count(), 3);
        let all: Vec<String> = reader
            .series_ids()
            .map(|id| reader.series(id).0.to_string())
            .collect();
        assert_eq!(
            all,
            [r#"{a="1"}"#, r#"{a="1"}"#, r#"{a="1", a="2", b="x"}"#]
        );
        let one = eq("1");
        assert_eq!(reader.select(&[LabelMatcher::new("a", &one)]).len(), 3);
        let not_two = ne("2");
        assert_eq!(reader.select(&[LabelMatcher::new("a", &not_two)]).len(), 2);
    }

    #[test]
    fn chunks_in_range_uses_half_open_query_ranges() {
        let set = labels(&[("a", "1")]);
        let mut writer = IndexWriter::new("t", 0);
        for (from, through) in [(0, 10), (10, 20), (15, 16), (30, 40)] {
            writer.add(&set, chunk(&set, from, through, from as u32));
        }
        let reader = IndexReader::open(writer.finish()).expect("valid");
        let id = SeriesId(0);
        let range = |from, through| -> Vec<(i64, i64)> {
            reader
                .chunks_in_range(id, from, through)
                .map(|c| (c.from_ns, c.through_ns))
                .collect()
        };
        assert_eq!(range(i64::MIN, i64::MAX).len(), 4);
        assert_eq!(range(10, 15), [(0, 10), (10, 20)]); // through == from overlaps
        assert_eq!(range(16, 30), [(10, 20), (15, 16)]); // chunk from == query end excluded
        assert_eq!(range(21, 30), []);
        assert_eq!(range(40, 41), [(30, 40)]);
        assert_eq!(range(5, 5), []);
        assert!(reader.chunks_in_range(SeriesId(5), 0, 100).next().is_none());
        let chunk = reader.series(id).1[0];
        assert!(chunk.overlaps(10, 11));
        assert!(!chunk.overlaps(11, 20));
        assert!(!chunk.overlaps(-5, 0));
        let key = chunk.key("t", 3);
        assert_eq!(
            (key.tenant.as_str(), key.period, key.fingerprint),
            ("t", 3, set.fingerprint())
        );
        assert_eq!((key.from_ns, key.through_ns, key.checksum), (0, 10, 0));
    }

    /// Recomputes every section CRC and the table-of-contents CRC, so that a
    /// mutation reaches the structural checks behind them.
    fn fix_checksums(bytes: &mut [u8]) {
        let len = bytes.len();
        let Some(offset) = bytes
            .get(len.saturating_sub(8)..)
            .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
            .map(u64::from_be_bytes)
            .and_then(|offset| usize::try_from(offset).ok())
            .filter(|offset| *offset + TRAILER_LEN <= len)
        else {
            return;
        };
        let toc_end = len - TRAILER_LEN;
        let toc = bytes[offset..toc_end].to_vec();
        let mut cursor = Cursor::new(&toc, "toc");
        if let Ok(count) = cursor.count("n", 3) {
            for _ in 0..count {
                let (Ok(_), Ok(start), Ok(body_len)) = (
                    cursor.bytes(1, "kind"),
                    cursor.usize("offset"),
                    cursor.usize("len"),
                ) else {
                    break;
                };
                let Some(end) = start.checked_add(body_len).filter(|end| end + 4 <= offset) else {
                    continue;
                };
                let crc = crc32fast::hash(&bytes[start..end]);
                bytes[end..end + 4].copy_from_slice(&crc.to_be_bytes());
            }
        }
        let crc = crc32fast::hash(&bytes[offset..toc_end]);
        bytes[toc_end..toc_end + 4].copy_from_slice(&crc.to_be_bytes());
    }

    fn sample_bytes() -> Vec<u8> {
        let mut writer = IndexWriter::new("tenant-a", 19723);
        for index in 0..8i64 {
            let set = labels(&[
                ("app", if index % 2 == 0 { "api" } else { "web" }),
                ("n", &index.to_string()),
            ]);
            writer.add(&set, chunk(&set, index, index + 5, index as u32));
            writer.add(&set, chunk(&set, index + 10, index + 15, 100));
        }
        writer.finish()
    }

    #[test]
    fn corruption_is_detected_and_named() {
        let bytes = sample_bytes();
        assert!(IndexReader::open(bytes.clone()).is_ok());
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(matches!(
            IndexReader::open(bad_magic),
            Err(ChunkError::BadIndexMagic {
                expected: INDEX_MAGIC,
                ..
            })
        ));
        let mut bad_version = bytes.clone();
        bad_version[4] = 2;
        assert_eq!(
            IndexReader::open(bad_version).expect_err("v2"),
            ChunkError::UnsupportedIndexVersion(2)
        );
        // A flipped byte in the first section (meta, right after the header).
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 1] ^= 0x01;
        assert_eq!(
            IndexReader::open(flipped).expect_err("crc"),
            ChunkError::IndexChecksumMismatch { section: "meta" }
        );
        // A flipped byte in the table of contents.
        let toc_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
        let mut flipped = bytes.clone();
        flipped[toc_offset + 1] ^= 0x01;
        assert_eq!(
            IndexReader::open(flipped).expect_err("toc"),
            ChunkError::IndexChecksumMismatch { section: "toc" }
        );
        // Every section's CRC is checked.
        for (index, name) in SECTION_NAMES.iter().enumerate() {
            let reader_sections = read_toc(&bytes).expect("toc");
            let start = reader_sections[index].as_ptr() as usize - bytes.as_ptr() as usize;
            let mut flipped = bytes.clone();
            flipped[start + reader_sections[index].len()] ^= 0x10; // its stored CRC
            assert_eq!(
                IndexReader::open(flipped).expect_err(name),
                ChunkError::IndexChecksumMismatch { section: name }
            );
        }
        let error = IndexReader::open(bytes[..10].to_vec()).expect_err("short");
        assert_eq!(
            error.to_string(),
            "corrupt index: 10 bytes is shorter than the index header and trailer"
        );
    }

    #[test]
    fn consistent_checksums_do_not_hide_structural_errors() {
        let bytes = sample_bytes();
        let sections = read_toc(&bytes).expect("toc");
        let postings_start = sections[POSTINGS].as_ptr() as usize - bytes.as_ptr() as usize;
        // Point a posting at a series that lacks the label.
        let mut mutated = bytes.clone();
        // postings: name count, name sym, value count, value sym, id count, id …
        mutated[postings_start + 5] ^= 0x01;
        fix_checksums(&mut mutated);
        let error = IndexReader::open(mutated).expect_err("inconsistent");
        assert!(matches!(error, ChunkError::CorruptIndex { .. }), "{error}");
        // Drop a section from the table of contents.
        let toc_offset = read_u64(&bytes, bytes.len() - 8).expect("offset") as usize;
        let mut missing = bytes.clone();
        missing[toc_offset] = 3; // claims 3 sections, leaving trailing bytes
        fix_checksums(&mut missing);
        assert!(matches!(
            IndexReader::open(missing),
            Err(ChunkError::CorruptIndex { .. })
        ));
        // An unknown section kind is skipped, so the postings go missing.
        let mut unknown = bytes.clone();
        let mut cursor = Cursor::new(&bytes[toc_offset..bytes.len() - TRAILER_LEN], "toc");
        cursor.uvarint("n").expect("n");
        for _ in 0..3 {
            cursor.bytes(1, "kind").expect("kind");
            cursor.uvarint("offset").expect("offset");
            cursor.uvarint("len").expect("len");
        }
        unknown[toc_offset + cursor.pos] = 9;
        fix_checksums(&mut unknown);
        assert_eq!(
            IndexReader::open(unknown).expect_err("missing").to_string(),
            "corrupt index: missing postings section"
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_bytes();
        for len in 0..bytes.len() {
            assert!(
                IndexReader::open_slice(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = IndexReader::open(bytes);
        }

        #[test]
        fn random_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut bytes = INDEX_MAGIC.to_be_bytes().to_vec();
            bytes.push(INDEX_FORMAT_V1);
            bytes.extend_from_slice(&tail);
            let _ = IndexReader::open(bytes.clone());
            fix_checksums(&mut bytes);
            let _ = IndexReader::open(bytes);
        }

        #[test]
        fn truncations_and_mutations_never_panic(
            cut in any::<prop::sample::Index>(),
            position in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let bytes = sample_bytes();
            prop_assert!(IndexReader::open_slice(&bytes[..cut.index(bytes.len())]).is_err());
            let mut mutated = bytes.clone();
            let at = position.index(mutated.len());
            mutated[at] ^= xor;
            prop_assert!(IndexReader::open_slice(&mutated).is_err());
            // Behind consistent checksums the parser must still never panic,
            // and whatever it accepts must be queryable.
            fix_checksums(&mut mutated);
            if let Ok(reader) = IndexReader::open(mutated) {
                let any = |_: &str| true;
                let api = |value: &str| value == "api";
                for name in reader.label_names() {
                    let _ = reader.label_values(name);
                }
                for id in reader.select(&[LabelMatcher::new("app", &api), LabelMatcher::new("n", &any)]) {
                    let _ = reader.series(id).0.to_labels();
                    let _ = reader.chunks_in_range(id, 0, 10).count();
                }
            }
        }

        #[test]
        fn writer_reader_round_trip(
            series in proptest::collection::vec(
                (
                    proptest::collection::vec(("[a-c]", "[xyz]{0,2}"), 0..4),
                    proptest::collection::vec((any::<i64>(), any::<i64>(), 0u32..3), 1..4),
                ),
                0..12,
            ),
        ) {
            let mut writer = IndexWriter::new("t", 1);
            let mut expected: BTreeMap<Labels, std::collections::BTreeSet<(i64, i64, u32)>> = BTreeMap::new();
            for (pairs, chunks) in &series {
                let set = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                if set.first_duplicate_name().is_some() {
                    continue;
                }
                for &(from, through, checksum) in chunks {
                    writer.add(&set, chunk(&set, from, through, checksum));
                    expected.entry(set.clone()).or_default().insert((from, through, checksum));
                }
            }
            let bytes = writer.finish();
            let reader = IndexReader::open(bytes.clone()).expect("valid");
            prop_assert_eq!(reader.series_count(), expected.len());
            for (id, (set, chunks)) in reader.series_ids().zip(&expected) {
                let (labels, refs) = reader.series(id);
                prop_assert_eq!(labels.to_labels(), set.clone());
                let got: Vec<_> = refs.iter().map(ChunkRef::identity).collect();
                let want: Vec<_> = chunks.iter().copied().collect();
                prop_assert_eq!(got, want);
            }
            let mut merged = IndexWriter::new("t", 1);
            merged.merge_from(&reader);
            prop_assert_eq!(merged.finish(), bytes);
            let b = |value: &str| value.starts_with('x') || value.is_empty();
            let c = |value: &str| value != "y";
            let matchers = [LabelMatcher::new("b", &b), LabelMatcher::new("c", &c)];
            let got: Vec<String> = reader.select(&matchers).into_iter().map(|id| reader.series(id).0.to_string()).collect();
            prop_assert_eq!(got, select_naive(&reader, &matchers));
        }
    }
}
