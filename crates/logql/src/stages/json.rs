//! The `json` parser (all fields, or extraction expressions) and `unpack`.
//!
//! The scanner mirrors `buger/jsonparser`, the library Loki uses: it is
//! lenient where jsonparser is (array contents are skipped unvalidated,
//! trailing bytes after the object are ignored) and reports the same error
//! messages where it fails.

use std::collections::HashMap;

use memchr::memchr;

use super::{append_sanitized, resolve_extracted, sanitize_key, LabelState, Need, NONE};
use super::{DUPLICATE_SUFFIX, ERR_JSON, INTERNER_CAP};
use crate::labelset::FxBuild;

/// jsonparser's errors, with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    MalformedJson,
    MalformedString,
    MalformedArray,
    MalformedObject,
    UnknownValueType,
    MalformedStringEscape,
}

impl JsonError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            JsonError::MalformedJson => "Malformed JSON error",
            JsonError::MalformedString => "Value is string, but can't find closing '\"' symbol",
            JsonError::MalformedArray => "Value is array, but can't find closing ']' symbol",
            JsonError::MalformedObject => {
                "Value looks like object, but can't find closing '}' symbol"
            }
            JsonError::UnknownValueType => "Unknown value type",
            JsonError::MalformedStringEscape => {
                "Encountered an invalid escape sequence in a string"
            }
        }
    }
}

/// Kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string; `true` when it contains a backslash (needs unescaping).
    String(bool),
    Number,
    True,
    False,
    Null,
    Object,
    Array,
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Index of the first non-whitespace byte at or after `from`.
#[inline]
fn next_token(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?
        .iter()
        .position(|&b| !is_ws(b))
        .map(|p| p + from)
}

/// From just after an opening quote: the index after the closing quote and
/// whether a backslash was seen.
#[inline]
fn string_end(data: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    let mut i = from;
    loop {
        let rel = memchr::memchr2(b'"', b'\\', data.get(i..)?)?;
        let at = i + rel;
        if data[at] == b'\\' {
            escaped = true;
            // Skip the escaped byte.
            i = at + 2;
            continue;
        }
        return Some((at + 1, escaped));
    }
}

