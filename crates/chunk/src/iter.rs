//! The owned, lending query iterator over a chunk: a k-way merge by timestamp
//! of the head snapshot and the blocks overlapping the query range.

use std::sync::Arc;

use bytes::Bytes;

use crate::block::{self, BlockMeta, EntryRef};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::format::ChunkFormat;
use crate::hint::LineHint;
use crate::memchunk::Direction;

/// A compressed block not decompressed yet.
pub(crate) struct PendingBlock {
    /// Position of the block in the chunk; breaks timestamp ties.
    pub(crate) order: usize,
    pub(crate) meta: BlockMeta,
    pub(crate) data: Bytes,
}

/// The unread part of one decompressed block (or of the head snapshot).
struct Cursor {
    order: usize,
    text: String,
    entries: Vec<EntryRef>,
    /// Next entry going forward.
    front: usize,
    /// One past the next entry going backward.
    back: usize,
}

impl Cursor {
    fn is_exhausted(&self) -> bool {
        self.front >= self.back
    }

    fn peek(&self, direction: Direction) -> Option<EntryRef> {
        if self.is_exhausted() {
            return None;
        }
        match direction {
            Direction::Forward => self.entries.get(self.front).copied(),
            Direction::Backward => self.entries.get(self.back - 1).copied(),
        }
    }

    fn advance(&mut self, direction: Direction) {
        match direction {
            Direction::Forward => self.front += 1,
            Direction::Backward => self.back -= 1,
        }
    }
}

/// Entries of a chunk within a time range, in timestamp order.
///
/// The iterator owns everything it reads (shared compressed blocks, decompressed
/// buffers, a copy of the matching head entries), so the chunk (and any lock
/// around it) can be released while iterating. It lends each line from its own
/// buffers: [`ChunkIter::next_entry`] does not allocate per line.
///
/// A block that fails to decompress or parse ends the iteration: `next_entry`
/// then returns `None` and [`ChunkIter::error`] tells why (blocks of a chunk
/// built by [`crate::MemChunk::append`] cannot fail).
pub struct ChunkIter {
    format: ChunkFormat,
    codec: Codec,
    direction: Direction,
    from: i64,
    through: i64,
    /// Blocks still compressed, ordered so that the next one to open is last.
    pending: Vec<PendingBlock>,
    active: Vec<Cursor>,
    /// Set once a cursor ran out, so exhausted cursors get dropped.
    has_exhausted: bool,
    error: Option<ChunkError>,
    /// Set by [`ChunkIter::with_hint`].
    hint: Option<Arc<LineHint>>,
}

impl ChunkIter {
    pub(crate) fn new(
        format: ChunkFormat,
        codec: Codec,
        direction: Direction,
        from: i64,
        through: i64,
        mut pending: Vec<PendingBlock>,
        head: (usize, String, Vec<EntryRef>),
    ) -> ChunkIter {
        match direction {
            // Smallest min_ts (then lowest order) last.
            Direction::Forward => pending.sort_by(|left, right| {
                (right.meta.min_ts, right.order).cmp(&(left.meta.min_ts, left.order))
            }),
            // Largest max_ts (then highest order) last.
            Direction::Backward => pending.sort_by(|left, right| {
                (left.meta.max_ts, left.order).cmp(&(right.meta.max_ts, right.order))
            }),
        }
        let (head_order, head_text, head_entries) = head;
        let mut active = Vec::with_capacity(pending.len().min(4) + 1);
        if !head_entries.is_empty() {
            active.push(Cursor {
                order: head_order,
                text: head_text,
                back: head_entries.len(),
                entries: head_entries,
                front: 0,
            });
        }
        ChunkIter {
            format,
            codec,
            direction,
            from,
            through,
            pending,
            active,
            has_exhausted: false,
            error: None,
            hint: None,
        }
    }

    /// Lets blocks skip lines that cannot satisfy `hint` (see [`LineHint`]).
    /// The caller still filters what the iterator returns.
    pub fn with_hint(mut self, hint: Arc<LineHint>) -> ChunkIter {
        self.hint = Some(hint);
        self
    }

