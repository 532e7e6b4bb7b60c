//! Label matchers (`name="v"`, `!=`, `=~`, `!~`) with Prometheus semantics:
//! regexes are fully anchored and a missing label matches as `""`.

use std::fmt;

use regex::Regex;

use crate::error::{regex_error_message, ParseError};

/// Matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`.
    Eq,
    /// `!=`.
    Neq,
    /// `=~` (anchored regex).
    Re,
    /// `!~` (anchored regex, negated).
    Nre,
}

impl MatchOp {
    /// The operator text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }

    /// Returns true for `=~` and `!~`.
    pub fn is_regex(self) -> bool {
        matches!(self, MatchOp::Re | MatchOp::Nre)
    }
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label matcher. The regex of `=~`/`!~` is compiled once by
/// [`Matcher::new`]; changing `value` afterwards does not recompile it.
#[derive(Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex source.
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Creates a matcher, compiling `^(?:value)$` for regex operators.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, ParseError> {
        let value = value.into();
        let regex = if op.is_regex() {
            let anchored = format!("^(?:{value})$");
            let compiled = Regex::new(&anchored)
                .map_err(|err| ParseError::semantic(regex_error_message(&value, &err)))?;
            Some(compiled)
        } else {
            None
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Tests a label value (pass `""` for a missing label).
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Neq, _) => value != self.value,
            (MatchOp::Re, Some(regex)) => regex.is_match(value),
            (MatchOp::Nre, Some(regex)) => !regex.is_match(value),
            // Unreachable through `new`; treat a missing regex as literal.
            (MatchOp::Re, None) => value == self.value,
            (MatchOp::Nre, None) => value != self.value,
        }
    }

    /// Returns true if the matcher accepts the empty string (an absent label).
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("name", &self.name)
            .field("op", &self.op)
            .field("value", &self.value)
            .finish()
    }
}

/// Returns true if at least one matcher rejects the empty string (Loki's
/// requirement for a selector).
pub fn has_non_empty_matcher(matchers: &[Matcher]) -> bool {
    matchers.iter().any(|matcher| !matcher.matches_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, value: &str) -> Matcher {
        Matcher::new("app", op, value).expect("valid matcher")
    }

    #[test]
    fn equality() {
        assert!(m(MatchOp::Eq, "foo").matches("foo"));
        assert!(!m(MatchOp::Eq, "foo").matches("foobar"));
        assert!(m(MatchOp::Neq, "foo").matches("bar"));
        assert!(m(MatchOp::Neq, "foo").matches(""));
        assert!(m(MatchOp::Eq, "").matches(""));
    }

    #[test]
    fn regexes_are_anchored() {
        assert!(m(MatchOp::Re, "foo").matches("foo"));
        assert!(!m(MatchOp::Re, "foo").matches("foobar"));
        assert!(!m(MatchOp::Re, "foo").matches("xfoo"));
        assert!(m(MatchOp::Re, "foo|bar").matches("bar"));
        assert!(m(MatchOp::Re, "fo.*").matches("foobar"));
        assert!(m(MatchOp::Nre, "foo").matches("foobar"));
        assert!(!m(MatchOp::Nre, "fo.*").matches("foobar"));
    }

    #[test]
    fn empty_compatibility() {
        assert!(m(MatchOp::Re, ".*").matches_empty());
        assert!(!m(MatchOp::Re, ".+").matches_empty());
        assert!(m(MatchOp::Neq, "x").matches_empty());
        assert!(!m(MatchOp::Nre, "").matches_empty());
        assert!(!has_non_empty_matcher(&[m(MatchOp::Re, ".*")]));
        assert!(has_non_empty_matcher(&[
            m(MatchOp::Re, ".*"),
            m(MatchOp::Eq, "a")
        ]));
    }

    #[test]
    fn invalid_regex_is_named() {
        let err = Matcher::new("a", MatchOp::Re, "(foo").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "parse error : error parsing regexp: missing closing ): `(foo`"
        );
    }

    #[test]
    fn display_quotes_like_go() {
        let matcher = Matcher::new("app", MatchOp::Re, "a\"b\\d\n").expect("valid");
        assert_eq!(matcher.to_string(), r#"app=~"a\"b\\d\n""#);
    }
}