/// From an opening symbol: the index after the matching closing symbol.
fn block_end(data: &[u8], from: usize, open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    let mut i = from;
    while i < data.len() {
        let b = data[i];
        if b == b'"' {
            let (end, _) = string_end(data, i + 1)?;
            i = end;
            continue;
        }
        if b == open {
            level += 1;
        } else if b == close {
            level = level.saturating_sub(1);
            if level == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

#[inline]
fn token_end(data: &[u8], from: usize) -> usize {
    data[from..]
        .iter()
        .position(|&b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .map_or(data.len(), |p| p + from)
}

/// A value located at `offset` (which must be a non-whitespace byte):
/// kind, content range (strings without quotes) and the offset after it.
pub(crate) fn get_type(
    data: &[u8],
    offset: usize,
) -> Result<(Kind, usize, usize, usize), JsonError> {
    match data[offset] {
        b'"' => {
            let (end, escaped) = string_end(data, offset + 1).ok_or(JsonError::MalformedString)?;
            Ok((Kind::String(escaped), offset + 1, end - 1, end))
        }
        b'[' => {
            let end = block_end(data, offset, b'[', b']').ok_or(JsonError::MalformedArray)?;
            Ok((Kind::Array, offset, end, end))
        }
        b'{' => {
            let end = block_end(data, offset, b'{', b'}').ok_or(JsonError::MalformedObject)?;
            Ok((Kind::Object, offset, end, end))
        }
        first => {
            let end = token_end(data, offset);
            let value = &data[offset..end];
            let kind = match first {
                b't' if value == b"true" => Kind::True,
                b'f' if value == b"false" => Kind::False,
                b'n' if value == b"null" => Kind::Null,
                b'0'..=b'9' | b'-' => Kind::Number,
                _ => return Err(JsonError::UnknownValueType),
            };
            Ok((kind, offset, end, end))
        }
    }
}

/// One object member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub key_start: usize,
    pub key_end: usize,
    pub key_escaped: bool,
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Iterates the members of an object like jsonparser's `ObjectEach`: a
/// member is yielded before the separator after it is checked, so a
/// truncated object yields its complete members and then the error.
pub(crate) struct ObjectIter<'d> {
    data: &'d [u8],
    off: usize,
    need_sep: bool,
    done: bool,
}

impl<'d> ObjectIter<'d> {
    pub(crate) fn new(data: &'d [u8]) -> Result<ObjectIter<'d>, JsonError> {
        let open = next_token(data, 0).ok_or(JsonError::MalformedObject)?;
        if data[open] != b'{' {
            return Err(JsonError::MalformedObject);
        }
        let first = next_token(data, open + 1).ok_or(JsonError::MalformedJson)?;
        Ok(ObjectIter {
            data,
            off: first,
            need_sep: false,
            done: data[first] == b'}',
        })
    }

    pub(crate) fn next_field(&mut self) -> Result<Option<Field>, JsonError> {
        let data = self.data;
        if self.need_sep {
            self.need_sep = false;
            let at = next_token(data, self.off).ok_or(JsonError::MalformedArray)?;
            match data[at] {
                b'}' => self.done = true,
                b',' => {
                    self.off = next_token(data, at + 1).ok_or(JsonError::MalformedArray)?;
                }
                _ => return Err(JsonError::MalformedObject),
            }
        }
        if self.done {
            return Ok(None);
        }
        match data[self.off] {
            b'"' => {}
            b'}' => {
                self.done = true;
                return Ok(None);
            }
            _ => return Err(JsonError::MalformedObject),
        }
        let key_start = self.off + 1;
        let (after_key, key_escaped) =
            string_end(data, key_start).ok_or(JsonError::MalformedJson)?;
        let colon = next_token(data, after_key).ok_or(JsonError::MalformedJson)?;
        if data[colon] != b':' {
            return Err(JsonError::MalformedJson);
        }
        let value = next_token(data, colon + 1).ok_or(JsonError::MalformedJson)?;
        let (kind, start, end, after) = get_type(data, value)?;
        self.off = after;
        self.need_sep = true;
        Ok(Some(Field {
            key_start,
            key_end: after_key - 1,
            key_escaped,
            kind,
            start,
            end,
        }))
    }
}

/// Unescapes JSON string content into `out`; false on an invalid escape.
/// Lone surrogates become U+FFFD.
pub(crate) fn unescape_into(raw: &[u8], out: &mut String) -> bool {
    let mut i = 0;
    while i < raw.len() {
        let Some(rel) = memchr(b'\\', &raw[i..]) else {
            out.push_str(&String::from_utf8_lossy(&raw[i..]));
            return true;
        };
        out.push_str(&String::from_utf8_lossy(&raw[i..i + rel]));
        i += rel;
        let Some(&escape) = raw.get(i + 1) else {
            return false;
        };
        i += 2;
        let c = match escape {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let Some(high) = hex4(raw, i) else {
                    return false;
                };
                i += 4;
                if (0xD800..0xDC00).contains(&high) {
                    if raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u') {
                        if let Some(low) = hex4(raw, i + 2) {
                            if (0xDC00..0xE000).contains(&low) {
                                i += 6;
                                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                continue;
                            }
                        }
                    }
                    '\u{fffd}'
                } else {
                    char::from_u32(high).unwrap_or('\u{fffd}')
                }
            }
            _ => return false,
        };
        out.push(c);
    }
    true
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

/// Appends `text[start..end]`, a range between ASCII delimiters of the line
/// (so on character boundaries; the lossy copy is only a fallback).
#[inline]
fn push_slice(vals: &mut String, text: &str, start: usize, end: usize) {
    match text.get(start..end) {
        Some(slice) => vals.push_str(slice),
        None => vals.push_str(&String::from_utf8_lossy(&text.as_bytes()[start..end])),
    }
}

/// Returns true if the text may contain U+FFFD (checked once per line, so
/// values of a line without one skip their own check).
#[inline]
pub(crate) fn may_have_replacement(text: &str) -> bool {
    memchr(0xEF, text.as_bytes()).is_some()
}

/// Writes the string value `text[start..end]` (without quotes) into the
/// arena, as Loki's `unescapeJSONString`: an invalid escape or a U+FFFD
/// character yields the empty string. `fffd`: the line may contain U+FFFD.
fn push_string_value(
    vals: &mut String,
    text: &str,
    start: usize,
    end: usize,
    escaped: bool,
    fffd: bool,
) {
    let at = vals.len();
    if escaped {
        if !unescape_into(&text.as_bytes()[start..end], vals) {
            vals.truncate(at);
            return;
        }
    } else {
        push_slice(vals, text, start, end);
    }
    if (escaped || fffd) && vals[at..].contains('\u{fffd}') {
        vals.truncate(at);
    }
}

/// Decodes a key (unescaping when needed).
fn key_text(data: &[u8], field: &Field, scratch: &mut String) -> Result<(), JsonError> {
    scratch.clear();
    let raw = &data[field.key_start..field.key_end];
    if field.key_escaped {
        if !unescape_into(raw, scratch) {
            return Err(JsonError::MalformedStringEscape);
        }
    } else {
        scratch.push_str(&String::from_utf8_lossy(raw));
    }
    Ok(())
}

/// Per-stream state of `| json` (every field).
pub(crate) struct JsonParser {
    need: Need,
    /// Raw top-level key → label id (`NONE`: skip).
    top: HashMap<Box<[u8]>, u32, FxBuild>,
    /// Sanitized nested name → label id.
    nested: HashMap<Box<[u8]>, u32, FxBuild>,
    prefix: Vec<u8>,
    name_buf: Vec<u8>,
    key_buf: String,
    sanitized: String,
    /// Stop once every needed label is found (only with a finite need
    /// and when nothing downstream reads `__error__`).
    early_stop: Option<usize>,
    found: usize,
    generation: u32,
    /// The current line may contain U+FFFD.
    fffd: bool,
}

enum Flow {
    Continue,
    Stop,
}

impl JsonParser {
    pub(crate) fn new(need: Need, early_stop: bool) -> JsonParser {
        let early_stop = match (&need, early_stop) {
            (Need::Some(names), true) => Some(names.len()),
            _ => None,
        };
        JsonParser {
            need,
            top: HashMap::default(),
            nested: HashMap::default(),
            prefix: Vec::new(),
            name_buf: Vec::new(),
            key_buf: String::new(),
            sanitized: String::new(),
            early_stop,
            found: 0,
            generation: 0,
            fffd: true,
        }
    }

    /// Returns true when the parser has nothing to extract (Loki's `NoLabels` hint).
    pub(crate) fn is_noop(&self) -> bool {
        self.early_stop == Some(0)
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        if self.is_noop() {
            return;
        }
        self.prefix.clear();
        self.found = 0;
        self.generation = state.next_generation();
        self.fffd = may_have_replacement(line);
        if let Err(err) = self.walk(line, state) {
            state.set_error(ERR_JSON, err.message());
        }
    }

    fn walk(&mut self, text: &str, state: &mut LabelState) -> Result<Flow, JsonError> {
        let data = text.as_bytes();
        let mut fields = ObjectIter::new(data)?;
        while let Some(field) = fields.next_field()? {
            match field.kind {
                Kind::Object => {
                    let saved = self.prefix.len();
                    key_text(data, &field, &mut self.key_buf)?;
                    if !self.prefix.is_empty() {
                        self.prefix.push(b'_');
                    }
                    append_sanitized(&mut self.prefix, &self.key_buf);
                    let flow = if self.need.wants_prefix(&self.prefix) {
                        match text.get(field.start..field.end) {
                            Some(inner) => self.walk(inner, state)?,
                            None => self.walk(
                                &String::from_utf8_lossy(&data[field.start..field.end]),
                                state,
                            )?,
                        }
                    } else {
                        Flow::Continue
                    };
                    self.prefix.truncate(saved);
                    if let Flow::Stop = flow {
                        return Ok(Flow::Stop);
                    }
                    continue;
                }
                Kind::Array | Kind::Null => continue,
                _ => {}
            }
            let id = self.label_id(data, &field, state)?;
            if id == NONE {
                continue;
            }
            let start = state.vals.len() as u32;
            match field.kind {
                Kind::String(escaped) => push_string_value(
                    &mut state.vals,
                    text,
                    field.start,
                    field.end,
                    escaped,
                    self.fffd,
                ),
                Kind::True => state.vals.push_str("true"),
                Kind::False => state.vals.push_str("false"),
                _ => push_slice(&mut state.vals, text, field.start, field.end),
            }
            let end = state.vals.len() as u32;
            state.set_range(id, start, end);
            if let Some(wanted) = self.early_stop {
                if state.mark(id, self.generation) {
                    self.found += 1;
                    if self.found >= wanted {
                        return Ok(Flow::Stop);
                    }
                }
            }
        }
        Ok(Flow::Continue)
    }

    fn label_id(
        &mut self,
        data: &[u8],
        field: &Field,
        state: &mut LabelState,
    ) -> Result<u32, JsonError> {
        let raw = &data[field.key_start..field.key_end];
        if self.prefix.is_empty() {
            if let Some(&id) = self.top.get(raw) {
                return Ok(id);
            }
            key_text(data, field, &mut self.key_buf)?;
            sanitize_key(&self.key_buf, &mut self.sanitized);
            let id = resolve_extracted(state, &self.sanitized, &self.need);
            if self.top.len() < INTERNER_CAP {
                self.top.insert(raw.into(), id);
            }
            return Ok(id);
        }
        key_text(data, field, &mut self.key_buf)?;
        self.name_buf.clear();
        self.name_buf.extend_from_slice(&self.prefix);
        self.name_buf.push(b'_');
        append_sanitized(&mut self.name_buf, &self.key_buf);
        if let Some(&id) = self.nested.get(self.name_buf.as_slice()) {
            return Ok(id);
        }
        let name = String::from_utf8_lossy(&self.name_buf).into_owned();
        let id = resolve_extracted(state, &name, &self.need);
        if self.nested.len() < INTERNER_CAP {
            self.nested.insert(self.name_buf.as_slice().into(), id);
        }
        Ok(id)
    }
}

/// One step of a json extraction path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathStep {
    Key(String),
    Index(usize),
}

/// Parses `a.b[0]["k-1"]` (Loki's jsonexpr).
pub(crate) fn parse_path(expr: &str) -> Result<Vec<PathStep>, String> {
    let bytes = expr.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    let mut expect_field = true;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                if expect_field {
                    return Err("syntax error: unexpected DOT".into());
                }
                expect_field = true;
                i += 1;
            }
            b'[' => {
                let after_open = &expr[i + 1..];
                let inner = after_open.trim_start();
                let mut at = i + 1 + (after_open.len() - inner.len());
                if inner.starts_with('"') {
                    let body = &expr[at + 1..];
                    let len = find_string_end(body)
                        .ok_or_else(|| "syntax error: invalid string".to_string())?;
                    let key = crate_unquote(body)
                        .ok_or_else(|| "syntax error: invalid string".to_string())?;
                    at += 1 + len;
                    let rest = expr[at..].trim_start();
                    if !rest.starts_with(']') {
                        return Err("syntax error: unexpected STRING, expecting RSB".into());
                    }
                    i = expr.len() - rest.len() + 1;
                    steps.push(PathStep::Key(key));
                } else {
                    let close = expr[at..].find(']').map(|p| p + at).ok_or_else(|| {
                        "syntax error: unexpected $end, expecting RSB".to_string()
                    })?;
                    let digits = expr[at..close].trim();
                    let index: usize = digits
                        .parse()
                        .map_err(|_| format!("syntax error: unexpected {digits}"))?;
                    steps.push(PathStep::Index(index));
                    i = close + 1;
                }
                expect_field = false;
            }
            _ => {
                if !expect_field {
                    return Err(format!(
                        "syntax error: unexpected {}",
                        &expr[i..]
                            .chars()
                            .next()
                            .map(String::from)
                            .unwrap_or_default()
                    ));
                }
                let end = expr[i..].find(['.', '[']).map_or(expr.len(), |p| p + i);
                let field = &expr[i..end];
                if field.contains([']', '"', ' ']) {
                    return Err(format!("syntax error: unexpected {field}"));
                }
                steps.push(PathStep::Key(field.to_string()));
                expect_field = false;
                i = end;
            }
        }
    }
    if steps.is_empty() || expect_field && !expr.is_empty() && expr.ends_with('.') {
        return Err("syntax error: unexpected $end".into());
    }
    Ok(steps)
}

