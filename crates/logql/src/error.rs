//! The single error type of the crate, rendered exactly like Loki's
//! `logqlmodel.ParseError` so HTTP handlers can return `to_string()` verbatim.

use std::fmt;

/// Message of the semantic check that every selector has a matcher that does
/// not match the empty string (Loki's `errAtleastOneEqualityMatcherRequired`).
pub const EMPTY_COMPATIBLE_SELECTOR: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Message returned by [`crate::parse_selector`] when the input is not a bare
/// stream selector (Loki's `ErrParseMatchers`).
pub const ONLY_LABEL_MATCHERS: &str = "only label matchers are supported";

/// A LogQL parse or validation error.
///
/// `line` and `col` are 1-based and count characters like Loki's goyacc lexer
/// (the position of the offending token; end of input is one past the last
/// character). Both are 0 for errors without a position (semantic checks),
/// which render as `parse error : <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line, 0 when the error has no position.
    pub line: usize,
    /// 1-based column (in characters), 0 when the error has no position.
    pub col: usize,
    /// The message after the `parse error …: ` prefix.
    pub message: String,
    /// Loki reports a few validation failures as bare messages, without the
    /// `parse error` prefix.
    bare: bool,
}

impl ParseError {
    /// Creates an error at a position (`syntax error: …`, lexer errors).
    pub(crate) fn at(line: usize, col: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            col,
            message: message.into(),
            bare: false,
        }
    }

    /// Creates a semantic error without position: `parse error : <message>`.
    pub(crate) fn semantic(message: impl Into<String>) -> Self {
        ParseError::at(0, 0, message)
    }

    /// Creates an error rendered as the bare message (no `parse error` prefix).
    pub(crate) fn bare(message: impl Into<String>) -> Self {
        ParseError {
            line: 0,
            col: 0,
            message: message.into(),
            bare: true,
        }
    }

    /// Returns true when the error carries a line/column position.
    pub fn has_position(&self) -> bool {
        self.line != 0 || self.col != 0
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bare {
            f.write_str(&self.message)
        } else if self.has_position() {
            write!(
                f,
                "parse error at line {}, col {}: {}",
                self.line, self.col, self.message
            )
        } else {
            write!(f, "parse error : {}", self.message)
        }
    }
}

/// Formats a regex compilation error the way Go's `regexp` does
/// (`error parsing regexp: <reason>: `+"`<expr>`"), as far as the reasons map.
pub(crate) fn regex_error_message(pattern: &str, err: &regex::Error) -> String {
    let reason = match regex_syntax::ast::parse::Parser::new().parse(pattern) {
        Err(ast_err) => go_reason(ast_err.kind()),
        Ok(_) => match err {
            regex::Error::CompiledTooBig(_) => "expression too large".to_string(),
            other => other
                .to_string()
                .lines()
                .last()
                .unwrap_or("invalid regexp")
                .trim_start_matches("error: ")
                .to_string(),
        },
    };
    format!("error parsing regexp: {reason}: `{pattern}`")
}

fn go_reason(kind: &regex_syntax::ast::ErrorKind) -> String {
    use regex_syntax::ast::ErrorKind as K;
    match kind {
        K::GroupUnclosed => "missing closing )".into(),
        K::GroupUnopened => "unexpected )".into(),
        K::ClassUnclosed => "missing closing ]".into(),
        K::ClassRangeInvalid | K::ClassRangeLiteral => "invalid character class range".into(),
        K::RepetitionMissing => "missing argument to repetition operator".into(),
        K::RepetitionCountInvalid | K::RepetitionCountUnclosed | K::RepetitionCountDecimalEmpty => {
            "invalid repeat count".into()
        }
        K::EscapeUnrecognized | K::EscapeUnexpectedEof => "invalid escape sequence".into(),
        K::GroupNameInvalid | K::GroupNameEmpty | K::GroupNameUnexpectedEof => {
            "invalid named capture".into()
        }
        K::GroupNameDuplicate { .. } => "duplicate capture group name".into(),
        K::UnsupportedLookAround | K::UnsupportedBackreference => {
            "invalid or unsupported Perl syntax".into()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shapes() {
        assert_eq!(
            ParseError::at(1, 11, "syntax error: unexpected $end").to_string(),
            "parse error at line 1, col 11: syntax error: unexpected $end"
        );
        assert_eq!(
            ParseError::semantic("boom").to_string(),
            "parse error : boom"
        );
        assert_eq!(ParseError::bare("boom").to_string(), "boom");
        assert!(!ParseError::semantic("x").has_position());
    }

    #[test]
    fn regex_errors_look_like_go() {
        let pattern = String::from("(foo");
        let err = regex::Regex::new(&pattern).expect_err("invalid");
        assert_eq!(
            regex_error_message("(foo", &err),
            "error parsing regexp: missing closing ): `(foo`"
        );
    }
}
