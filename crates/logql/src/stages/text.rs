//! `regexp`, `pattern` and `decolorize` stages.

use std::sync::OnceLock;

use memchr::memmem::Finder;
use regex::{CaptureLocations, Regex};

use super::{resolve_extracted, LabelState, Need, NONE};
use crate::pattern::{parse_pattern, PatternNode};

/// A compiled `regexp` stage: (group index, label name) of named groups.
#[derive(Debug, Clone)]
pub(crate) struct RegexpStage {
    pub(crate) regex: Regex,
    pub(crate) groups: Vec<(usize, String)>,
}

impl RegexpStage {
    pub(crate) fn new(source: &str) -> Result<RegexpStage, String> {
        let regex = Regex::new(source).map_err(|err| err.to_string())?;
        let groups: Vec<(usize, String)> = regex
            .capture_names()
            .enumerate()
            .filter_map(|(index, name)| name.map(|n| (index, n.to_string())))
            .collect();
        if groups.is_empty() {
            return Err("at least one named capture must be supplied".into());
        }
        Ok(RegexpStage { regex, groups })
    }
}

/// Per-stream state of a `regexp` stage.
pub(crate) struct RegexpRt<'p> {
    stage: &'p RegexpStage,
    locs: CaptureLocations,
    ids: Vec<u32>,
}

impl<'p> RegexpRt<'p> {
    pub(crate) fn new(stage: &'p RegexpStage, need: &Need, state: &mut LabelState) -> Self {
        let mut sanitized = String::new();
        let ids = stage
            .groups
            .iter()
            .map(|(_, name)| {
                super::sanitize_key(name, &mut sanitized);
                resolve_extracted(state, &sanitized, need)
            })
            .collect();
        RegexpRt {
            stage,
            locs: stage.regex.capture_locations(),
            ids,
        }
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        if self.ids.iter().all(|&id| id == NONE) {
            return;
        }
        if self
            .stage
            .regex
            .captures_read(&mut self.locs, line)
            .is_none()
        {
            return;
        }
        for (k, (group, _)) in self.stage.groups.iter().enumerate() {
            let id = self.ids[k];
            if id == NONE {
                continue;
            }
            let value = self
                .locs
                .get(*group)
                .map_or("", |(start, end)| &line[start..end]);
            state.set(id, value);
        }
    }
}

/// A compiled `pattern` expression.
#[derive(Debug, Clone)]
pub(crate) struct PatternStage {
    /// Literal that must start the line.
    lead: Option<String>,
    /// Alternating captures (named or `<_>`) and the literal after them.
    parts: Vec<(Option<String>, Option<Finder<'static>>)>,
}

impl PatternStage {
    pub(crate) fn new(source: &str) -> Result<PatternStage, String> {
        let nodes = parse_pattern(source)?;
        let mut lead = None;
        let mut rest = nodes.as_slice();
        if let Some(PatternNode::Literal(text)) = rest.first() {
            lead = Some(text.clone());
            rest = &rest[1..];
        }
        let mut parts = Vec::new();
        let mut iter = rest.iter().peekable();
        while let Some(node) = iter.next() {
            let PatternNode::Capture(name) = node else {
                continue;
            };
            let literal = match iter.peek() {
                Some(PatternNode::Literal(text)) => {
                    iter.next();
                    Some(Finder::new(text.as_bytes()).into_owned())
                }
                _ => None,
            };
            parts.push((name.clone(), literal));
        }
        Ok(PatternStage { lead, parts })
    }

    /// Named capture names in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|(name, _)| name.as_deref())
    }