/// Length up to and including the closing quote of a Go string body.
fn find_string_end(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Unquotes a Go string body that ends with `"` (possibly followed by more text).
fn crate_unquote(body_and_rest: &str) -> Option<String> {
    let end = find_string_end(body_and_rest)?;
    let body = &body_and_rest[..end - 1];
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            other => out.push(other),
        }
    }
    Some(out)
}

/// Finds the value at `path`: `Ok(None)` when absent.
pub(crate) fn lookup_path(
    data: &[u8],
    path: &[PathStep],
    scratch: &mut String,
) -> Result<Option<(Kind, usize, usize)>, JsonError> {
    let mut base = 0usize;
    let mut end = data.len();
    let mut found: Option<(Kind, usize, usize)> = None;
    for step in path {
        let slice = &data[base..end];
        let mut hit = None;
        match step {
            PathStep::Key(key) => {
                let first = next_token(slice, 0).ok_or(JsonError::MalformedJson)?;
                if slice[first] != b'{' {
                    return Ok(None);
                }
                let mut fields = ObjectIter::new(slice)?;
                while let Some(field) = fields.next_field()? {
                    key_text(slice, &field, scratch)?;
                    if scratch == key {
                        hit = Some((field.kind, base + field.start, base + field.end));
                        break;
                    }
                }
            }
            PathStep::Index(index) => {
                let first = next_token(slice, 0).ok_or(JsonError::MalformedJson)?;
                if slice[first] != b'[' {
                    return Ok(None);
                }
                let mut off = next_token(slice, first + 1).ok_or(JsonError::MalformedArray)?;
                let mut current = 0usize;
                if slice[off] != b']' {
                    loop {
                        let (kind, start, value_end, after) = get_type(slice, off)?;
                        if current == *index {
                            hit = Some((kind, base + start, base + value_end));
                            break;
                        }
                        current += 1;
                        let sep = next_token(slice, after).ok_or(JsonError::MalformedArray)?;
                        match slice[sep] {
                            b',' => {
                                off = next_token(slice, sep + 1).ok_or(JsonError::MalformedArray)?
                            }
                            b']' => break,
                            _ => return Err(JsonError::MalformedArray),
                        }
                    }
                }
            }
        }
        let Some((kind, start, value_end)) = hit else {
            return Ok(None);
        };
        found = Some((kind, start, value_end));
        base = start;
        end = value_end;
    }
    Ok(found)
}

