//! Writing a version-3 block: splitting lines into templates and variables
//! and laying out the structure and variables sections.

use super::hashing::{self, SeededMap};
use super::{is_id, number, ColumnNumbers, CLOSE, DELTA, END, ESCAPE, MARKER, RECENT, REFERENCE};
use crate::block::EntryRef;
use crate::varint;

/// Byte classes for the splitter.
const OTHER: u8 = 0;
const LETTER: u8 = 1;
const DIGIT: u8 = 2;
const SPECIAL: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut classes = [OTHER; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        classes[byte] = if b.is_ascii_digit() {
            DIGIT
        } else if b.is_ascii_alphabetic() {
            LETTER
        } else if b == MARKER || b == ESCAPE {
            SPECIAL
        } else {
            OTHER
        };
        byte += 1;
    }
    classes
};

/// One template of the block being built.
#[derive(Debug, Clone)]
struct Template {
    /// Its key, in [`TemplateScratch::keys`].
    key: (usize, usize),
    /// Its variables' columns, in [`TemplateScratch::template_columns`].
    columns: (usize, usize),
    /// The next template whose key has the same hash.
    next: Option<u32>,
}

/// A variable column being built.
#[derive(Debug, Clone, Default)]
struct Column {
    /// The column's values, as ranges of the block text.
    values: Vec<(usize, usize)>,
    /// The previous value as a number, and its width.
    previous: Option<(u64, usize)>,
    /// Numbers after a number, and how many of those are of the same width
    /// and within [`CLOSE`] of it.
    pairs: usize,
    close_pairs: usize,
    /// The last distinct ids, most recent first, as ranges of the block text.
    recent: Vec<(usize, usize)>,
    /// Whether the column holds ids (so a reader must track them).
    references: bool,
}

impl Column {
    fn clear(&mut self) {
        self.values.clear();
        self.previous = None;
        self.pairs = 0;
        self.close_pairs = 0;
        self.recent.clear();
        self.references = false;
    }

    fn push(&mut self, text: &[u8], (start, end): (usize, usize)) {
        self.values.push((start, end));
        let number = number(&text[start..end]).map(|number| (number, end - start));
        if let (Some((number, width)), Some((last, last_width))) = (number, self.previous) {
            self.pairs += 1;
            if width == last_width && number.abs_diff(last) <= CLOSE {
                self.close_pairs += 1;
            }
        }
        self.previous = number;
    }

    /// Appends the column's values to `out` in their stored forms (see the
    /// module documentation of `v3`).
    fn encode(&mut self, text: &[u8], out: &mut Vec<u8>) {
        // Differences only where most numbers are close: elsewhere (sizes,
        // durations) the digits compress better than differences of them.
        let deltas = self.close_pairs * 2 > self.pairs;
        let mut previous: Option<(u64, usize)> = None;
        for &(start, end) in &self.values {
            let value = &text[start..end];
            // Only a column of differences needs its numbers' values.
            let number = deltas
                .then(|| number(value).map(|number| (number, value.len())))
                .flatten();
            let last = std::mem::replace(&mut previous, number);
            if let (true, Some((number, width)), Some((last, last_width))) = (deltas, number, last)
            {
                if width == last_width {
                    out.push(DELTA);
                    varint::put_varint(out, number as i64 - last as i64);
                    continue;
                }
            }
            if is_id(value) {
                let place = self
                    .recent
                    .iter()
                    .position(|(from, to)| text[*from..*to] == *value);
                if let Some(place) = place {
                    self.references = true;
                    out.extend_from_slice(&[REFERENCE, place as u8]);
                    self.recent[..=place].rotate_right(1);
                    continue;
                }
                if self.recent.len() == RECENT {
                    self.recent.pop();
                }
                self.recent.insert(0, (start, end));
                self.references = true;
            }
            out.extend_from_slice(value);
            out.push(END);
        }
    }
}

/// Buffers reused between block cuts.
#[derive(Debug, Clone, Default)]
pub(crate) struct TemplateScratch {
    /// The current line's key.
    key: Vec<u8>,
    /// The current line's variables, as ranges of the block text.
    variables: Vec<(usize, usize)>,
    /// The keys of the block's templates, back to back.
    keys: Vec<u8>,
    templates: Vec<Template>,
    by_hash: SeededMap<u32>,
    /// The columns of each template's variables, back to back.
    template_columns: Vec<u32>,
    column_numbers: ColumnNumbers,
    columns: Vec<Column>,
    /// Columns in use by this block (a prefix of `columns`).
    used: usize,
    /// Template number of each entry, as uvarints.
    template_numbers: Vec<u8>,
    structure: Vec<u8>,
    variables_section: Vec<u8>,
}

