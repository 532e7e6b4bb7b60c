//! The `logfmt` parser: Loki's decoder (adapted go-logfmt), non-strict by
//! default since 2.9 (malformed pairs are skipped), `--strict` stops at the
//! first error and sets `LogfmtParserErr`, `--keep-empty` keeps bare keys.

use std::collections::HashMap;

use super::json::may_have_replacement;
use super::{resolve_extracted, sanitize_key, LabelState, Need, NONE};
use super::{DUPLICATE_SUFFIX, ERR_LOGFMT, INTERNER_CAP};
use crate::labelset::FxBuild;

/// Where the current value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    None,
    Slice(usize, usize),
    /// Unquoted into the decoder's buffer.
    Buf,
}

/// Loki's logfmt decoder over one line.
pub(crate) struct Decoder {
    pos: usize,
    key: Option<(usize, usize)>,
    value: Val,
    buf: String,
    err: Option<(usize, String)>,
    /// The line may contain U+FFFD (keys and values that are slices of
    /// the line skip their own check when it does not).
    fffd: bool,
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            pos: 0,
            key: None,
            value: Val::None,
            buf: String::new(),
            err: None,
            fffd: true,
        }
    }

    fn reset(&mut self, line: &str) {
        self.pos = 0;
        self.err = None;
        self.fffd = may_have_replacement(line);
    }

    /// Returns true if the current value contains U+FFFD.
    fn value_has_replacement(&self, value: &str) -> bool {
        (self.fffd || self.value == Val::Buf) && value.contains('\u{fffd}')
    }

    fn eol(&self, line: &[u8]) -> bool {
        self.pos >= line.len()
    }

    fn key<'l>(&self, line: &'l [u8]) -> &'l [u8] {
        self.key.map_or(&[][..], |(s, e)| &line[s..e])
    }

    fn value<'a>(&'a self, line: &'a str) -> &'a str {
        match self.value {
            Val::None => "",
            Val::Slice(s, e) => &line[s..e],
            Val::Buf => &self.buf,
        }
    }

    fn unexpected(&mut self, c: u8) {
        let shown = match c {
            b'"' => "'\"'".to_string(),
            other => format!("'{}'", other as char),
        };
        self.err = Some((self.pos + 1, format!("unexpected {shown}")));
    }

    fn syntax(&mut self, msg: &str) {
        self.err = Some((self.pos + 1, msg.to_string()));
    }

    fn error_message(&self) -> Option<String> {
        self.err
            .as_ref()
            .map(|(pos, msg)| format!("logfmt syntax error at pos {pos} : {msg}"))
    }

    /// Skips to the next whitespace after a bad pair.
    fn skip_value(&mut self, line: &[u8]) -> bool {
        match line[self.pos..].iter().position(|&c| c <= b' ') {
            Some(p) => self.pos += p,
            None => self.pos = line.len(),
        }
        false
    }

    /// Advances to the next pair; false at the end of the line or on a
    /// malformed pair (the error is recorded).
    fn scan(&mut self, text: &str) -> bool {
        let line = text.as_bytes();
        self.key = None;
        self.value = Val::None;
        // garbage
        match line[self.pos.min(line.len())..]
            .iter()
            .position(|&c| c > b' ')
        {
            Some(p) => self.pos += p,
            None => {
                self.pos = line.len();
                return false;
            }
        }
        // key
        let start = self.pos;
        let mut i = self.pos;
        loop {
            if i >= line.len() {
                self.pos = line.len();
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if self.fffd && has_replacement(&line[start..self.pos]) {
                        self.syntax("invalid key");
                        return false;
                    }
                }
                return true;
            }
            let c = line[i];
            if c == b'=' {
                self.pos = i;
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if self.fffd && has_replacement(&line[start..self.pos]) {
                        self.syntax("invalid key");
                        return self.skip_value(line);
                    }
                }
                if self.key.is_none() {
                    self.unexpected(c);
                    return self.skip_value(line);
                }
                break;
            } else if c == b'"' {
                self.pos = i;
                self.unexpected(c);
                return self.skip_value(line);
            } else if c <= b' ' {
                self.pos = i;
                if self.pos > start {
                    self.key = Some((start, self.pos));
                    if self.fffd && has_replacement(&line[start..self.pos]) {
                        self.syntax("invalid key");
                        return false;
                    }
                }
                return true;
            }
            i += 1;
        }
        // equal
        self.pos += 1;
        if self.pos >= line.len() {
            return true;
        }
        let c = line[self.pos];
        if c <= b' ' {
            return true;
        }
        if c == b'"' {
            return self.quoted_value(text);
        }
        // value
        let start = self.pos;
        for (p, &c) in line[self.pos..].iter().enumerate() {
            if c == b'=' || c == b'"' {
                self.pos += p;
                self.unexpected(c);
                return self.skip_value(line);
            }
            if c <= b' ' {
                self.pos += p;
                if self.pos > start {
                    self.value = Val::Slice(start, self.pos);
                }
                return true;
            }
        }
        self.pos = line.len();
        if self.pos > start {
            self.value = Val::Slice(start, self.pos);
        }
        true
    }

    fn quoted_value(&mut self, text: &str) -> bool {
        let line = text.as_bytes();
        let start = self.pos;
        let mut has_esc = false;
        let mut esc = false;
        for (p, &c) in line[self.pos + 1..].iter().enumerate() {
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos += p + 2;
                if has_esc {
                    self.buf.clear();
                    if !unquote_into(&text[start + 1..self.pos - 1], &mut self.buf) {
                        self.syntax("invalid quoted value");
                        return false;
                    }
                    self.value = Val::Buf;
                } else if self.pos - 1 > start + 1 {
                    self.value = Val::Slice(start + 1, self.pos - 1);
                }
                return true;
            }
        }
        self.pos = line.len();
        self.syntax("unterminated quoted value");
        false
    }
}