    /// Returns the next entry, or `None` at the end or after an error (see
    /// [`ChunkIter::error`]). The line borrows from the iterator.
    pub fn next_entry(&mut self) -> Option<(i64, &str)> {
        match self.advance() {
            Ok(Some((cursor, entry))) => Some((entry.ts, self.line(cursor, entry))),
            Ok(None) | Err(_) => None,
        }
    }

    /// Returns the next entry, `Ok(None)` at the end, or the error that stopped
    /// the iteration (again on every later call).
    pub fn try_next_entry(&mut self) -> Result<Option<(i64, &str)>, ChunkError> {
        Ok(self
            .advance()?
            .map(|(cursor, entry)| (entry.ts, self.line(cursor, entry))))
    }

    /// Returns the error that ended the iteration early, if any.
    pub fn error(&self) -> Option<&ChunkError> {
        self.error.as_ref()
    }

    /// Collects the remaining entries into owned pairs (convenient in tests;
    /// allocates per line).
    pub fn collect_all(mut self) -> Vec<(i64, String)> {
        let mut all = Vec::new();
        while let Some((ts, line)) = self.next_entry() {
            all.push((ts, line.to_owned()));
        }
        all
    }

    fn line(&self, cursor: usize, entry: EntryRef) -> &str {
        self.active
            .get(cursor)
            .and_then(|cursor| cursor.text.get(entry.start..entry.end()))
            .unwrap_or_default()
    }

    /// Moves to the next entry; returns the index of its cursor and the entry.
    fn advance(&mut self) -> Result<Option<(usize, EntryRef)>, ChunkError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.has_exhausted {
            self.active.retain(|cursor| !cursor.is_exhausted());
            self.has_exhausted = false;
        }
        loop {
            let best = self.best_cursor();
            if let Some(next_block) = self.pending.last() {
                let must_open = match (best, self.direction) {
                    (None, _) => true,
                    // Opening on equal timestamps too keeps ties in block order.
                    (Some((_, entry)), Direction::Forward) => next_block.meta.min_ts <= entry.ts,
                    (Some((_, entry)), Direction::Backward) => next_block.meta.max_ts >= entry.ts,
                };
                if must_open {
                    if let Some(block) = self.pending.pop() {
                        if let Err(error) = self.open(&block) {
                            self.error = Some(error.clone());
                            self.pending.clear();
                            self.active.clear();
                            return Err(error);
                        }
                    }
                    continue;
                }
            }
            let Some((index, entry)) = best else {
                return Ok(None);
            };
            if let Some(cursor) = self.active.get_mut(index) {
                cursor.advance(self.direction);
                self.has_exhausted |= cursor.is_exhausted();
            }
            return Ok(Some((index, entry)));
        }
    }

    /// Finds the cursor holding the next entry in merge order.
    fn best_cursor(&self) -> Option<(usize, EntryRef)> {
        let direction = self.direction;
        let candidates = self
            .active
            .iter()
            .enumerate()
            .filter_map(|(index, cursor)| {
                cursor
                    .peek(direction)
                    .map(|entry| (index, cursor.order, entry))
            });
        let best = match direction {
            Direction::Forward => candidates.min_by_key(|(_, order, entry)| (entry.ts, *order)),
            Direction::Backward => candidates.max_by_key(|(_, order, entry)| (entry.ts, *order)),
        };
        best.map(|(index, _, entry)| (index, entry))
    }

    fn open(&mut self, block: &PendingBlock) -> Result<(), ChunkError> {
        let no_hint = LineHint::default();
        let decoded = block::decode_block_with_hint(
            self.format,
            self.codec,
            &block.data,
            &block.meta,
            self.hint.as_deref().unwrap_or(&no_hint),
        )?;
        let front = decoded
            .entries
            .partition_point(|entry| entry.ts < self.from);
        let back = decoded
            .entries
            .partition_point(|entry| entry.ts < self.through);
        if front < back {
            self.active.push(Cursor {
                order: block.order,
                text: decoded.text,
                entries: decoded.entries,
                front,
                back,
            });
        }
        Ok(())
    }
}
