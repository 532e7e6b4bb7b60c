//! Building blocks of the log pipeline: the per-line label state (Loki's
//! `LabelsBuilder`), label-name sanitizing, and the parser stages.

use std::collections::HashMap;

use crate::labelset::{FxBuild, LabelSet};

pub(crate) mod json;
pub(crate) mod logfmt;
pub(crate) mod text;

/// Marker for "no slot" in per-name tables.
pub(crate) const NONE: u32 = u32::MAX;

/// The `__error__` label.
pub const ERROR_LABEL: &str = "__error__";
/// The `__error_details__` label.
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// `__error__` value of the json and unpack parsers.
pub const ERR_JSON: &str = "JSONParserErr";
/// `__error__` value of the logfmt parser.
pub const ERR_LOGFMT: &str = "LogfmtParserErr";
/// `__error__` value of numeric/duration/bytes label filters.
pub const ERR_LABEL_FILTER: &str = "LabelFilterErr";
/// `__error__` value of `line_format` / `label_format` failures.
pub const ERR_TEMPLATE_FORMAT: &str = "TemplateFormatErr";
/// `__error__` value of unwrap conversions (used by the metric engine).
pub const ERR_SAMPLE_EXTRACTION: &str = "SampleExtractionErr";

/// Suffix of extracted labels whose name clashes with a stream label.
pub(crate) const DUPLICATE_SUFFIX: &str = "_extracted";

/// Upper bound of the per-stage key interners: beyond it, new keys are
/// resolved without being cached (protects against unbounded key sets).
pub(crate) const INTERNER_CAP: usize = 4096;

/// A visible label of a [`LabelState`], by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A stream label: (name id, index in base).
    Base(u32, u32),
    /// A set label: (name id, value range in the arena).
    Added(u32, u32, u32),
    /// `__error__`.
    Err,
    /// `__error_details__`.
    Details,
}

/// Which labels a stage must produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// Every label.
    All,
    /// Only these names (after `_extracted` suffixing).
    Some(Vec<String>),
}

impl Need {
    pub(crate) fn wants(&self, name: &str) -> bool {
        match self {
            Need::All => true,
            Need::Some(names) => names.iter().any(|n| n == name),
        }
    }

    pub(crate) fn wants_prefix(&self, prefix: &[u8]) -> bool {
        match self {
            Need::All => true,
            Need::Some(names) => names.iter().any(|n| n.as_bytes().starts_with(prefix)),
        }
    }
}

/// The labels of one entry while stages run: the stream labels (`base`),
/// labels set by stages (`add`), deleted names, and the error pair. Mirrors
/// Loki's `LabelsBuilder`: a set label hides the stream label of the same
/// name, a deleted name hides the stream label, `Set` after `Del` re-adds.
///
/// Names are interned per stream pipeline; values of set labels live in one
/// reusable string arena, so steady-state processing does not allocate.
pub(crate) struct LabelState {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, FxBuild>,
    base_slot: Vec<u32>,
    add_slot: Vec<u32>,
    del_flag: Vec<bool>,
    stamp: Vec<u32>,
    generation: u32,
    base: Vec<(u32, Box<str>)>,
    add: Vec<(u32, u32, u32)>,
    del: Vec<u32>,
    /// Arena of the values of `add`.
    pub(crate) vals: String,
    err: Option<&'static str>,
    details: Option<(u32, u32)>,
}

impl LabelState {
    pub(crate) fn new(stream: &LabelSet) -> LabelState {
        let mut state = LabelState {
            names: Vec::new(),
            index: HashMap::default(),
            base_slot: Vec::new(),
            add_slot: Vec::new(),
            del_flag: Vec::new(),
            stamp: Vec::new(),
            generation: 0,
            base: Vec::with_capacity(stream.len()),
            add: Vec::new(),
            del: Vec::new(),
            vals: String::new(),
            err: None,
            details: None,
        };
        for (name, value) in stream.iter() {
            let id = state.intern(name);
            state.base_slot[id as usize] = state.base.len() as u32;
            state.base.push((id, value.into()));
        }
        state
    }

