//! Reading a version-3 block: rebuilding its lines from the templates and
//! the variable columns. Never panics, whatever the bytes.

use super::{corrupt, is_id, number, ColumnNumbers, DELTA, END, ESCAPE, MARKER, RECENT, REFERENCE};
use crate::block::v1::MAX_PREALLOCATION;
use crate::block::{BlockMeta, EntryRef};
use crate::codec::Codec;
use crate::error::ChunkError;
use crate::hint::LineHint;
use crate::varint::{self, Reader, MAX_VARINT_LEN};

/// Zero bytes after the literals and the variables, so that [`Lines::copy`]
/// can copy whole pieces of this many bytes.
const PADDING: usize = 16;
/// No column: the last piece of a template.
const NO_COLUMN: u32 = u32::MAX;

/// Rebuilds the lines of the block whose compressed structure and variables
/// sections are given, filling in the line ranges of `entries`; returns the
/// lines back to back. Lines that cannot satisfy `hint` are left out, and
/// their entries removed.
pub(super) fn lines(
    codec: Codec,
    structure: &[u8],
    variables: &[u8],
    meta: &BlockMeta,
    entries: &mut Vec<EntryRef>,
    hint: &LineHint,
) -> Result<Vec<u8>, ChunkError> {
    let Structure {
        templates,
        numbers,
        mut columns,
        values_len: total,
    } = Structure::read(codec, structure, meta)?;
    let mut values = Vec::with_capacity(total.min(MAX_PREALLOCATION) + PADDING);
    codec.decompress(variables, &mut values, total)?;
    if values.len() != total {
        return Err(corrupt(&format!(
            "variables decompressed to {} bytes, the columns add up to {total}",
            values.len()
        )));
    }
    values.resize(total + PADDING, 0);

    let keep = templates.keep(&values[..total], hint);
    if keep.as_ref().is_some_and(|keep| !keep.contains(&true)) {
        // No line can satisfy the hint: nothing to rebuild.
        entries.clear();
        return Ok(Vec::new());
    }
    let mut text = Lines::new(meta.uncompressed_size);
    let mut kept = 0;
    for (index, number) in numbers.into_iter().enumerate() {
        let pieces = templates.pieces(number);
        if keep.as_ref().is_some_and(|keep| !keep[number]) {
            for piece in &pieces[..pieces.len() - 1] {
                columns[piece.column as usize].skip(&values)?;
            }
            continue;
        }
        let start = text.len;
        for piece in pieces {
            let (from, to) = piece.literal;
            text.copy(&templates.literals, from as usize, (to - from) as usize)?;
            if piece.column == NO_COLUMN {
                break;
            }
            columns[piece.column as usize].append_to(&values, &mut text)?;
        }
        entries[kept] = EntryRef {
            ts: entries[index].ts,
            start,
            len: text.len - start,
        };
        kept += 1;
    }
    entries.truncate(kept);
    if columns.iter().any(|column| column.at != column.end) {
        return Err(corrupt("a column holds more values than its templates use"));
    }
    Ok(text.finish())
}

/// The structure section, read.
struct Structure {
    templates: Templates,
    /// The template of each entry.
    numbers: Vec<usize>,
    /// Where each column's values are in the variables section.
    columns: Vec<Column>,
    /// The size of the variables section, decompressed.
    values_len: usize,
}