/// Per-stream state of `| json a="x.y", …`.
pub(crate) struct JsonExprParser<'p> {
    exprs: &'p [(String, Vec<PathStep>)],
    ids: Vec<u32>,
    scratch: String,
}

impl<'p> JsonExprParser<'p> {
    pub(crate) fn new(exprs: &'p [(String, Vec<PathStep>)], state: &mut LabelState) -> Self {
        let ids = exprs
            .iter()
            .map(|(name, _)| {
                if state.base_has_name(name) {
                    state.intern(&format!("{name}{DUPLICATE_SUFFIX}"))
                } else {
                    state.intern(name)
                }
            })
            .collect();
        JsonExprParser {
            exprs,
            ids,
            scratch: String::new(),
        }
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        let data = line.as_bytes();
        let Some(&first) = data.first() else {
            return;
        };
        if !matches!(first, b'"' | b'{' | b'[') {
            state.set_err(ERR_JSON);
            return;
        }
        for (index, (name, path)) in self.exprs.iter().enumerate() {
            let id = self.ids[index];
            match lookup_path(data, path, &mut self.scratch) {
                Ok(Some((kind, start, end))) => {
                    let vstart = state.vals.len() as u32;
                    match kind {
                        Kind::Null => {}
                        Kind::String(escaped) => {
                            push_string_value(&mut state.vals, line, start, end, escaped, true)
                        }
                        _ => push_slice(&mut state.vals, line, start, end),
                    }
                    let vend = state.vals.len() as u32;
                    state.set_range(id, vstart, vend);
                }
                Ok(None) => {
                    if !state.base_has_name(name) && state.get(id).is_none() {
                        state.set(id, "");
                    }
                }
                Err(_) => {
                    state.set_err(ERR_JSON);
                    if !state.base_has_name(name) && state.get(id).is_none() {
                        state.set(id, "");
                    }
                }
            }
        }
    }
}

