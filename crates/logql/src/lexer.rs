//! LogQL lexer, modelled on Loki's `text/scanner` based lexer: same token
//! set, same keyword rules (function names are keywords only when followed by
//! `(` or `by (`/`without (`), same duration/bytes lookahead, same positions.

use std::fmt;

use crate::ast::{RangeOp, VectorOp};
use crate::error::ParseError;
use crate::units;

/// A token kind. `Display` gives the name Loki's parser prints in
/// `unexpected X` / `expecting X` messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Eof,
    Ident(String),
    /// A character Loki's lexer turns into an IDENTIFIER token but that can
    /// never be a label name.
    Unknown(char),
    Str(String),
    Number(String),
    Duration(i64),
    Range(i64),
    Bytes(u64),
    ParserFlag(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    RBracket,
    Comma,
    Dot,
    Eq,
    Neq,
    Re,
    Nre,
    PipeExact,
    PipeMatch,
    Pipe,
    CmpEq,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    By,
    Without,
    Bool,
    Offset,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Or,
    And,
    Unless,
    Json,
    Regexp,
    Logfmt,
    Unpack,
    Pattern,
    LabelFormat,
    LineFormat,
    Ip,
    Decolorize,
    Drop,
    Keep,
    Unwrap,
    LabelReplace,
    Vector,
    RangeFn(RangeOp),
    VectorFn(VectorOp),
    BytesConv,
    DurationConv,
    DurationSecondsConv,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Tok::Eof => "$end",
            Tok::Ident(_) | Tok::Unknown(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Duration(_) => "DURATION",
            Tok::Range(_) => "RANGE",
            Tok::Bytes(_) => "BYTES",
            Tok::ParserFlag(_) => "PARSER_FLAG",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::PipeExact => "|=",
            Tok::PipeMatch => "|~",
            Tok::Pipe => "|",
            Tok::CmpEq => "==",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::By => "by",
            Tok::Without => "without",
            Tok::Bool => "bool",
            Tok::Offset => "offset",
            Tok::On => "on",
            Tok::Ignoring => "ignoring",
            Tok::GroupLeft => "group_left",
            Tok::GroupRight => "group_right",
            Tok::Or => "or",
            Tok::And => "and",
            Tok::Unless => "unless",
            Tok::Json => "json",
            Tok::Regexp => "regexp",
            Tok::Logfmt => "logfmt",
            Tok::Unpack => "unpack",
            Tok::Pattern => "pattern",
            Tok::LabelFormat => "label_format",
            Tok::LineFormat => "line_format",
            Tok::Ip => "ip",
            Tok::Decolorize => "decolorize",
            Tok::Drop => "drop",
            Tok::Keep => "keep",
            Tok::Unwrap => "unwrap",
            Tok::LabelReplace => "label_replace",
            Tok::Vector => "VECTOR",
            Tok::RangeFn(op) => op.token_name(),
            Tok::VectorFn(op) => op.token_name(),
            Tok::BytesConv => "BYTES_CONV",
            Tok::DurationConv => "DURATION_CONV",
            Tok::DurationSecondsConv => "DURATION_SECONDS_CONV",
        };
        f.write_str(text)
    }
}

/// A token with the 1-based position of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
    pub(crate) col: usize,
}

/// Keywords that are always keywords (Loki's `tokens` map).
fn keyword(word: &str) -> Option<Tok> {
    Some(match word {
        "by" => Tok::By,
        "without" => Tok::Without,
        "bool" => Tok::Bool,
        "offset" => Tok::Offset,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "or" => Tok::Or,
        "and" => Tok::And,
        "unless" => Tok::Unless,
        "json" => Tok::Json,
        "regexp" => Tok::Regexp,
        "logfmt" => Tok::Logfmt,
        "unpack" => Tok::Unpack,
        "pattern" => Tok::Pattern,
        "label_format" => Tok::LabelFormat,
        "line_format" => Tok::LineFormat,
        "decolorize" => Tok::Decolorize,
        "drop" => Tok::Drop,
        "keep" => Tok::Keep,
        "unwrap" => Tok::Unwrap,
        _ => return None,
    })
}