    /// Loki's `pattern.Matcher.Matches`: calls `found(k, value)` for the
    /// k-th named capture matched.
    pub(crate) fn matches<'l>(&self, line: &'l str, mut found: impl FnMut(usize, &'l str)) {
        if line.is_empty() {
            return;
        }
        let mut rest = line;
        if let Some(lead) = &self.lead {
            if !rest.starts_with(lead.as_str()) {
                return;
            }
            rest = &rest[lead.len()..];
        }
        let mut named = 0usize;
        for (name, literal) in &self.parts {
            let Some(finder) = literal else {
                // Ends on a capture: it takes the rest.
                if name.is_some() {
                    found(named, rest);
                }
                return;
            };
            match finder.find(rest.as_bytes()) {
                None => {
                    if name.is_some() {
                        found(named, rest);
                    }
                    return;
                }
                Some(at) => {
                    if name.is_some() {
                        found(named, &rest[..at]);
                        named += 1;
                    }
                    rest = &rest[at + finder.needle().len()..];
                }
            }
        }
    }
}

/// Per-stream state of a `pattern` stage.
pub(crate) struct PatternRt<'p> {
    stage: &'p PatternStage,
    ids: Vec<u32>,
}

impl<'p> PatternRt<'p> {
    pub(crate) fn new(stage: &'p PatternStage, need: &Need, state: &mut LabelState) -> Self {
        let ids = stage
            .names()
            .map(|name| resolve_extracted(state, name, need))
            .collect();
        PatternRt { stage, ids }
    }

    pub(crate) fn process(&mut self, line: &str, state: &mut LabelState) {
        if self.ids.iter().all(|&id| id == NONE) {
            return;
        }
        let ids = &self.ids;
        self.stage.matches(line, |k, value| {
            if let Some(&id) = ids.get(k) {
                if id != NONE {
                    state.set(id, value);
                }
            }
        });
    }
}

/// The ANSI escape regex of `stripansi` (what Loki's `decolorize` uses).
fn ansi_regex() -> Option<&'static Regex> {
    static ANSI: OnceLock<Option<Regex>> = OnceLock::new();
    ANSI.get_or_init(|| {
        Regex::new(
            "[\u{1b}\u{9b}][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{7})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))",
        )
        .ok()
    })
    .as_ref()
}

/// Strips ANSI escapes into `out`; false (and `out` untouched) when the
/// line has none.
pub(crate) fn decolorize(line: &str, out: &mut String) -> bool {
    let bytes = line.as_bytes();
    if memchr::memchr(0x1b, bytes).is_none()
        && memchr::memmem::find(bytes, "\u{9b}".as_bytes()).is_none()
    {
        return false;
    }
    let Some(regex) = ansi_regex() else {
        return false;
    };
    out.clear();
    let mut last = 0;
    for found in regex.find_iter(line) {
        out.push_str(&line[last..found.start()]);
        last = found.end();
    }
    out.push_str(&line[last..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, line: &str) -> Vec<String> {
        let stage = PatternStage::new(pattern).expect("valid");
        let mut out = Vec::new();
        stage.matches(line, |_, v| out.push(v.to_string()));
        out
    }

    #[test]
    fn pattern_semantics() {
        assert_eq!(
            run(
                "<ip> - <_> [<ts>] \"<method> <path> <_>\"",
                r#"1.2.3.4 - - [now] "GET /x HTTP/1.1" 200"#
            ),
            vec!["1.2.3.4", "now", "GET", "/x"]
        );
        // Leading literal must be at line start.
        assert!(run("foo <a>", "xfoo bar").is_empty());
        assert_eq!(run("foo <a>", "foo bar baz"), vec!["bar baz"]);
        // A missing literal ends matching: the capture takes the rest.
        assert_eq!(run("<a> | <b>", "no pipe here"), vec!["no pipe here"]);
        // Trailing literal: the last capture stops at its first occurrence.
        assert_eq!(run("<a>;", "x;y;"), vec!["x"]);
    }

    #[test]
    fn strips_ansi() {
        let mut out = String::new();
        assert!(decolorize("\u{1b}[31mred\u{1b}[0m text", &mut out));
        assert_eq!(out, "red text");
        assert!(!decolorize("plain", &mut out));
    }
}