/// Loki's `errUnexpectedJSONObject`.
const NOT_AN_OBJECT: &str = "expecting json object(6), but it is not";

/// Per-stream state of `| unpack`.
pub(crate) struct UnpackParser {
    need: Need,
    keys: HashMap<Box<[u8]>, u32, FxBuild>,
    key_buf: String,
    pending: Vec<(u32, u32, u32)>,
}

impl UnpackParser {
    pub(crate) fn new(need: Need) -> UnpackParser {
        UnpackParser {
            need,
            keys: HashMap::default(),
            key_buf: String::new(),
            pending: Vec::new(),
        }
    }

    /// Runs on `line`; when the object has an `_entry` string, its value is
    /// written to `new_line` and true is returned.
    pub(crate) fn process(
        &mut self,
        line: &str,
        state: &mut LabelState,
        new_line: &mut String,
    ) -> bool {
        let data = line.as_bytes();
        if data.is_empty() {
            return false;
        }
        if data[0] != b'{' {
            state.set_error(ERR_JSON, NOT_AN_OBJECT);
            return false;
        }
        self.pending.clear();
        match self.scan(line, state, new_line) {
            Ok(packed) => {
                if packed {
                    for &(id, start, end) in &self.pending {
                        state.set_range(id, start, end);
                    }
                }
                packed
            }
            Err(err) => {
                state.set_error(ERR_JSON, err.message());
                false
            }
        }
    }