impl TemplateScratch {
    /// Splits the lines of `entries` (in `text`) and returns the block's
    /// uncompressed structure and variables sections.
    pub(crate) fn split_block(&mut self, text: &[u8], entries: &[EntryRef]) -> (&[u8], &[u8]) {
        self.reset();
        for entry in entries {
            self.split(text, entry.start, entry.end());
            let number = self.template();
            varint::put_uvarint(&mut self.template_numbers, u64::from(number));
            let (from, to) = self.templates[number as usize].columns;
            for (column, variable) in self.template_columns[from..to].iter().zip(&self.variables) {
                self.columns[*column as usize].push(text, *variable);
            }
        }
        let structure = &mut self.structure;
        varint::put_uvarint(structure, self.templates.len() as u64);
        for template in &self.templates {
            let key = &self.keys[template.key.0..template.key.1];
            varint::put_uvarint(structure, key.len() as u64);
            structure.extend_from_slice(key);
        }
        structure.extend_from_slice(&self.template_numbers);
        for column in &mut self.columns[..self.used] {
            let start = self.variables_section.len();
            column.encode(text, &mut self.variables_section);
            let len = (self.variables_section.len() - start) as u64;
            varint::put_uvarint(structure, len << 1 | u64::from(column.references));
        }
        (&self.structure, &self.variables_section)
    }

    fn reset(&mut self) {
        self.keys.clear();
        self.templates.clear();
        self.by_hash.clear();
        self.template_columns.clear();
        self.column_numbers.clear();
        for column in &mut self.columns[..self.used] {
            column.clear();
        }
        self.used = 0;
        self.template_numbers.clear();
        self.structure.clear();
        self.variables_section.clear();
    }

    /// Splits the line at `start..end` of `text` into `key` and `variables`.
    fn split(&mut self, text: &[u8], start: usize, end: usize) {
        self.key.clear();
        self.variables.clear();
        let mut literal = start;
        let mut at = start;
        while at < end {
            let class = CLASSES[usize::from(text[at])];
            if class == OTHER {
                at += 1;
                continue;
            }
            if class == SPECIAL {
                self.key.extend_from_slice(&text[literal..at]);
                self.key.extend_from_slice(&[ESCAPE, text[at]]);
                at += 1;
                literal = at;
                continue;
            }
            let run = at;
            let mut seen = class;
            at += 1;
            while at < end {
                let class = CLASSES[usize::from(text[at])];
                if class & (LETTER | DIGIT) == 0 {
                    break;
                }
                seen |= class;
                at += 1;
            }
            if seen & DIGIT != 0 {
                self.key.extend_from_slice(&text[literal..run]);
                self.key.push(MARKER);
                self.variables.push((run, at));
                literal = at;
            }
        }
        self.key.extend_from_slice(&text[literal..end]);
    }

    /// Returns the number of the template in `key`, adding it if new.
    fn template(&mut self) -> u32 {
        let hash = hashing::hash(&self.key);
        let mut candidate = self.by_hash.get(&hash).copied();
        while let Some(number) = candidate {
            let template = &self.templates[number as usize];
            if self.keys[template.key.0..template.key.1] == self.key[..] {
                return number;
            }
            candidate = template.next;
        }
        let number = self.templates.len() as u32;
        let next = self.by_hash.insert(hash, number);
        let key_start = self.keys.len();
        self.keys.extend_from_slice(&self.key);
        let columns_start = self.template_columns.len();
        let mut at = 0;
        while at < self.key.len() {
            match self.key[at] {
                ESCAPE => at += 1,
                MARKER => {
                    let column = self.column_numbers.of(&self.key[..at]);
                    self.template_columns.push(column);
                }
                _ => {}
            }
            at += 1;
        }
        self.used = self.column_numbers.len();
        if self.columns.len() < self.used {
            self.columns.resize_with(self.used, Column::default);
        }
        self.templates.push(Template {
            key: (key_start, self.keys.len()),
            columns: (columns_start, self.template_columns.len()),
            next,
        });
        number
    }
}