impl Structure {
    /// Decompresses and reads the structure section of a block of
    /// `meta.entries` entries.
    fn read(codec: Codec, compressed: &[u8], meta: &BlockMeta) -> Result<Structure, ChunkError> {
        // Keys escape at most every byte of the lines, numbers take a varint
        // per entry and column lengths one per variable (at most one per line
        // byte).
        let size = meta.uncompressed_size;
        let limit = size
            .saturating_mul(2 + MAX_VARINT_LEN)
            .saturating_add(meta.entries.saturating_mul(MAX_VARINT_LEN));
        let mut bytes = Vec::new();
        codec.decompress(compressed, &mut bytes, limit)?;
        let mut reader = Reader::new(&bytes);
        let templates = Templates::read(&mut reader)?;
        let mut numbers = Vec::with_capacity(meta.entries.min(bytes.len()));
        for _ in 0..meta.entries {
            let number = reader
                .uvarint()
                .and_then(|number| usize::try_from(number).ok())
                .filter(|number| *number < templates.count())
                .ok_or_else(|| corrupt("bad template number"))?;
            numbers.push(number);
        }
        // Every stored value takes at least two bytes (a byte and its end, or
        // a tag and its operand) and makes at least one byte of a line.
        let values_limit = size.saturating_mul(3);
        let mut columns = Vec::with_capacity(templates.columns);
        let mut total = 0usize;
        for _ in 0..templates.columns {
            let field = reader
                .uvarint()
                .ok_or_else(|| corrupt("bad column length"))?;
            let end = usize::try_from(field >> 1)
                .ok()
                .and_then(|len| total.checked_add(len))
                .filter(|end| *end <= values_limit)
                .ok_or_else(|| corrupt("bad column length"))?;
            columns.push(Column::new(total, end, field & 1 == 1));
            total = end;
        }
        if !reader.is_at_end() {
            return Err(corrupt("structure section has bytes after its columns"));
        }
        Ok(Structure {
            templates,
            numbers,
            columns,
            values_len: total,
        })
    }
}

/// One piece of a template: a literal, then the next value of a column (none
/// after a template's last literal).
#[derive(Debug, Clone, Copy)]
struct Piece {
    literal: (u32, u32),
    column: u32,
}

/// The templates of a block, as pieces.
struct Templates {
    /// The literals, back to back, then [`PADDING`] zero bytes.
    literals: Vec<u8>,
    pieces: Vec<Piece>,
    /// Template `t` is `pieces[starts[t]..starts[t + 1]]`.
    starts: Vec<usize>,
    columns: usize,
}

impl Templates {
    /// Reads the template dictionary at the start of the structure section,
    /// numbering the columns as the writer did.
    fn read(reader: &mut Reader<'_>) -> Result<Templates, ChunkError> {
        let count = reader
            .uvarint()
            .and_then(|count| usize::try_from(count).ok())
            .ok_or_else(|| corrupt("bad template count"))?;
        let mut templates = Templates {
            literals: Vec::new(),
            pieces: Vec::new(),
            // Every template takes at least one byte: bounded allocation.
            starts: Vec::with_capacity(count.min(reader.remaining()) + 1),
            columns: 0,
        };
        let mut column_numbers = ColumnNumbers::default();
        for _ in 0..count {
            let key = reader
                .uvarint()
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| reader.bytes(len))
                .ok_or_else(|| corrupt("bad template length"))?;
            templates.starts.push(templates.pieces.len());
            let mut literal = templates.literals.len();
            let mut at = 0;
            while at < key.len() {
                match key[at] {
                    ESCAPE => {
                        let byte = *key
                            .get(at + 1)
                            .ok_or_else(|| corrupt("template ends in an escape"))?;
                        templates.literals.push(byte);
                        at += 2;
                    }
                    MARKER => {
                        let column = column_numbers.of(&key[..at]);
                        templates.pieces.push(Piece {
                            literal: (literal as u32, templates.literals.len() as u32),
                            column,
                        });
                        literal = templates.literals.len();
                        at += 1;
                    }
                    byte => {
                        templates.literals.push(byte);
                        at += 1;
                    }
                }
            }
            templates.pieces.push(Piece {
                literal: (literal as u32, templates.literals.len() as u32),
                column: NO_COLUMN,
            });
        }
        templates.starts.push(templates.pieces.len());
        templates.columns = column_numbers.len();
        templates
            .literals
            .resize(templates.literals.len() + PADDING, 0);
        Ok(templates)
    }

    fn count(&self) -> usize {
        self.starts.len() - 1
    }

    /// Which templates' lines may satisfy `hint`, given the block's stored
    /// values; `None` when all may. A word of the hint (ASCII letters only)
    /// in a line lies within one maximal alphanumeric run: a literal word,
    /// inside one of the template's literals, or a variable, inside a
    /// stored value (a reference repeats one; a difference is digits).
    fn keep(&self, values: &[u8], hint: &LineHint) -> Option<Vec<bool>> {
        let mut keep: Option<Vec<bool>> = None;
        for word in hint.words() {
            let finder = memchr::memmem::Finder::new(word);
            if finder.find(values).is_some() {
                continue;
            }
            let keep = keep.get_or_insert_with(|| vec![true; self.count()]);
            for (number, keep) in keep.iter_mut().enumerate() {
                let pieces = self.pieces(number);
                let (from, to) = (pieces[0].literal.0, pieces[pieces.len() - 1].literal.1);
                *keep &= finder
                    .find(&self.literals[from as usize..to as usize])
                    .is_some();
            }
        }
        keep
    }

    fn pieces(&self, number: usize) -> &[Piece] {
        &self.pieces[self.starts[number]..self.starts[number + 1]]
    }
}

