//! Parser for Prometheus metric-selector label strings (`foo{a="1", b='2'}`).
//!
//! It follows Prometheus' lexer (`promql/parser/lex.go`) and the `metric` rule
//! of its grammar as `ParseMetric` uses it, which is what Loki's push path calls:
//! tokens are produced lazily while parsing, so the first problem met from left
//! to right is the one reported, with the same wording as Prometheus.

use super::quote::go_quote_rune;
use super::{Label, LabelsError};

/// Parses `input` into unsorted label pairs (the caller sorts and drops empties).
pub(super) fn parse(input: &str) -> Result<Vec<Label>, LabelsError> {
    Parser::new(input).parse()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
    /// Metric name outside braces (may contain `:`).
    MetricName,
    /// Label name inside braces.
    Identifier,
    /// Quoted string; the value is decoded.
    Str(String),
    Eq,
    Neq,
    EqRegex,
    NeqRegex,
    Comma,
    LeftBrace,
    RightBrace,
    Eof,
}

#[derive(Debug)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    inside_braces: bool,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Parser<'a> {
        Parser {
            input,
            pos: 0,
            inside_braces: false,
        }
    }

    fn parse(mut self) -> Result<Vec<Label>, LabelsError> {
        let mut labels = Vec::new();
        let mut token = self.next_token()?;
        if token.kind == TokenKind::MetricName {
            labels.push(Label {
                name: "__name__".to_owned(),
                value: self.text(&token).to_owned(),
            });
            token = self.next_token()?;
        }
        match token.kind {
            TokenKind::Eof => return Ok(labels),
            TokenKind::LeftBrace => {}
            _ => return Err(self.unexpected(&token, None)),
        }
        // Inside the braces: `}` | item (`,` item)* [`,`] `}`.
        let mut token = self.next_token()?;
        loop {
            if token.kind == TokenKind::RightBrace {
                break;
            }
            if token.kind != TokenKind::Identifier {
                return Err(self.unexpected(&token, Some("identifier or \"}\"")));
            }
            let name = self.text(&token).to_owned();
            let operator = self.next_token()?;
            if operator.kind != TokenKind::Eq {
                return Err(self.unexpected(&operator, Some("\"=\"")));
            }
            let value = self.next_token()?;
            let TokenKind::Str(value_text) = value.kind else {
                return Err(self.unexpected(&value, Some("string")));
            };
            labels.push(Label {
                name,
                value: value_text,
            });
            let separator = self.next_token()?;
            match separator.kind {
                TokenKind::RightBrace => break,
                TokenKind::Comma => {
                    token = self.next_token()?;
                }
                _ => return Err(self.unexpected(&separator, Some("\",\" or \"}\""))),
            }
        }
        let trailing = self.next_token()?;
        if trailing.kind != TokenKind::Eof {
            return Err(self.unexpected(&trailing, None));
        }
        Ok(labels)
    }

    fn text(&self, token: &Token) -> &'a str {
        self.input.get(token.start..token.end).unwrap_or_default()
    }

    /// Builds the grammar-level error for an unexpected token.
    fn unexpected(&self, token: &Token, expected: Option<&str>) -> LabelsError {
        let description = match &token.kind {
            TokenKind::MetricName | TokenKind::Identifier => {
                format!("identifier {:?}", self.text(token))
            }
            TokenKind::Str(_) => format!("string {}", self.text(token)),
            TokenKind::Eq => "\"=\"".to_owned(),
            TokenKind::Neq => "\"!=\"".to_owned(),
            TokenKind::EqRegex => "\"=~\"".to_owned(),
            TokenKind::NeqRegex => "\"!~\"".to_owned(),
            TokenKind::Comma => "\",\"".to_owned(),
            TokenKind::LeftBrace => "\"{\"".to_owned(),
            TokenKind::RightBrace => "\"}\"".to_owned(),
            TokenKind::Eof => "end of input".to_owned(),
        };
        let message = match expected {
            Some(expected) => format!("unexpected {description} in label set, expected {expected}"),
            None => format!("unexpected {description}"),
        };
        LabelsError::at(self.input, token.start, message)
    }

    fn error(&self, offset: usize, message: String) -> LabelsError {
        LabelsError::at(self.input, offset, message)
    }

    fn peek(&self) -> Option<char> {
        self.input.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_space(&mut self) {
        while let Some(' ' | '\t' | '\n' | '\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn token(&self, kind: TokenKind, start: usize) -> Token {
        Token {
            kind,
            start,
            end: self.pos,
        }
    }

    fn next_token(&mut self) -> Result<Token, LabelsError> {
        self.skip_space();
        let start = self.pos;
        if self.inside_braces {
            self.lex_inside_braces(start)
        } else {
            self.lex_outside_braces(start)
        }
    }

    fn lex_outside_braces(&mut self, start: usize) -> Result<Token, LabelsError> {
        let Some(c) = self.bump() else {
            return Ok(self.token(TokenKind::Eof, start));
        };
        match c {
            '{' => {
                self.inside_braces = true;
                Ok(self.token(TokenKind::LeftBrace, start))
            }
            '}' => Err(self.error(
                start,
                format!("unexpected right brace {}", go_quote_rune(c)),
            )),
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                while let Some(next) = self.peek() {
                    if next.is_ascii_alphanumeric() || next == '_' || next == ':' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                Ok(self.token(TokenKind::MetricName, start))
            }
            c => Err(self.error(start, format!("unexpected character: {}", go_quote_rune(c)))),
        }
    }

    fn lex_inside_braces(&mut self, start: usize) -> Result<Token, LabelsError> {
        let Some(c) = self.bump() else {
            return Err(self.error(start, "unexpected end of input inside braces".to_owned()));
        };
        let kind = match c {
            c if c.is_ascii_alphabetic() || c == '_' => {
                while let Some(next) = self.peek() {
                    if next.is_ascii_alphanumeric() || next == '_' {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                TokenKind::Identifier
            }
            '=' => {
                if self.peek() == Some('~') {
                    self.pos += 1;
                    TokenKind::EqRegex
                } else {
                    TokenKind::Eq
                }
            }
            '!' => match self.bump() {
                Some('=') => TokenKind::Neq,
                Some('~') => TokenKind::NeqRegex,
                Some(other) => {
                    return Err(self.error(
                        start,
                        format!(
                            "unexpected character after '!' inside braces: {}",
                            go_quote_rune(other)
                        ),
                    ))
                }
                None => {
                    return Err(
                        self.error(start, "unexpected end of input inside braces".to_owned())
                    )
                }
            },
            '"' | '\'' => TokenKind::Str(self.lex_quoted(start, c)?),
            '`' => TokenKind::Str(self.lex_raw(start)?),
            ',' => TokenKind::Comma,
            '}' => {
                self.inside_braces = false;
                TokenKind::RightBrace
            }
            '{' => {
                return Err(self.error(start, format!("unexpected left brace {}", go_quote_rune(c))))
            }
            c => {
                return Err(self.error(
                    start,
                    format!("unexpected character inside braces: {}", go_quote_rune(c)),
                ))
            }
        };
        Ok(self.token(kind, start))
    }

    /// Lexes a raw (backtick) string whose opening quote has been consumed.
    fn lex_raw(&mut self, start: usize) -> Result<String, LabelsError> {
        let body_start = self.pos;
        loop {
            match self.bump() {
                Some('`') => {
                    let body = self.input.get(body_start..self.pos - 1).unwrap_or_default();
                    return Ok(body.to_owned());
                }
                Some(_) => {}
                None => return Err(self.error(start, "unterminated raw string".to_owned())),
            }
        }
    }

    /// Lexes and decodes a `"…"` or `'…'` string whose opening quote has been
    /// consumed, applying Go's escape rules.
    fn lex_quoted(&mut self, start: usize, quote: char) -> Result<String, LabelsError> {
        let mut value: Vec<u8> = Vec::new();
        let mut utf8 = [0u8; 4];
        loop {
            let here = self.pos;
            match self.bump() {
                None | Some('\n') => {
                    return Err(self.error(start, "unterminated quoted string".to_owned()))
                }
                Some(c) if c == quote => break,
                Some('\\') => self.lex_escape(here, quote, &mut value)?,
                Some(c) => value.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
            }
        }
        String::from_utf8(value)
            .map_err(|_| self.error(start, "invalid UTF-8 in quoted string".to_owned()))
    }

    /// Decodes one escape sequence; `backslash` is the offset of its `\`.
    fn lex_escape(
        &mut self,
        backslash: usize,
        quote: char,
        value: &mut Vec<u8>,
    ) -> Result<(), LabelsError> {
        let Some(c) = self.bump() else {
            return Err(self.error(backslash, "escape sequence not terminated".to_owned()));
        };
        let simple = match c {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            c if c == quote => Some(c as u8),
            _ => None,
        };
        if let Some(byte) = simple {
            value.push(byte);
            return Ok(());
        }
        let (digits, base, max, first) = match c {
            '0'..='7' => (3, 8, 255, Some(c)),
            'x' => (2, 16, 255, None),
            'u' => (4, 16, 0x10FFFF, None),
            'U' => (8, 16, 0x10FFFF, None),
            other => {
                return Err(self.error(
                    backslash,
                    format!("unknown escape sequence U+{:04X}", other as u32),
                ))
            }
        };
        let mut code: u32 = 0;
        let mut remaining = digits;
        if let Some(first) = first {
            code = first.to_digit(8).unwrap_or(0);
            remaining -= 1;
        }
        for _ in 0..remaining {
            let Some(digit_char) = self.peek() else {
                return Err(self.error(backslash, "escape sequence not terminated".to_owned()));
            };
            if digit_char == quote || digit_char == '\n' {
                return Err(self.error(backslash, "escape sequence not terminated".to_owned()));
            }
            let Some(digit) = digit_char.to_digit(base) else {
                return Err(self.error(
                    backslash,
                    format!(
                        "illegal character U+{:04X} in escape sequence",
                        digit_char as u32
                    ),
                ));
            };
            self.pos += digit_char.len_utf8();
            code = code * base + digit;
        }
        if code > max || (0xD800..0xE000).contains(&code) {
            return Err(self.error(
                backslash,
                "escape sequence is an invalid Unicode code point".to_owned(),
            ));
        }
        if c == 'u' || c == 'U' {
            let decoded = char::from_u32(code).ok_or_else(|| {
                self.error(
                    backslash,
                    "escape sequence is an invalid Unicode code point".to_owned(),
                )
            })?;
            let mut utf8 = [0u8; 4];
            value.extend_from_slice(decoded.encode_utf8(&mut utf8).as_bytes());
        } else {
            // `\xNN` and octal escapes denote single bytes, as in Go; the whole
            // value must still be valid UTF-8 once decoded.
            value.push(code as u8);
        }
        Ok(())
    }
}
