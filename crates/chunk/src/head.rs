//! The head block: raw, unsorted entries not yet compressed.

use crate::block::{self, Block, EntryRef, Scratch};
use crate::codec::Codec;
use crate::format::ChunkFormat;

/// Smallest text buffer a head allocates.
const MIN_TEXT: usize = 512;
/// Smallest entry list a head allocates.
const MIN_ENTRIES: usize = 8;

/// Entries in arrival order: all lines in one `String`, plus one [`EntryRef`]
/// per entry, so appending never allocates per line.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadBlock {
    text: String,
    entries: Vec<EntryRef>,
    /// Logical size of these entries (see [`block::logical_size`]).
    layout_size: usize,
    min_ts: i64,
    max_ts: i64,
}

impl HeadBlock {
    pub(crate) fn append(&mut self, ts: i64, line: &str) {
        if self.entries.is_empty() {
            self.min_ts = ts;
            self.max_ts = ts;
        } else {
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
        }
        // Grow by half, not double: an ingester holds one head per stream,
        // and with many streams the unused half of doubled buffers adds up.
        let needed = self.text.len() + line.len();
        if needed > self.text.capacity() {
            let target = needed
                .max(self.text.len() + self.text.len() / 2)
                .max(MIN_TEXT);
            self.text.reserve_exact(target - self.text.len());
        }
        if self.entries.len() == self.entries.capacity() {
            let target = (self.entries.len() + self.entries.len() / 2).max(MIN_ENTRIES);
            self.entries.reserve_exact(target - self.entries.len());
        }
        self.entries.push(EntryRef {
            ts,
            start: self.text.len(),
            len: line.len(),
        });
        self.text.push_str(line);
        self.layout_size += block::logical_size(ts, line.len());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns the logical size of the head entries: what they take in the
    /// version-1 block layout.
    pub(crate) fn layout_size(&self) -> usize {
        self.layout_size
    }

    /// Returns `(min, max)` timestamps, or `None` when empty.
    pub(crate) fn bounds(&self) -> Option<(i64, i64)> {
        (!self.is_empty()).then_some((self.min_ts, self.max_ts))
    }

    /// Compresses the entries, sorted by (timestamp, arrival), into a block.
    /// Returns `None` when the head is empty.
    pub(crate) fn to_block(
        &self,
        format: ChunkFormat,
        codec: Codec,
        zstd_level: i32,
        scratch: &mut Scratch,
    ) -> Option<Block> {
        if self.is_empty() {
            return None;
        }
        if is_sorted(&self.entries) {
            return Some(Block::build(
                format,
                codec,
                zstd_level,
                &self.text,
                &self.entries,
                scratch,
            ));
        }
        let mut sorted = self.entries.clone();
        sorted.sort_by_key(|entry| entry.ts);
        Some(Block::build(
            format, codec, zstd_level, &self.text, &sorted, scratch,
        ))
    }

    /// Like [`HeadBlock::to_block`], then empties the head keeping its buffers.
    pub(crate) fn cut(
        &mut self,
        format: ChunkFormat,
        codec: Codec,
        zstd_level: i32,
        scratch: &mut Scratch,
    ) -> Option<Block> {
        if self.is_empty() {
            return None;
        }
        if !is_sorted(&self.entries) {
            // Stable: equal timestamps keep their arrival order.
            self.entries.sort_by_key(|entry| entry.ts);
        }
        let block = Block::build(
            format,
            codec,
            zstd_level,
            &self.text,
            &self.entries,
            scratch,
        );
        self.text.clear();
        self.entries.clear();
        self.layout_size = 0;
        Some(block)
    }

    /// Gives the (empty) head's buffers back to the allocator.
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty());
        self.text = String::new();
        self.entries = Vec::new();
    }

    /// Copies the entries with `from <= ts < through` into a new text buffer,
    /// sorted by (timestamp, arrival).
    pub(crate) fn snapshot(&self, from: i64, through: i64) -> (String, Vec<EntryRef>) {
        let mut selected: Vec<EntryRef> = self
            .entries
            .iter()
            .filter(|entry| entry.ts >= from && entry.ts < through)
            .copied()
            .collect();
        if !is_sorted(&selected) {
            selected.sort_by_key(|entry| entry.ts);
        }
        let mut text = String::with_capacity(selected.iter().map(|entry| entry.len).sum());
        for entry in &mut selected {
            let line = self.text.get(entry.start..entry.end()).unwrap_or_default();
            entry.start = text.len();
            text.push_str(line);
        }
        (text, selected)
    }
}

fn is_sorted(entries: &[EntryRef]) -> bool {
    entries.windows(2).all(|pair| pair[0].ts <= pair[1].ts)
}