/// What a column's previous value was, for a difference that follows it.
#[derive(Debug, Clone, Copy)]
enum Previous {
    /// An id, a reference or nothing: no difference may follow.
    None,
    /// A stored value, parsed only if a difference follows.
    Stored(u32, u32),
    /// A number rebuilt from a difference, and its width.
    Number(u64, usize),
}

/// A column being read: where its values are in the variables section and
/// what references and differences need.
#[derive(Debug, Clone)]
struct Column {
    at: usize,
    end: usize,
    /// The last distinct ids, most recent first, as ranges of the section.
    recent: [(u32, u32); RECENT],
    known: usize,
    previous: Previous,
    /// Whether the column holds ids (see the module documentation of `v3`).
    ids: bool,
}

impl Column {
    fn new(at: usize, end: usize, ids: bool) -> Column {
        Column {
            at,
            end,
            recent: [(0, 0); RECENT],
            known: 0,
            previous: Previous::None,
            ids,
        }
    }

    /// Appends the column's next value to `text`. `values` is the variables
    /// section followed by [`PADDING`] zero bytes.
    #[inline(always)]
    fn append_to(&mut self, values: &[u8], text: &mut Lines) -> Result<(), ChunkError> {
        match self.next(values)? {
            Value::Stored(start, end) => text.copy(values, start, end - start),
            Value::Number(number, width) => {
                let end = text.reserve(width)?;
                write_digits(number, &mut text.bytes[text.len..end]);
                text.len = end;
                Ok(())
            }
        }
    }

    /// Moves past the column's next value, keeping what later values need.
    fn skip(&mut self, values: &[u8]) -> Result<(), ChunkError> {
        self.next(values).map(|_| ())
    }

    /// Reads the column's next value.
    #[inline(always)]
    fn next(&mut self, values: &[u8]) -> Result<Value, ChunkError> {
        let at = self.at;
        if at >= self.end {
            return Err(corrupt(
                "a column holds fewer values than its templates use",
            ));
        }
        match values[at] {
            REFERENCE if self.ids => {
                let place = usize::from(values[at + 1]);
                if place >= self.known || at + 2 > self.end {
                    return Err(corrupt("bad reference to an earlier id"));
                }
                self.at = at + 2;
                self.previous = Previous::None;
                let (start, end) = self.recent[place];
                self.recent[..=place].rotate_right(1);
                Ok(Value::Stored(start as usize, end as usize))
            }
            DELTA => self.difference(values),
            _ => {
                let (start, end) = self.stored(values, at)?;
                self.previous = Previous::Stored(start as u32, end as u32);
                if self.ids && is_id(&values[start..end]) {
                    self.known = (self.known + 1).min(RECENT);
                    self.recent[..self.known].rotate_right(1);
                    self.recent[0] = (start as u32, end as u32);
                }
                Ok(Value::Stored(start, end))
            }
        }
    }

    /// The stored value starting at `start`, which must end within the
    /// column; moves past its end.
    #[inline]
    fn stored(&mut self, values: &[u8], start: usize) -> Result<(usize, usize), ChunkError> {
        let end = start + value_len(values, start);
        if end >= self.end {
            return Err(corrupt("unterminated value"));
        }
        self.at = end + 1;
        Ok((start, end))
    }