fn has_replacement(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, "\u{fffd}".as_bytes()).is_some()
}

/// go-logfmt's `unquoteBytes` for the content of a quoted value.
fn unquote_into(body: &str, out: &mut String) -> bool {
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(e) = chars.next() else {
                return false;
            };
            match e {
                '"' | '\\' | '/' | '\'' => out.push(e),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                    let Ok(code) = u32::from_str_radix(&hex, 16) else {
                        return false;
                    };
                    if hex.len() != 4 {
                        return false;
                    }
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                _ => return false,
            }
        } else if c < ' ' {
            return false;
        } else {
            out.push(c);
        }
    }
    true
}

/// Per-stream state of `| logfmt [--strict] [--keep-empty]`.
pub(crate) struct LogfmtParser {
    strict: bool,
    keep_empty: bool,
    need: Need,
    dec: Decoder,
    keys: HashMap<Box<[u8]>, u32, FxBuild>,
    sanitized: String,
    early_stop: Option<usize>,
}

impl LogfmtParser {
    pub(crate) fn new(strict: bool, keep_empty: bool, need: Need, early_stop: bool) -> Self {
        let early_stop = match (&need, early_stop) {
            (Need::Some(names), true) => Some(names.len()),
            _ => None,
        };
        LogfmtParser {
            strict,
            keep_empty,
            need,
            dec: Decoder::new(),
            keys: HashMap::default(),
            sanitized: String::new(),
            early_stop,
        }
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        if self.early_stop == Some(0) {
            return;
        }
        let bytes = line.as_bytes();
        let generation = state.next_generation();
        let mut found = 0usize;
        self.dec.reset(line);
        while !self.dec.eol(bytes) {
            if !self.dec.scan(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            let raw = self.dec.key(bytes);
            let id = match self.keys.get(raw) {
                Some(&id) => id,
                None => {
                    sanitize_key(&String::from_utf8_lossy(raw), &mut self.sanitized);
                    let id = resolve_extracted(state, &self.sanitized, &self.need);
                    if self.keys.len() < INTERNER_CAP {
                        self.keys.insert(raw.into(), id);
                    }
                    id
                }
            };
            if id == NONE {
                continue;
            }
            let mut value = self.dec.value(line);
            if self.dec.value_has_replacement(value) {
                value = "";
            }
            if !self.keep_empty && value.is_empty() {
                continue;
            }
            state.set(id, value);
            if let Some(wanted) = self.early_stop {
                if state.mark(id, generation) {
                    found += 1;
                    if found >= wanted {
                        break;
                    }
                }
            }
        }
        if self.strict {
            if let Some(message) = self.dec.error_message() {
                state.set_error(ERR_LOGFMT, &message);
            }
        }
    }
}

/// Per-stream state of `| logfmt a="key", b`.
pub(crate) struct LogfmtExprParser<'p> {
    strict: bool,
    /// (label name, logfmt key)
    params: &'p [(String, String)],
    dec: Decoder,
    sanitized: String,
}

impl<'p> LogfmtExprParser<'p> {
    pub(crate) fn new(strict: bool, params: &'p [(String, String)]) -> Self {
        LogfmtExprParser {
            strict,
            params,
            dec: Decoder::new(),
            sanitized: String::new(),
        }
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        for (name, _) in self.params {
            if !state.base_has_name(name) {
                let id = state.intern(name);
                state.set(id, "");
            }
        }
        let bytes = line.as_bytes();
        self.dec.reset(line);
        while !self.dec.eol(bytes) {
            if !self.dec.scan(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            sanitize_key(
                &String::from_utf8_lossy(self.dec.key(bytes)),
                &mut self.sanitized,
            );
            if self.sanitized.is_empty() {
                continue;
            }
            // Loki maps a key equal to an expression to its label, and
            // otherwise accepts a key that is itself a label name.
            let name = self
                .params
                .iter()
                .find(|(_, key)| *key == self.sanitized)
                .or_else(|| self.params.iter().find(|(name, _)| *name == self.sanitized))
                .map(|(name, _)| name.as_str());
            let Some(name) = name else {
                continue;
            };
            let mut value = self.dec.value(line);
            if self.dec.value_has_replacement(value) {
                value = "";
            }
            let id = if state.base_has_name(name) {
                state.intern(&format!("{name}{DUPLICATE_SUFFIX}"))
            } else {
                state.intern(name)
            };
            state.set(id, value);
        }
        if self.strict {
            if let Some(message) = self.dec.error_message() {
                state.set_error(ERR_LOGFMT, &message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> (Vec<(String, String)>, Option<String>) {
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        while !dec.eol(line.as_bytes()) {
            if dec.scan(line) {
                out.push((
                    String::from_utf8_lossy(dec.key(line.as_bytes())).into_owned(),
                    dec.value(line).to_string(),
                ));
            }
        }
        (out, dec.error_message())
    }

    #[test]
    fn decodes() {
        let (p, err) = pairs(r#"a=1 b="x y" c d= e="q\"z""#);
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into()),
                ("e".into(), "q\"z".into()),
            ]
        );
        assert_eq!(err, None);
    }

    #[test]
    fn skips_bad_pairs() {
        let (p, err) = pairs(r#"a=1 =x b=2 c"d e=3"#);
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("e".into(), "3".into())
            ]
        );
        assert_eq!(
            err.as_deref(),
            Some("logfmt syntax error at pos 13 : unexpected '\"'")
        );
        let (_, err) = pairs(r#"a="unterminated"#);
        assert_eq!(
            err.as_deref(),
            Some("logfmt syntax error at pos 16 : unterminated quoted value")
        );
    }
}