    fn scan(
        &mut self,
        line: &str,
        state: &mut LabelState,
        new_line: &mut String,
    ) -> Result<bool, JsonError> {
        let data = line.as_bytes();
        let mut packed = false;
        let mut fields = ObjectIter::new(data)?;
        while let Some(field) = fields.next_field()? {
            let Kind::String(escaped) = field.kind else {
                continue;
            };
            let raw_key = &data[field.key_start..field.key_end];
            if raw_key == b"_entry" {
                new_line.clear();
                let raw = &data[field.start..field.end];
                if escaped {
                    if !unescape_into(raw, new_line) {
                        return Err(JsonError::MalformedStringEscape);
                    }
                } else {
                    new_line.push_str(&String::from_utf8_lossy(raw));
                }
                packed = true;
                continue;
            }
            let id = match self.keys.get(raw_key) {
                Some(&id) => id,
                None => {
                    key_text(data, &field, &mut self.key_buf)?;
                    let mut name = self.key_buf.clone();
                    if state.base_has_name(&name) {
                        name.push_str(DUPLICATE_SUFFIX);
                    }
                    let id = if self.need.wants(&name) && !name.is_empty() {
                        state.intern(&name)
                    } else {
                        NONE
                    };
                    if self.keys.len() < INTERNER_CAP {
                        self.keys.insert(raw_key.into(), id);
                    }
                    id
                }
            };
            if id == NONE {
                continue;
            }
            let start = state.vals.len() as u32;
            push_string_value(&mut state.vals, line, field.start, field.end, escaped, true);
            self.pending.push((id, start, state.vals.len() as u32));
        }
        Ok(packed)
    }
}

/// A parsed JSON document (for the `fromJson` template function).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonValue {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<JsonValue>),
    Object(Vec<(String, JsonValue)>),
}

/// Strictly parses a whole JSON document.
pub(crate) fn parse_document(text: &str) -> Option<JsonValue> {
    let data = text.as_bytes();
    let (value, end) = parse_value(data, next_token(data, 0)?, 0)?;
    match next_token(data, end) {
        None => Some(value),
        Some(_) => None,
    }
}

