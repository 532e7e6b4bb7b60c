//! Line filters (`|=`, `!=`, `|~`, `!~`, `ip("…")`, `or` alternatives) and
//! [`LineFilterChain`], their compiled conjunction for hot loops.

use std::fmt;

use memchr::memmem::Finder;
use regex::bytes::Regex;

use crate::ast::Stage;
use crate::error::{regex_error_message, ParseError};
use crate::ip::{IpPattern, INVALID_IP_PATTERN};

/// Line filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineFilterOp {
    /// `|=`: the line contains the pattern.
    Contains,
    /// `!=`: the line does not contain the pattern.
    NotContains,
    /// `|~`: the (unanchored) regex matches somewhere in the line.
    Match,
    /// `!~`: the regex matches nowhere in the line.
    NotMatch,
}

impl LineFilterOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Match => "|~",
            LineFilterOp::NotMatch => "!~",
        }
    }

    /// Returns true for `!=` and `!~`.
    pub fn is_negated(self) -> bool {
        matches!(self, LineFilterOp::NotContains | LineFilterOp::NotMatch)
    }

    fn is_regex(self) -> bool {
        matches!(self, LineFilterOp::Match | LineFilterOp::NotMatch)
    }
}

impl fmt::Display for LineFilterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `or` alternative of a line filter: `"text"` or `ip("…")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFilterAlt {
    /// The string, regex or ip pattern.
    pub pattern: String,
    /// True for `ip("…")`.
    pub ip: bool,
}

/// A line filter stage. Alternatives (`|= "a" or "b"`) match when any
/// alternative does; for `!=`/`!~` the line must match none of them.
#[derive(Clone)]
pub struct LineFilter {
    /// Operator.
    pub op: LineFilterOp,
    /// First pattern (substring, regex, or ip pattern when `ip`).
    pub pattern: String,
    /// True when the first pattern is `ip("…")`.
    pub ip: bool,
    /// Further `or` alternatives.
    pub or: Vec<LineFilterAlt>,
    compiled: Box<CompiledFilter>,
}

impl LineFilter {
    /// Creates `op "pattern"` (compiling the regex of `|~`/`!~`).
    pub fn new(op: LineFilterOp, pattern: impl Into<String>) -> Result<LineFilter, ParseError> {
        let first = LineFilterAlt {
            pattern: pattern.into(),
            ip: false,
        };
        LineFilter::with_alternatives(op, first, Vec::new())
    }

    /// Creates a filter with `or` alternatives; `first.ip` makes it `op ip("…")`.
    pub fn with_alternatives(
        op: LineFilterOp,
        first: LineFilterAlt,
        or: Vec<LineFilterAlt>,
    ) -> Result<LineFilter, ParseError> {
        let tests = std::iter::once(&first)
            .chain(or.iter())
            .map(|alt| compile_test(op, alt))
            .collect::<Result<Vec<_>, _>>()?;
        let compiled = Box::new(CompiledFilter::from_tests(op.is_negated(), tests));
        Ok(LineFilter {
            op,
            pattern: first.pattern,
            ip: first.ip,
            or,
            compiled,
        })
    }

    /// Tests a log line.
    pub fn matches(&self, line: &[u8]) -> bool {
        self.compiled.matches(line)
    }
}

impl PartialEq for LineFilter {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op
            && self.pattern == other.pattern
            && self.ip == other.ip
            && self.or == other.or
    }
}

impl fmt::Debug for LineFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("LineFilter");
        debug.field("op", &self.op).field("pattern", &self.pattern);
        if self.ip {
            debug.field("ip", &self.ip);
        }
        if !self.or.is_empty() {
            debug.field("or", &self.or);
        }
        debug.finish()
    }
}

/// One alternative, compiled.
#[derive(Clone)]
enum Test {
    Always,
    Substring(Box<Finder<'static>>),
    Regex(Regex),
    Ip(IpPattern),
}

impl Test {
    #[inline]
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            Test::Always => true,
            Test::Substring(finder) => finder.find(line).is_some(),
            Test::Regex(regex) => regex.is_match(line),
            Test::Ip(pattern) => pattern.matches_line(line),
        }
    }
}

fn compile_test(op: LineFilterOp, alt: &LineFilterAlt) -> Result<Test, ParseError> {
    if alt.ip {
        if op.is_regex() {
            return Err(ParseError::semantic("ip: invalid operation"));
        }
        return IpPattern::parse(&alt.pattern)
            .map(Test::Ip)
            .ok_or_else(|| ParseError::semantic(INVALID_IP_PATTERN));
    }
    if alt.pattern.is_empty() {
        return Ok(Test::Always);
    }
    if op.is_regex() {
        return Regex::new(&alt.pattern)
            .map(Test::Regex)
            .map_err(|err| ParseError::semantic(regex_error_message(&alt.pattern, &err)));
    }
    Ok(Test::Substring(Box::new(
        Finder::new(alt.pattern.as_bytes()).into_owned(),
    )))
}

/// A compiled filter: single-test fast paths plus the general `or` form.
/// The finders stay inline: the chain iterates a `Vec` of these per line.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum CompiledFilter {
    Pass,
    Reject,
    Contains(Finder<'static>),
    NotContains(Finder<'static>),
    Regex(Regex),
    NotRegex(Regex),
    Any { negate: bool, tests: Vec<Test> },
}

impl CompiledFilter {
    fn from_tests(negate: bool, mut tests: Vec<Test>) -> CompiledFilter {
        if tests.iter().any(|t| matches!(t, Test::Always)) {
            return if negate {
                CompiledFilter::Reject
            } else {
                CompiledFilter::Pass
            };
        }
        if tests.len() == 1 {
            match tests.pop() {
                Some(Test::Substring(finder)) if negate => {
                    return CompiledFilter::NotContains(*finder)
                }
                Some(Test::Substring(finder)) => return CompiledFilter::Contains(*finder),
                Some(Test::Regex(regex)) if negate => return CompiledFilter::NotRegex(regex),
                Some(Test::Regex(regex)) => return CompiledFilter::Regex(regex),
                Some(other) => tests.push(other),
                None => {}
            }
        }
        CompiledFilter::Any { negate, tests }
    }

    #[inline]
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            CompiledFilter::Pass => true,
            CompiledFilter::Reject => false,
            CompiledFilter::Contains(finder) => finder.find(line).is_some(),
            CompiledFilter::NotContains(finder) => finder.find(line).is_none(),
            CompiledFilter::Regex(regex) => regex.is_match(line),
            CompiledFilter::NotRegex(regex) => !regex.is_match(line),
            CompiledFilter::Any { negate, tests } => {
                tests.iter().any(|test| test.matches(line)) != *negate
            }
        }
    }
}

/// The conjunction of the line filters that test the original line, compiled
/// once; [`LineFilterChain::matches`] does not allocate.
#[derive(Clone, Default)]
pub struct LineFilterChain {
    filters: Vec<CompiledFilter>,
}

impl LineFilterChain {
    /// Builds the chain from pipeline stages: every line filter before the
    /// first stage that rewrites the line (see [`Stage::rewrites_line`]).
    pub fn new(stages: &[Stage]) -> LineFilterChain {
        let filters = stages
            .iter()
            .take_while(|stage| !stage.rewrites_line())
            .filter_map(|stage| match stage {
                Stage::LineFilter(filter) => Some((*filter.compiled).clone()),
                _ => None,
            })
            .filter(|filter| !matches!(filter, CompiledFilter::Pass))
            .collect();
        LineFilterChain { filters }
    }

    /// Builds a chain from line filters directly.
    pub fn from_filters<'a>(filters: impl IntoIterator<Item = &'a LineFilter>) -> LineFilterChain {
        LineFilterChain {
            filters: filters
                .into_iter()
                .map(|filter| (*filter.compiled).clone())
                .filter(|filter| !matches!(filter, CompiledFilter::Pass))
                .collect(),
        }
    }

    /// Returns true if the chain accepts every line.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Number of (non-trivial) filters.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Tests a line against every filter.
    #[inline]
    pub fn matches(&self, line: &[u8]) -> bool {
        self.filters.iter().all(|filter| filter.matches(line))
    }

    /// The byte strings every line the chain accepts contains: the patterns
    /// of its case-sensitive `|=` filters (a reader of stored data may skip
    /// lines that cannot hold them).
    pub fn required_substrings(&self) -> Vec<Vec<u8>> {
        self.filters
            .iter()
            .filter_map(|filter| match filter {
                CompiledFilter::Contains(finder) => Some(finder.needle().to_vec()),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Debug for LineFilterChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineFilterChain")
            .field("len", &self.filters.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(op: LineFilterOp, pattern: &str) -> LineFilter {
        LineFilter::new(op, pattern).expect("valid filter")
    }

    fn alt(pattern: &str) -> LineFilterAlt {
        LineFilterAlt {
            pattern: pattern.to_string(),
            ip: false,
        }
    }

    #[test]
    fn substring() {
        assert!(filter(LineFilterOp::Contains, "err").matches(b"an error"));
        assert!(!filter(LineFilterOp::Contains, "err").matches(b"all good"));
        assert!(filter(LineFilterOp::NotContains, "err").matches(b"all good"));
        assert!(!filter(LineFilterOp::NotContains, "err").matches(b"an error"));
        assert!(!filter(LineFilterOp::Contains, "Err").matches(b"an error"));
    }

    #[test]
    fn required_substrings_are_the_case_sensitive_contains_filters() {
        let stages = crate::parse_expr(
            r#"{a="b"} |= "error" != "debug" |~ "(?i)warn" |= "x" or "y" |= "db" | json |= "later""#,
        )
        .expect("valid query");
        let crate::Expr::Log(log) = stages else {
            panic!("a log query");
        };
        let chain = LineFilterChain::new(&log.pipeline);
        // `|= "later"` follows `| json`, which does not rewrite the line.
        assert_eq!(
            chain.required_substrings(),
            [&b"error"[..], b"db", b"later"]
        );
    }

    #[test]
    fn empty_pattern() {
        assert!(filter(LineFilterOp::Contains, "").matches(b"anything"));
        assert!(filter(LineFilterOp::Contains, "").matches(b""));
        assert!(!filter(LineFilterOp::NotContains, "").matches(b"anything"));
        assert!(filter(LineFilterOp::Match, "").matches(b"x"));
    }

    #[test]
    fn regex_is_unanchored() {
        assert!(filter(LineFilterOp::Match, "e.r").matches(b"an error"));
        assert!(filter(LineFilterOp::Match, "^an").matches(b"an error"));
        assert!(!filter(LineFilterOp::Match, "^error").matches(b"an error"));
        assert!(filter(LineFilterOp::NotMatch, "^error").matches(b"an error"));
        assert!(filter(LineFilterOp::Match, "(?i)ERROR").matches(b"an error"));
        assert!(filter(LineFilterOp::Match, "x").matches(b"\xffx\xfe"));
    }

    #[test]
    fn or_alternatives() {
        let any = LineFilter::with_alternatives(LineFilterOp::Contains, alt("a"), vec![alt("b")])
            .expect("valid");
        assert!(any.matches(b"xxb"));
        assert!(!any.matches(b"xxc"));
        let none =
            LineFilter::with_alternatives(LineFilterOp::NotContains, alt("a"), vec![alt("b")])
                .expect("valid");
        assert!(!none.matches(b"xxb"));
        assert!(none.matches(b"xxc"));
    }

    #[test]
    fn ip_filters() {
        let ip = LineFilterAlt {
            pattern: "10.0.0.0/8".into(),
            ip: true,
        };
        let f = LineFilter::with_alternatives(LineFilterOp::Contains, ip.clone(), vec![])
            .expect("valid");
        assert!(f.matches(b"from 10.1.1.1"));
        assert!(!f.matches(b"from 11.1.1.1"));
        let not = LineFilter::with_alternatives(LineFilterOp::NotContains, ip.clone(), vec![])
            .expect("valid");
        assert!(not.matches(b"from 11.1.1.1"));
        assert!(LineFilter::with_alternatives(LineFilterOp::Match, ip, vec![]).is_err());
        let bad = LineFilterAlt {
            pattern: "nope".into(),
            ip: true,
        };
        let err = LineFilter::with_alternatives(LineFilterOp::Contains, bad, vec![])
            .expect_err("invalid");
        assert_eq!(err.to_string(), "parse error : ip: invalid pattern");
    }

    #[test]
    fn invalid_regex() {
        let err = LineFilter::new(LineFilterOp::Match, "a(").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "parse error : error parsing regexp: missing closing ): `a(`"
        );
    }

    #[test]
    fn chain_stops_at_line_rewrites() {
        let stages = vec![
            Stage::LineFilter(filter(LineFilterOp::Contains, "a")),
            Stage::Json(vec![]),
            Stage::LineFilter(filter(LineFilterOp::NotContains, "b")),
            Stage::LineFormat("{{.x}}".into()),
            Stage::LineFilter(filter(LineFilterOp::Contains, "zzz")),
        ];
        let chain = LineFilterChain::new(&stages);
        assert_eq!(chain.len(), 2);
        assert!(chain.matches(b"a c"));
        assert!(!chain.matches(b"a b"));
        assert!(!chain.matches(b"c"));
        assert!(LineFilterChain::new(&[]).matches(b"x"));
        let trivial =
            LineFilterChain::new(&[Stage::LineFilter(filter(LineFilterOp::Contains, ""))]);
        assert!(trivial.is_empty());
    }
}