/// Keywords only when followed by `(` (Loki's `functionTokens` map).
fn function_keyword(word: &str) -> Option<Tok> {
    if let Some(op) = RangeOp::from_name(word) {
        return Some(Tok::RangeFn(op));
    }
    if let Some(op) = VectorOp::from_name(word) {
        return Some(Tok::VectorFn(op));
    }
    Some(match word {
        "vector" => Tok::Vector,
        "label_replace" => Tok::LabelReplace,
        "bytes" => Tok::BytesConv,
        "duration" => Tok::DurationConv,
        "duration_seconds" => Tok::DurationSecondsConv,
        "ip" => Tok::Ip,
        _ => return None,
    })
}

fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 'u' | 'µ' | 'm' | 's' | 'h' | 'd' | 'w' | 'y')
}

fn is_bytes_rune(c: char) -> bool {
    matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P')
}

fn is_go_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// On-demand lexer over a string.
pub(crate) struct Lexer<'a> {
    chars: Vec<char>,
    input: &'a str,
    pos: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer {
            chars: input.chars().collect(),
            input,
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_char_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    /// Returns the next token, or the lexer error Loki would report.
    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        loop {
            while self.peek_char().is_some_and(is_go_whitespace) {
                self.bump();
            }
            if self.peek_char() == Some('#') {
                while self.peek_char().is_some_and(|c| c != '\n') {
                    self.bump();
                }
                continue;
            }
            break;
        }
        let (line, col) = (self.line, self.col);
        let Some(first) = self.bump() else {
            // text/scanner reports no position when the input is empty.
            let (line, col) = if self.input.is_empty() {
                (0, 0)
            } else {
                (line, col)
            };
            return Ok(Token {
                tok: Tok::Eof,
                line,
                col,
            });
        };
        let err = |message: String| ParseError::at(line, col, message);
        let tok = match first {
            '"' => Tok::Str(self.lex_quoted().map_err(err)?),
            '`' => Tok::Str(self.lex_raw().map_err(err)?),
            '[' => Tok::Range(self.lex_range().map_err(err)?),
            c if c.is_ascii_digit()
                || (c == '.' && self.peek_char().is_some_and(|n| n.is_ascii_digit())) =>
            {
                self.lex_number(c)
            }
            '-' => self.lex_minus(),
            c if c.is_alphabetic() || c == '_' => self.lex_word(c),
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '+' => Tok::Add,
            '*' => Tok::Mul,
            '/' => Tok::Div,
            '%' => Tok::Mod,
            '^' => Tok::Pow,
            '|' => self.two_char(&[('=', Tok::PipeExact), ('~', Tok::PipeMatch)], Tok::Pipe),
            '=' => self.two_char(&[('~', Tok::Re), ('=', Tok::CmpEq)], Tok::Eq),
            '>' => self.two_char(&[('=', Tok::Gte)], Tok::Gt),
            '<' => self.two_char(&[('=', Tok::Lte)], Tok::Lt),
            '!' => self.two_char(&[('=', Tok::Neq), ('~', Tok::Nre)], Tok::Unknown('!')),
            other => Tok::Unknown(other),
        };
        Ok(Token { tok, line, col })
    }

    fn two_char(&mut self, options: &[(char, Tok)], single: Tok) -> Tok {
        if let Some(next) = self.peek_char() {
            if let Some((_, tok)) = options.iter().find(|(c, _)| *c == next) {
                self.bump();
                return tok.clone();
            }
        }
        single
    }

    fn lex_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err("literal not terminated".to_string());
            };
            match c {
                '"' => return Ok(out),
                '\n' => return Err("literal not terminated".to_string()),
                '\\' => self.lex_escape(&mut out)?,
                other => out.push(other),
            }
        }
    }

    fn lex_escape(&mut self, out: &mut String) -> Result<(), String> {
        let invalid = || "invalid char escape".to_string();
        let Some(c) = self.bump() else {
            return Err("literal not terminated".to_string());
        };
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            return Ok(());
        }
        let (radix, digits, first_digit) = match c {
            '0'..='7' => (8, 3, Some(c)),
            'x' => (16, 2, None),
            'u' => (16, 4, None),
            'U' => (16, 8, None),
            _ => return Err(invalid()),
        };
        let mut text = String::new();
        text.extend(first_digit);
        while text.len() < digits {
            match self.peek_char() {
                Some(d) if d.is_digit(radix) => {
                    text.push(d);
                    self.bump();
                }
                _ => return Err(invalid()),
            }
        }
        let value = u32::from_str_radix(&text, radix).map_err(|_| invalid())?;
        match c {
            'x' | '0'..='7' => {
                if value > 0xff {
                    return Err("invalid syntax".to_string());
                }
                if value >= 0x80 {
                    // A raw byte: Go strings may hold it, Rust strings cannot.
                    return Err("invalid UTF-8 rune".to_string());
                }
                out.push(char::from(value as u8));
            }
            _ => out.push(char::from_u32(value).ok_or_else(|| "invalid syntax".to_string())?),
        }
        Ok(())
    }

    fn lex_raw(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err("literal not terminated".to_string()),
                Some('`') => return Ok(out),
                // Go's strconv.Unquote discards carriage returns in raw strings.
                Some('\r') => {}
                Some(c) => out.push(c),
            }
        }
    }

    fn lex_range(&mut self) -> Result<i64, String> {
        let mut text = String::new();
        while let Some(c) = self.bump() {
            if c == ']' {
                return units::parse_prometheus_duration(&text);
            }
            text.push(c);
        }
        Err("missing closing ']' in duration".to_string())
    }

    fn lex_number(&mut self, first: char) -> Tok {
        let mut text = String::from(first);
        let mut seen_dot = first == '.';
        while let Some(c) = self.peek_char() {
            if c.is_ascii_digit() {
                text.push(c);
            } else if c == '.' && !seen_dot {
                seen_dot = true;
                text.push(c);
            } else {
                break;
            }
            self.bump();
        }
        if matches!(self.peek_char(), Some('e' | 'E')) {
            let sign = matches!(self.peek_char_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if self
                .peek_char_at(digit_at)
                .is_some_and(|c| c.is_ascii_digit())
            {
                for _ in 0..digit_at {
                    text.extend(self.bump());
                }
                while let Some(c) = self.peek_char().filter(char::is_ascii_digit) {
                    text.push(c);
                    self.bump();
                }
            }
        }
        if let Some(nanos) = self.try_suffix(&text, is_duration_rune, units::parse_duration_literal)
        {
            return Tok::Duration(nanos);
        }
        if let Some(bytes) = self.try_suffix(&text, is_bytes_rune, units::parse_bytes) {
            return Tok::Bytes(bytes);
        }
        Tok::Number(text)
    }

    /// Loki's `tryScanDuration`/`tryScanBytes`: looks ahead over the run of
    /// digits, unit runes and dots and consumes it only if it parses.
    fn try_suffix<T>(
        &mut self,
        prefix: &str,
        is_unit: fn(char) -> bool,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let run = self.chars[self.pos..]
            .iter()
            .take_while(|c| !c.is_whitespace() && (c.is_numeric() || is_unit(**c) || **c == '.'))
            .count();
        if run == 0 {
            return None;
        }
        let mut text = String::from(prefix);
        text.extend(&self.chars[self.pos..self.pos + run]);
        let value = parse(&text)?;
        for _ in 0..run {
            self.bump();
        }
        Some(value)
    }

    fn lex_minus(&mut self) -> Tok {
        if self.peek_char() == Some('-') {
            let run = self.chars[self.pos..]
                .iter()
                .take_while(|c| c.is_alphabetic() || **c == '-')
                .count();
            let flag: String = std::iter::once('-')
                .chain(self.chars[self.pos..self.pos + run].iter().copied())
                .collect();
            if flag == "--strict" || flag == "--keep-empty" {
                for _ in 0..run {
                    self.bump();
                }
                return Tok::ParserFlag(flag);
            }
        }
        if let Some(nanos) = self.try_suffix("-", is_duration_rune, units::parse_duration_literal) {
            return Tok::Duration(nanos);
        }
        Tok::Sub
    }

    fn lex_word(&mut self, first: char) -> Tok {
        let mut word = String::from(first);
        while let Some(c) = self
            .peek_char()
            .filter(|c| c.is_alphanumeric() || *c == '_')
        {
            word.push(c);
            self.bump();
        }
        if let Some(tok) = function_keyword(&word) {
            if self.is_function_call() {
                return tok;
            }
            return Tok::Ident(word);
        }
        keyword(&word).unwrap_or(Tok::Ident(word))
    }

    /// Loki's `isFunction`: the next non-space input is `(`, or `by`/`without`
    /// followed by `(`.
    fn is_function_call(&self) -> bool {
        let mut index = self.pos;
        let skip_space = |mut i: usize| {
            while self.chars.get(i).is_some_and(|c| c.is_whitespace()) {
                i += 1;
            }
            i
        };
        index = skip_space(index);
        match self.chars.get(index) {
            Some('(') => true,
            _ => {
                for word in ["by", "without"] {
                    let end = index + word.len();
                    if self.chars.len() >= end
                        && self.chars[index..end].iter().copied().eq(word.chars())
                    {
                        return self.chars.get(skip_space(end)) == Some(&'(');
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(input: &str) -> Result<Vec<Tok>, ParseError> {
        let mut lexer = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token()?;
            if token.tok == Tok::Eof {
                return Ok(out);
            }
            out.push(token.tok);
        }
    }

    #[test]
    fn punctuation_and_strings() {
        assert_eq!(
            lex_all(r#"{a="b\n", c!~`x\d`} |= "y" != "z" |~ "w" !~ "v""#).expect("lexes"),
            vec![
                Tok::LBrace,
                Tok::Ident("a".into()),
                Tok::Eq,
                Tok::Str("b\n".into()),
                Tok::Comma,
                Tok::Ident("c".into()),
                Tok::Nre,
                Tok::Str("x\\d".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("y".into()),
                Tok::Neq,
                Tok::Str("z".into()),
                Tok::PipeMatch,
                Tok::Str("w".into()),
                Tok::Nre,
                Tok::Str("v".into()),
            ]
        );
    }

    #[test]
    fn numbers_durations_bytes() {
        assert_eq!(
            lex_all("5 5m 1.5s 5KB 5KiB -5m - 5 1e3 .5 [1h] -0 --strict --keep-empty")
                .expect("lexes"),
            vec![
                Tok::Number("5".into()),
                Tok::Duration(300_000_000_000),
                Tok::Duration(1_500_000_000),
                Tok::Bytes(5000),
                Tok::Bytes(5120),
                Tok::Duration(-300_000_000_000),
                Tok::Sub,
                Tok::Number("5".into()),
                Tok::Number("1e3".into()),
                Tok::Number(".5".into()),
                Tok::Range(3_600_000_000_000),
                Tok::Duration(0),
                Tok::ParserFlag("--strict".into()),
                Tok::ParserFlag("--keep-empty".into()),
            ]
        );
    }

    #[test]
    fn function_names_need_parens() {
        assert_eq!(
            lex_all("sum sum( rate by count_over_time by (x) ip ip(").expect("lexes"),
            vec![
                Tok::Ident("sum".into()),
                Tok::VectorFn(VectorOp::Sum),
                Tok::LParen,
                Tok::Ident("rate".into()),
                Tok::By,
                Tok::RangeFn(RangeOp::CountOverTime),
                Tok::By,
                Tok::LParen,
                Tok::Ident("x".into()),
                Tok::RParen,
                Tok::Ident("ip".into()),
                Tok::Ip,
                Tok::LParen,
            ]
        );
    }

    #[test]
    fn comments_and_positions() {
        let mut lexer = Lexer::new("# c\n  {a}");
        let token = lexer.next_token().expect("lexes");
        assert_eq!((token.tok, token.line, token.col), (Tok::LBrace, 2, 3));
        let mut empty = Lexer::new("");
        let eof = empty.next_token().expect("lexes");
        assert_eq!((eof.line, eof.col), (0, 0));
    }

    #[test]
    fn lexer_errors() {
        let err = lex_all(r#"{a="b"#).expect_err("unterminated");
        assert_eq!(
            err.to_string(),
            "parse error at line 1, col 4: literal not terminated"
        );
        let err = lex_all(r#""\q""#).expect_err("bad escape");
        assert_eq!(
            err.to_string(),
            "parse error at line 1, col 1: invalid char escape"
        );
        let err = lex_all("[5x]").expect_err("bad range");
        assert_eq!(
            err.to_string(),
            "parse error at line 1, col 1: not a valid duration string: \"5x\""
        );
        let err = lex_all("[5m").expect_err("unclosed range");
        assert_eq!(
            err.to_string(),
            "parse error at line 1, col 1: missing closing ']' in duration"
        );
    }
}