    /// The id of a name, creating it.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), id);
        self.base_slot.push(NONE);
        self.add_slot.push(NONE);
        self.del_flag.push(false);
        self.stamp.push(0);
        id
    }

    /// The id of a name if it was interned.
    pub(crate) fn lookup(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// Clears everything but the stream labels.
    pub(crate) fn reset(&mut self) {
        for &(id, _, _) in &self.add {
            self.add_slot[id as usize] = NONE;
        }
        self.add.clear();
        for &id in &self.del {
            self.del_flag[id as usize] = false;
        }
        self.del.clear();
        self.vals.clear();
        self.err = None;
        self.details = None;
    }

    /// Returns true if a stream label has this name (deleted or not), Loki's `BaseHas`.
    pub(crate) fn base_has(&self, id: u32) -> bool {
        self.base_slot[id as usize] != NONE
    }

    /// Returns true if a stream label has this name.
    pub(crate) fn base_has_name(&self, name: &str) -> bool {
        self.lookup(name).is_some_and(|id| self.base_has(id))
    }

    /// Sets a label to a value copied into the arena.
    pub(crate) fn set(&mut self, id: u32, value: &str) {
        let start = self.vals.len() as u32;
        self.vals.push_str(value);
        self.set_range(id, start, self.vals.len() as u32);
    }

    /// Sets a label to `vals[start..end]` (already written into the arena).
    pub(crate) fn set_range(&mut self, id: u32, start: u32, end: u32) {
        let slot = self.add_slot[id as usize];
        if slot == NONE {
            self.add_slot[id as usize] = self.add.len() as u32;
            self.add.push((id, start, end));
        } else {
            self.add[slot as usize] = (id, start, end);
        }
    }

    /// Removes a label (Loki's `Del`: from the set labels, and hides the stream label).
    pub(crate) fn del(&mut self, id: u32) {
        let slot = self.add_slot[id as usize];
        if slot != NONE {
            self.add_slot[id as usize] = NONE;
            self.add.swap_remove(slot as usize);
            if let Some(&(moved, _, _)) = self.add.get(slot as usize) {
                self.add_slot[moved as usize] = slot;
            }
        }
        if !self.del_flag[id as usize] {
            self.del_flag[id as usize] = true;
            self.del.push(id);
        }
    }

    /// The value of a label (not the error labels).
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        let slot = self.add_slot[id as usize];
        if slot != NONE {
            let (_, start, end) = self.add[slot as usize];
            return Some(&self.vals[start as usize..end as usize]);
        }
        if self.del_flag[id as usize] {
            return None;
        }
        let slot = self.base_slot[id as usize];
        (slot != NONE).then(|| &*self.base[slot as usize].1)
    }

    /// The value of a label by name, including `__error__` and
    /// `__error_details__` (what templates and string filters see).
    pub(crate) fn get_by_name(&self, name: &str) -> Option<&str> {
        match name {
            ERROR_LABEL => self.err,
            ERROR_DETAILS_LABEL => self.details(),
            _ => self.lookup(name).and_then(|id| self.get(id)),
        }
    }

    pub(crate) fn has_err(&self) -> bool {
        self.err.is_some()
    }

    pub(crate) fn err(&self) -> Option<&'static str> {
        self.err
    }

    pub(crate) fn set_err(&mut self, kind: &'static str) {
        self.err = Some(kind);
    }

    pub(crate) fn reset_err(&mut self) {
        self.err = None;
    }

    pub(crate) fn details(&self) -> Option<&str> {
        self.details
            .map(|(start, end)| &self.vals[start as usize..end as usize])
    }

    pub(crate) fn set_details(&mut self, details: &str) {
        if details.is_empty() {
            self.details = None;
            return;
        }
        let start = self.vals.len() as u32;
        self.vals.push_str(details);
        self.details = Some((start, self.vals.len() as u32));
    }

    pub(crate) fn reset_details(&mut self) {
        self.details = None;
    }

    /// Sets the error and its details (parsers overwrite earlier errors).
    pub(crate) fn set_error(&mut self, kind: &'static str, details: &str) {
        self.set_err(kind);
        self.set_details(details);
    }

    /// Returns true when the labels are exactly the stream labels.
    pub(crate) fn is_unchanged(&self) -> bool {
        self.add.is_empty() && self.del.is_empty() && self.err.is_none() && self.details.is_none()
    }

    /// Starts a marking round (parsers' "all required labels found" check).
    pub(crate) fn next_generation(&mut self) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.generation
    }

    /// Marks a name in the current round; true if it was not marked yet.
    pub(crate) fn mark(&mut self, id: u32, generation: u32) -> bool {
        let stamp = &mut self.stamp[id as usize];
        if *stamp == generation {
            false
        } else {
            *stamp = generation;
            true
        }
    }

    /// Every visible label (unsorted), including the error pair.
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&str, &str)) {
        for (id, value) in &self.base {
            if self.add_slot[*id as usize] == NONE && !self.del_flag[*id as usize] {
                visit(&self.names[*id as usize], value);
            }
        }
        for &(id, start, end) in &self.add {
            visit(
                &self.names[id as usize],
                &self.vals[start as usize..end as usize],
            );
        }
        if let Some(err) = self.err {
            visit(ERROR_LABEL, err);
        }
        if let Some(details) = self.details() {
            visit(ERROR_DETAILS_LABEL, details);
        }
    }

    /// Every visible label as index entries into this state (see
    /// [`LabelState::entry`]), unsorted, error pair included.
    pub(crate) fn entries(&self, out: &mut Vec<Entry>) {
        out.clear();
        for (index, (id, _)) in self.base.iter().enumerate() {
            if self.add_slot[*id as usize] == NONE && !self.del_flag[*id as usize] {
                out.push(Entry::Base(*id, index as u32));
            }
        }
        out.extend(
            self.add
                .iter()
                .map(|&(id, start, end)| Entry::Added(id, start, end)),
        );
        if self.err.is_some() {
            out.push(Entry::Err);
        }
        if self.details.is_some() {
            out.push(Entry::Details);
        }
    }

    /// The name and value of an entry.
    #[inline]
    pub(crate) fn entry(&self, entry: Entry) -> (&str, &str) {
        match entry {
            Entry::Base(id, index) => (&self.names[id as usize], &self.base[index as usize].1),
            Entry::Added(id, start, end) => (
                &self.names[id as usize],
                &self.vals[start as usize..end as usize],
            ),
            Entry::Err => (ERROR_LABEL, self.err.unwrap_or("")),
            Entry::Details => (ERROR_DETAILS_LABEL, self.details().unwrap_or("")),
        }
    }

    /// Names of every visible label except the error pair (for `keep`).
    pub(crate) fn visible_ids(&self, out: &mut Vec<u32>) {
        out.clear();
        for (id, _) in &self.base {
            if self.add_slot[*id as usize] == NONE && !self.del_flag[*id as usize] {
                out.push(*id);
            }
        }
        out.extend(self.add.iter().map(|&(id, _, _)| id));
    }
}