    fn difference(&mut self, values: &[u8]) -> Result<Value, ChunkError> {
        let (delta, used) = values
            .get(self.at + 1..self.end)
            .and_then(varint::varint)
            .ok_or_else(|| corrupt("bad number difference"))?;
        let (last, width) = match self.previous {
            Previous::Number(number, width) => (number, width),
            Previous::Stored(start, end) => {
                let value = &values[start as usize..end as usize];
                let number = number(value)
                    .ok_or_else(|| corrupt("number difference after a value that is not one"))?;
                (number, value.len())
            }
            Previous::None => return Err(corrupt("number difference without a number before")),
        };
        let number = (last as i64)
            .checked_add(delta)
            .and_then(|number| u64::try_from(number).ok())
            .filter(|number| *number < POWERS_OF_TEN[width])
            .ok_or_else(|| corrupt("number difference out of range"))?;
        self.at += 1 + used;
        self.previous = Previous::Number(number, width);
        Ok(Value::Number(number, width))
    }
}

/// A value read from a column.
enum Value {
    /// Stored at this range of the variables section.
    Stored(usize, usize),
    /// A number rebuilt from a difference, and its width in digits.
    Number(u64, usize),
}

/// Writes `number` into `out` as decimal digits, zero-padded on the left to
/// fill it (`number` is below `10^out.len()`), two digits at a time.
fn write_digits(mut number: u64, out: &mut [u8]) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut end = out.len();
    while end >= 2 {
        let pair = (number % 100) as usize * 2;
        number /= 100;
        out[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (number % 10) as u8;
    }
}

/// `10^width` for every width a difference may have.
const POWERS_OF_TEN: [u64; super::MAX_DELTA_DIGITS + 1] = {
    let mut powers = [1u64; super::MAX_DELTA_DIGITS + 1];
    let mut width = 1;
    while width < powers.len() {
        powers[width] = powers[width - 1] * 10;
        width += 1;
    }
    powers
};

/// Length of the value at `at` of `values`: the bytes up to the next [`END`]
/// (one is always found: `values` ends with [`PADDING`] zero bytes).
#[inline]
fn value_len(values: &[u8], at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut len = 0;
    while let Some(word) = values.get(at + len..at + len + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let word = u64::from_le_bytes(bytes);
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return len + zeros.trailing_zeros() as usize / 8;
        }
        len += 8;
    }
    let rest = values.get(at + len..).unwrap_or_default();
    len + rest
        .iter()
        .position(|byte| *byte == END)
        .unwrap_or(rest.len())
}

/// The lines being rebuilt. Values are a few bytes long, so they are copied
/// [`PADDING`] bytes at a time (fixed-size copies the compiler inlines)
/// rather than through `memcpy`; bytes copied past a value's end are
/// overwritten by the next copy or cut off at the end.
struct Lines {
    bytes: Vec<u8>,
    len: usize,
    /// The block's logical size: its lines cannot be longer.
    limit: usize,
}

impl Lines {
    fn new(limit: usize) -> Lines {
        Lines {
            bytes: vec![0; limit.min(MAX_PREALLOCATION) + 2 * PADDING],
            len: 0,
            limit,
        }
    }

    /// Appends `source[from..from + len]`; `source` has [`PADDING`] bytes
    /// past the end of any range copied from it.
    #[inline(always)]
    fn copy(&mut self, source: &[u8], from: usize, len: usize) -> Result<(), ChunkError> {
        let end = self.reserve(len)?;
        let mut done = 0;
        while done < len {
            let piece = source
                .get(from + done..from + done + PADDING)
                .ok_or_else(|| corrupt("value runs past its section"))?;
            self.bytes[self.len + done..self.len + done + PADDING].copy_from_slice(piece);
            done += PADDING;
        }
        self.len = end;
        Ok(())
    }

    /// Makes room for `len` more bytes and the padding after them; returns
    /// where they end.
    #[inline(always)]
    fn reserve(&mut self, len: usize) -> Result<usize, ChunkError> {
        let end = self
            .len
            .checked_add(len)
            .filter(|end| *end <= self.limit)
            .ok_or_else(|| corrupt("lines exceed the block's size"))?;
        // Whole pieces write up to PADDING - 1 bytes past the end.
        if end + 2 * PADDING > self.bytes.len() {
            self.grow(end + 2 * PADDING);
        }
        Ok(end)
    }

    #[cold]
    fn grow(&mut self, needed: usize) {
        let grown = (self.bytes.len() * 2)
            .max(needed)
            .min(self.limit + 2 * PADDING);
        self.bytes.resize(grown, 0);
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.truncate(self.len);
        self.bytes
    }
}