fn parse_value(data: &[u8], at: usize, depth: usize) -> Option<(JsonValue, usize)> {
    if depth > 256 {
        return None;
    }
    match *data.get(at)? {
        b'{' => {
            let mut members = Vec::new();
            let mut off = next_token(data, at + 1)?;
            if data[off] == b'}' {
                return Some((JsonValue::Object(members), off + 1));
            }
            loop {
                if data[off] != b'"' {
                    return None;
                }
                let (key, after) = parse_string(data, off)?;
                let colon = next_token(data, after)?;
                if data[colon] != b':' {
                    return None;
                }
                let (value, after) = parse_value(data, next_token(data, colon + 1)?, depth + 1)?;
                members.retain(|(k, _): &(String, JsonValue)| *k != key);
                members.push((key, value));
                let sep = next_token(data, after)?;
                match data[sep] {
                    b',' => off = next_token(data, sep + 1)?,
                    b'}' => return Some((JsonValue::Object(members), sep + 1)),
                    _ => return None,
                }
            }
        }
        b'[' => {
            let mut items = Vec::new();
            let mut off = next_token(data, at + 1)?;
            if data[off] == b']' {
                return Some((JsonValue::Array(items), off + 1));
            }
            loop {
                let (value, after) = parse_value(data, off, depth + 1)?;
                items.push(value);
                let sep = next_token(data, after)?;
                match data[sep] {
                    b',' => off = next_token(data, sep + 1)?,
                    b']' => return Some((JsonValue::Array(items), sep + 1)),
                    _ => return None,
                }
            }
        }
        b'"' => {
            let (text, after) = parse_string(data, at)?;
            Some((JsonValue::String(text), after))
        }
        _ => {
            let end = token_end(data, at);
            let token = std::str::from_utf8(&data[at..end]).ok()?;
            let value = match token {
                "true" => JsonValue::Bool(true),
                "false" => JsonValue::Bool(false),
                "null" => JsonValue::Null,
                number => {
                    let valid = number.bytes().all(|b| {
                        b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                    });
                    if !valid {
                        return None;
                    }
                    JsonValue::Number(number.parse().ok()?)
                }
            };
            Some((value, end))
        }
    }
}

fn parse_string(data: &[u8], at: usize) -> Option<(String, usize)> {
    let (end, escaped) = string_end(data, at + 1)?;
    let raw = &data[at + 1..end - 1];
    let mut out = String::new();
    if escaped {
        if !unescape_into(raw, &mut out) {
            return None;
        }
    } else {
        out.push_str(std::str::from_utf8(raw).ok()?);
    }
    Some((out, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("a.b[0]").expect("valid"),
            vec![
                PathStep::Key("a".into()),
                PathStep::Key("b".into()),
                PathStep::Index(0)
            ]
        );
        assert_eq!(
            parse_path(r#"m["k-1"]"#).expect("valid"),
            vec![PathStep::Key("m".into()), PathStep::Key("k-1".into())]
        );
        assert_eq!(
            parse_path(r#"["a.b"].c"#).expect("valid"),
            vec![PathStep::Key("a.b".into()), PathStep::Key("c".into())]
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[x]").is_err());
        assert!(parse_path("").is_err());
    }

    #[test]
    fn lookup() {
        let data = br#"{"a":{"b":[1,{"c":"x\"y"}]},"m":{"k-1":true},"n":null}"#;
        let mut s = String::new();
        let path = parse_path("a.b[1].c").expect("valid");
        let (kind, start, end) = lookup_path(data, &path, &mut s)
            .expect("ok")
            .expect("found");
        assert_eq!(kind, Kind::String(true));
        assert_eq!(&data[start..end], br#"x\"y"#);
        let path = parse_path(r#"m["k-1"]"#).expect("valid");
        let (kind, _, _) = lookup_path(data, &path, &mut s)
            .expect("ok")
            .expect("found");
        assert_eq!(kind, Kind::True);
        let path = parse_path("a.zz").expect("valid");
        assert!(lookup_path(data, &path, &mut s).expect("ok").is_none());
    }

    #[test]
    fn documents() {
        assert_eq!(
            parse_document(r#"{"a":[1,"x",null,true]}"#),
            Some(JsonValue::Object(vec![(
                "a".into(),
                JsonValue::Array(vec![
                    JsonValue::Number(1.0),
                    JsonValue::String("x".into()),
                    JsonValue::Null,
                    JsonValue::Bool(true)
                ])
            )]))
        );
        assert_eq!(parse_document("{"), None);
        assert_eq!(parse_document("1 2"), None);
    }
}