/// Loki's `sanitizeLabelKey(key, true)`: trims, replaces every character
/// outside `[A-Za-z0-9_]` with `_`, prefixes a leading digit with `_`.
pub(crate) fn sanitize_key(key: &str, out: &mut String) {
    out.clear();
    let key = key.trim();
    if key.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// Loki's `appendSanitized`: appends the sanitized key (trimmed, one `_`
/// per invalid character, a `_` before a leading digit only when `out` is empty).
pub(crate) fn append_sanitized(out: &mut Vec<u8>, key: &str) {
    let key = key.trim();
    if key.is_empty() {
        return;
    }
    if out.is_empty() && key.as_bytes()[0].is_ascii_digit() {
        out.push(b'_');
    }
    for c in key.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c as u8);
        } else {
            out.push(b'_');
        }
    }
}

/// Resolves an extracted key to a label id: `_extracted` suffix when a
/// stream label has the name, `NONE` when the stage need not produce it.
pub(crate) fn resolve_extracted(state: &mut LabelState, sanitized: &str, need: &Need) -> u32 {
    if sanitized.is_empty() {
        return NONE;
    }
    if state.base_has_name(sanitized) {
        let suffixed = format!("{sanitized}{DUPLICATE_SUFFIX}");
        if !need.wants(&suffixed) {
            return NONE;
        }
        return state.intern(&suffixed);
    }
    if !need.wants(sanitized) {
        return NONE;
    }
    state.intern(sanitized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize() {
        let mut out = String::new();
        for (input, want) in [
            ("1num", "_1num"),
            ("a-b", "a_b"),
            (" a.b ", "a_b"),
            ("héllo", "h_llo"),
            ("ok_9", "ok_9"),
            ("", ""),
        ] {
            sanitize_key(input, &mut out);
            assert_eq!(out, want, "{input}");
        }
        let mut buf = b"a".to_vec();
        buf.push(b'_');
        append_sanitized(&mut buf, "1x-y");
        assert_eq!(buf, b"a_1x_y");
    }

    #[test]
    fn builder_semantics() {
        let stream = LabelSet::from_iter([("app", "x"), ("env", "prod")]);
        let mut state = LabelState::new(&stream);
        let app = state.lookup("app").expect("interned");
        let lvl = state.intern("level");
        assert!(state.is_unchanged());
        state.set(lvl, "info");
        assert_eq!(state.get(lvl), Some("info"));
        state.del(app);
        assert_eq!(state.get(app), None);
        state.set(app, "y");
        assert_eq!(state.get(app), Some("y"));
        state.del(lvl);
        assert_eq!(state.get(lvl), None);
        state.reset();
        assert_eq!(state.get(app), Some("x"));
        assert!(state.is_unchanged());
    }
}
