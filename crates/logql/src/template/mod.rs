//! A Go `text/template` engine for `line_format` and `label_format` (the
//! subset Loki users write) and for alerting rules' labels and annotations
//! ([`RuleTemplate`], with Prometheus' functions and data instead).
//! Supported: text and `{{…}}` actions with trim markers and comments;
//! pipelines (`{{ .a | lower | printf "%s" }}`),
//! parenthesized calls, fields (`.a`, `$.a`, `$x.a`, `(…).a`), variables
//! (`$x := …`, `$x = …`), literals (strings, raw strings, chars, numbers,
//! booleans, `nil`), `if`/`else if`/`else`, `range` (with `break`/`continue`),
//! `with`, and every function of [`funcs`]. Not supported: `define`,
//! `template`, `block`.
//!
//! `line_format`'s data is the label map (`map[string]string`,
//! `missingkey=zero`: a missing label reads as `""`).

pub(crate) mod funcs;
pub(crate) mod gotime;
mod humanize;
mod rules;
pub(crate) mod value;

use funcs::{call, truth, Env, Func, FuncSet, RegexCache};
pub use rules::{RuleData, RuleTemplate};
use value::{write_value, Value};

/// The labels a template reads.
pub(crate) trait Data {
    /// A label value (`__error__` and `__error_details__` included).
    fn get(&self, name: &str) -> Option<&str>;
    /// Every label.
    fn each(&self, visit: &mut dyn FnMut(&str, &str));
}

/// Label names a template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refs {
    /// The template may read any label (uses `.` or `$` as a value).
    All,
    /// Only these.
    Names(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(Vec<String>),
    Dot,
    Var(String),
    Ident(String),
    Lit(Value),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Kw(Kw),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    If,
    Else,
    End,
    Range,
    With,
    Break,
    Continue,
    Define,
    Template,
    Block,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    end: usize,
    space_before: bool,
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(Func),
    Lit(Value),
    Nil,
    Pipe(Box<Pipe>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Operand {
    arg: Arg,
    pos: usize,
    text: String,
}

#[derive(Debug, Clone)]
struct Cmd {
    args: Vec<Operand>,
}

#[derive(Debug, Clone, Default)]
struct Pipe {
    decl: Vec<String>,
    assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    With(Vec<(Pipe, Vec<Node>)>, Option<Vec<Node>>),
    Range(Pipe, Vec<Node>, Option<Vec<Node>>),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    name: &'static str,
    src: String,
    nodes: Vec<Node>,
    refs: Refs,
    /// Text and `{{.label}}` only: executed without building values.
    simple: Option<Vec<Piece>>,
}

enum Item {
    Text(String),
    Action(Vec<Token>, usize),
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Go's string unquoting of a `"…"` literal body.
fn go_unquote(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        let code = |chars: &mut std::str::Chars<'_>, n: usize, radix: u32| -> Option<u32> {
            let text: String = chars.by_ref().take(n).collect();
            if text.len() != n {
                return None;
            }
            u32::from_str_radix(&text, radix).ok()
        };
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' | '"' | '\'' => out.push(e),
            'x' => out.push(char::from_u32(code(&mut chars, 2, 16)?)?),
            'u' => out.push(char::from_u32(code(&mut chars, 4, 16)?)?),
            'U' => out.push(char::from_u32(code(&mut chars, 8, 16)?)?),
            '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let value = u32::from_str_radix(&format!("{e}{rest}"), 8).ok()?;
                out.push(char::from_u32(value)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Lexer<'s> {
    src: &'s str,
    name: &'static str,
}

impl<'s> Lexer<'s> {
    fn line_of(&self, pos: usize) -> usize {
        1 + self.src[..pos.min(self.src.len())].matches('\n').count()
    }

    fn error(&self, pos: usize, msg: impl std::fmt::Display) -> String {
        format!("template: {}:{}: {msg}", self.name, self.line_of(pos))
    }

    fn items(&self) -> Result<Vec<Item>, String> {
        let src = self.src;
        let bytes = src.as_bytes();
        let mut items = Vec::new();
        let mut pos = 0;
        let mut trim_next = false;
        while pos <= src.len() {
            let open = src[pos..].find("{{").map(|p| p + pos);
            let text_end = open.unwrap_or(src.len());
            let mut text = &src[pos..text_end];
            if trim_next {
                text = text.trim_start_matches([' ', '\t', '\r', '\n']);
            }
            let Some(open) = open else {
                if !text.is_empty() {
                    items.push(Item::Text(text.to_string()));
                }
                break;
            };
            let mut inner = open + 2;
            if bytes.get(inner) == Some(&b'-') && bytes.get(inner + 1).is_some_and(|&c| is_space(c))
            {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
                inner += 2;
            }
            if !text.is_empty() {
                items.push(Item::Text(text.to_string()));
            }
            let (tokens, close, trim) = self.lex_action(inner)?;
            if !tokens.is_empty() {
                items.push(Item::Action(tokens, open));
            }
            trim_next = trim;
            pos = close;
        }
        Ok(items)
    }

    /// Lexes from just after `{{` (and its trim marker) to after `}}`.
    fn lex_action(&self, start: usize) -> Result<(Vec<Token>, usize, bool), String> {
        let src = self.src;
        let b = src.as_bytes();
        let mut i = start;
        let mut tokens = Vec::new();
        let mut space = true;
        // Comments.
        let after_ws = i + src[i..].len() - src[i..].trim_start().len();
        if src[after_ws..].starts_with("/*") {
            let end = src[after_ws + 2..]
                .find("*/")
                .map(|p| p + after_ws + 2)
                .ok_or_else(|| self.error(start, "unclosed comment"))?;
            let mut j = end + 2;
            let mut trim = false;
            let rest = &src[j..];
            let stripped = rest.trim_start();
            if stripped.starts_with("-}}") && stripped.len() < rest.len() {
                trim = true;
                j += rest.len() - stripped.len() + 1;
            } else {
                j += rest.len() - stripped.len();
            }
            if !src[j..].starts_with("}}") {
                return Err(self.error(start, "comment ends before closing delimiter"));
            }
            return Ok((Vec::new(), j + 2, trim));
        }
        loop {
            if i >= b.len() {
                return Err(self.error(start, "unclosed action"));
            }
            let c = b[i];
            if is_space(c) {
                // Right trim marker ` -}}`.
                if src[i + 1..].starts_with("-}}") {
                    return Ok((tokens, i + 4, true));
                }
                space = true;
                i += 1;
                continue;
            }
            if src[i..].starts_with("}}") {
                return Ok((tokens, i + 2, false));
            }
            let pos = i;
            let tok = match c {
                b'|' => {
                    i += 1;
                    Tok::Pipe
                }
                b'(' => {
                    i += 1;
                    Tok::LParen
                }
                b')' => {
                    i += 1;
                    Tok::RParen
                }
                b',' => {
                    i += 1;
                    Tok::Comma
                }
                b':' if b.get(i + 1) == Some(&b'=') => {
                    i += 2;
                    Tok::Declare
                }
                b'=' => {
                    i += 1;
                    Tok::Assign
                }
                b'"' => {
                    let mut j = i + 1;
                    let mut escaped = false;
                    loop {
                        let Some(&d) = b.get(j) else {
                            return Err(self.error(pos, "unterminated quoted string"));
                        };
                        if d == b'\n' {
                            return Err(self.error(pos, "unterminated quoted string"));
                        }
                        if escaped {
                            escaped = false;
                        } else if d == b'\\' {
                            escaped = true;
                        } else if d == b'"' {
                            break;
                        }
                        j += 1;
                    }
                    let body = &src[i + 1..j];
                    i = j + 1;
                    Tok::Lit(Value::Str(
                        go_unquote(body).ok_or_else(|| self.error(pos, "invalid syntax"))?,
                    ))
                }
                b'`' => {
                    let end = src[i + 1..]
                        .find('`')
                        .map(|p| p + i + 1)
                        .ok_or_else(|| self.error(pos, "unterminated raw quoted string"))?;
                    let body = src[i + 1..end].replace('\r', "");
                    i = end + 1;
                    Tok::Lit(Value::Str(body))
                }
                b'\'' => {
                    let end = src[i + 1..]
                        .find('\'')
                        .map(|p| p + i + 1)
                        .ok_or_else(|| self.error(pos, "unterminated character constant"))?;
                    let text = go_unquote(&src[i + 1..end])
                        .filter(|t| t.chars().count() == 1)
                        .ok_or_else(|| self.error(pos, "malformed character constant"))?;
                    i = end + 1;
                    Tok::Lit(Value::Int(i64::from(
                        text.chars().next().map_or(0, u32::from),
                    )))
                }
                b'.' if b.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.number(&mut i, pos)?
                }
                b'.' => {
                    let mut names = Vec::new();
                    while b.get(i) == Some(&b'.') {
                        let name_len = ident_len(&src[i + 1..]);
                        if name_len == 0 {
                            break;
                        }
                        names.push(src[i + 1..i + 1 + name_len].to_string());
                        i += 1 + name_len;
                    }
                    if names.is_empty() {
                        i += 1;
                        Tok::Dot
                    } else {
                        Tok::Field(names)
                    }
                }
                b'$' => {
                    let name_len = ident_len(&src[i + 1..]);
                    let name = format!("${}", &src[i + 1..i + 1 + name_len]);
                    i += 1 + name_len;
                    Tok::Var(name)
                }
                b'0'..=b'9' => self.number(&mut i, pos)?,
                b'-' | b'+'
                    if b.get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == b'.') =>
                {
                    self.number(&mut i, pos)?
                }
                _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    let len = ident_len(&src[i..]);
                    if len == 0 {
                        return Err(self.error(
                            pos,
                            format!(
                                "unexpected {:?} in command",
                                &src[i..].chars().next().unwrap_or(' ')
                            ),
                        ));
                    }
                    let word = &src[i..i + len];
                    i += len;
                    match word {
                        "if" => Tok::Kw(Kw::If),
                        "else" => Tok::Kw(Kw::Else),
                        "end" => Tok::Kw(Kw::End),
                        "range" => Tok::Kw(Kw::Range),
                        "with" => Tok::Kw(Kw::With),
                        "break" => Tok::Kw(Kw::Break),
                        "continue" => Tok::Kw(Kw::Continue),
                        "define" => Tok::Kw(Kw::Define),
                        "template" => Tok::Kw(Kw::Template),
                        "block" => Tok::Kw(Kw::Block),
                        "true" => Tok::Lit(Value::Bool(true)),
                        "false" => Tok::Lit(Value::Bool(false)),
                        "nil" => Tok::Nil,
                        _ => Tok::Ident(word.to_string()),
                    }
                }
                _ => {
                    let shown = src[i..].chars().next().unwrap_or(' ');
                    return Err(self.error(pos, format!("unexpected {shown:?} in command")));
                }
            };
            tokens.push(Token {
                tok,
                pos,
                end: i,
                space_before: space,
            });
            space = false;
        }
    }

    fn number(&self, i: &mut usize, pos: usize) -> Result<Tok, String> {
        let b = self.src.as_bytes();
        let mut j = *i;
        if matches!(b[j], b'+' | b'-') {
            j += 1;
        }
        while j < b.len() {
            let c = b[j];
            let exp_sign =
                matches!(c, b'+' | b'-') && matches!(b[j - 1], b'e' | b'E' | b'p' | b'P');
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exp_sign {
                j += 1;
            } else {
                break;
            }
        }
        let text = &self.src[*i..j];
        *i = j;
        let bad = || self.error(pos, format!("bad number syntax: {text:?}"));
        let lower = text.to_ascii_lowercase();
        let is_hex = lower.trim_start_matches(['+', '-']).starts_with("0x");
        if !is_hex && (lower.contains('.') || lower.contains('e')) {
            return text
                .replace('_', "")
                .parse::<f64>()
                .map(|f| Tok::Lit(Value::Float(f)))
                .map_err(|_| bad());
        }
        let (neg, body) = match lower.strip_prefix('-') {
            Some(rest) => (true, rest.to_string()),
            None => (false, lower.trim_start_matches('+').to_string()),
        };
        let body = body.replace('_', "");
        let parsed = if let Some(hex) = body.strip_prefix("0x") {
            i64::from_str_radix(hex, 16).ok()
        } else if let Some(bin) = body.strip_prefix("0b") {
            i64::from_str_radix(bin, 2).ok()
        } else if let Some(oct) = body.strip_prefix("0o") {
            i64::from_str_radix(oct, 8).ok()
        } else if body.len() > 1 && body.starts_with('0') {
            i64::from_str_radix(&body[1..], 8).ok()
        } else {
            body.parse().ok()
        };
        let value = parsed.ok_or_else(bad)?;
        Ok(Tok::Lit(Value::Int(if neg { -value } else { value })))
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

struct Parser<'s> {
    lexer: Lexer<'s>,
    items: Vec<Item>,
    next: usize,
    vars: Vec<String>,
    refs_all: bool,
    refs: Vec<String>,
    range_depth: usize,
    funcs: FuncSet,
}

enum Stop {
    Eof,
    End,
    Else(Vec<Token>, usize),
}

impl<'s> Parser<'s> {
    fn error(&self, pos: usize, msg: impl std::fmt::Display) -> String {
        self.lexer.error(pos, msg)
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while self.next < self.items.len() {
            let index = self.next;
            self.next += 1;
            let (tokens, pos) = match &self.items[index] {
                Item::Text(text) => {
                    nodes.push(Node::Text(text.clone()));
                    continue;
                }
                Item::Action(tokens, pos) => (tokens.clone(), *pos),
            };
            match tokens[0].tok {
                Tok::Kw(Kw::End) => {
                    if tokens.len() > 1 {
                        return Err(self.error(pos, "unexpected token in end"));
                    }
                    return Ok((nodes, Stop::End));
                }
                Tok::Kw(Kw::Else) => return Ok((nodes, Stop::Else(tokens[1..].to_vec(), pos))),
                Tok::Kw(Kw::If) | Tok::Kw(Kw::With) => {
                    let with = tokens[0].tok == Tok::Kw(Kw::With);
                    nodes.push(self.conditional(tokens[1..].to_vec(), pos, with)?);
                }
                Tok::Kw(Kw::Range) => {
                    let scope = self.vars.len();
                    let pipe = self.pipeline(&tokens[1..], pos, true)?;
                    self.range_depth += 1;
                    let (body, end) = self.list()?;
                    let otherwise = match end {
                        Stop::End => None,
                        Stop::Else(rest, epos) => {
                            if !rest.is_empty() {
                                return Err(self.error(epos, "unexpected token in else"));
                            }
                            let (other, end) = self.list()?;
                            if !matches!(end, Stop::End) {
                                return Err(self.error(pos, "expected end; found else"));
                            }
                            Some(other)
                        }
                        Stop::Eof => return Err(self.error(pos, "unexpected EOF")),
                    };
                    self.range_depth -= 1;
                    self.vars.truncate(scope);
                    nodes.push(Node::Range(pipe, body, otherwise));
                }
                Tok::Kw(Kw::Break) | Tok::Kw(Kw::Continue) => {
                    if self.range_depth == 0 {
                        return Err(self.error(pos, "{{break}} outside {{range}}"));
                    }
                    nodes.push(if tokens[0].tok == Tok::Kw(Kw::Break) {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                Tok::Kw(kw @ (Kw::Define | Kw::Template | Kw::Block)) => {
                    return Err(self.error(
                        pos,
                        format!("{{{{{kw:?}}}}} is not supported").to_lowercase(),
                    ));
                }
                _ => {
                    let pipe = self.pipeline(&tokens, pos, false)?;
                    nodes.push(Node::Action(pipe));
                }
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn conditional(&mut self, tokens: Vec<Token>, pos: usize, with: bool) -> Result<Node, String> {
        let scope = self.vars.len();
        let mut branches = Vec::new();
        let mut cond = tokens;
        let mut cond_pos = pos;
        loop {
            let pipe = self.pipeline(&cond, cond_pos, false)?;
            let (body, end) = self.list()?;
            branches.push((pipe, body));
            match end {
                Stop::End => {
                    self.vars.truncate(scope);
                    return Ok(if with {
                        Node::With(branches, None)
                    } else {
                        Node::If(branches, None)
                    });
                }
                Stop::Eof => return Err(self.error(pos, "unexpected EOF")),
                Stop::Else(rest, epos) => {
                    let chained = match rest.first().map(|t| &t.tok) {
                        Some(Tok::Kw(Kw::If)) if !with => true,
                        Some(Tok::Kw(Kw::With)) if with => true,
                        None => false,
                        Some(_) => return Err(self.error(epos, "unexpected token in else")),
                    };
                    if chained {
                        cond = rest[1..].to_vec();
                        cond_pos = epos;
                        continue;
                    }
                    let (other, end) = self.list()?;
                    if !matches!(end, Stop::End) {
                        return Err(self.error(epos, "expected end; found else"));
                    }
                    self.vars.truncate(scope);
                    return Ok(if with {
                        Node::With(branches, Some(other))
                    } else {
                        Node::If(branches, Some(other))
                    });
                }
            }
        }
    }

    fn pipeline(&mut self, tokens: &[Token], pos: usize, range: bool) -> Result<Pipe, String> {
        let mut pipe = Pipe::default();
        let mut rest = tokens;
        // Declarations: `$x :=`, `$x =`, and in range `$i, $e :=`.
        let decl_end = rest
            .iter()
            .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign));
        if let Some(end) = decl_end {
            let names: Vec<&Token> = rest[..end].iter().collect();
            let mut decl = Vec::new();
            let mut expect_var = true;
            for token in &names {
                match (&token.tok, expect_var) {
                    (Tok::Var(name), true) => {
                        decl.push(name.clone());
                        expect_var = false;
                    }
                    (Tok::Comma, false) if range => expect_var = true,
                    _ => {
                        decl.clear();
                        break;
                    }
                }
            }
            if !decl.is_empty() && !expect_var && decl.len() <= if range { 2 } else { 1 } {
                pipe.assign = rest[end].tok == Tok::Assign;
                if pipe.assign {
                    for name in &decl {
                        if !self.vars.contains(name) {
                            return Err(self.error(pos, format!("undefined variable \"{name}\"")));
                        }
                    }
                }
                pipe.decl = decl;
                rest = &rest[end + 1..];
            }
        }
        if rest.is_empty() {
            return Err(self.error(pos, "missing value for command"));
        }
        let mut depth = 0usize;
        let mut start = 0usize;
        for (index, token) in rest.iter().enumerate() {
            match token.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => depth = depth.saturating_sub(1),
                Tok::Pipe if depth == 0 => {
                    pipe.cmds.push(self.command(&rest[start..index], pos)?);
                    start = index + 1;
                }
                _ => {}
            }
        }
        pipe.cmds.push(self.command(&rest[start..], pos)?);
        if !pipe.assign {
            for name in &pipe.decl {
                self.vars.push(name.clone());
            }
        }
        Ok(pipe)
    }

    fn command(&mut self, tokens: &[Token], pos: usize) -> Result<Cmd, String> {
        if tokens.is_empty() {
            return Err(self.error(pos, "missing value for command"));
        }
        let mut args = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let token = &tokens[i];
            let start = token.pos;
            let mut end = token.end;
            let mut arg = match &token.tok {
                Tok::Dot => {
                    self.refs_all = true;
                    Arg::Dot
                }
                Tok::Field(names) => {
                    self.refs.push(names[0].clone());
                    Arg::Field(names.clone())
                }
                Tok::Var(name) => {
                    if name != "$" && !self.vars.contains(name) {
                        return Err(self.error(token.pos, format!("undefined variable \"{name}\"")));
                    }
                    Arg::Var(name.clone(), Vec::new())
                }
                Tok::Ident(name) => {
                    Arg::Func(Func::from_name(name, self.funcs).ok_or_else(|| {
                        self.error(token.pos, format!("function \"{name}\" not defined"))
                    })?)
                }
                Tok::Lit(value) => Arg::Lit(value.clone()),
                Tok::Nil => Arg::Nil,
                Tok::LParen => {
                    let mut depth = 0usize;
                    let close = tokens[i..]
                        .iter()
                        .position(|t| match t.tok {
                            Tok::LParen => {
                                depth += 1;
                                false
                            }
                            Tok::RParen => {
                                depth -= 1;
                                depth == 0
                            }
                            _ => false,
                        })
                        .map(|p| p + i)
                        .ok_or_else(|| self.error(token.pos, "unclosed left paren"))?;
                    let inner = self.pipeline(&tokens[i + 1..close], token.pos, false)?;
                    if !inner.decl.is_empty() {
                        return Err(self
                            .error(token.pos, "parenthesized pipeline cannot declare variables"));
                    }
                    end = tokens[close].end;
                    i = close;
                    Arg::Pipe(Box::new(inner), Vec::new())
                }
                Tok::RParen => return Err(self.error(token.pos, "unexpected right paren")),
                Tok::Pipe | Tok::Declare | Tok::Assign | Tok::Comma | Tok::Kw(_) => {
                    return Err(self.error(token.pos, "unexpected token in operand"));
                }
            };
            // Field chains glued to a variable or a parenthesized pipeline.
            while let Some(next) = tokens.get(i + 1) {
                let Tok::Field(names) = &next.tok else {
                    break;
                };
                if next.space_before {
                    break;
                }
                match &mut arg {
                    Arg::Var(_, chain) | Arg::Pipe(_, chain) => chain.extend(names.iter().cloned()),
                    _ => break,
                }
                end = next.end;
                i += 1;
            }
            if let Arg::Var(name, chain) = &arg {
                if name == "$" {
                    match chain.first() {
                        Some(first) => self.refs.push(first.clone()),
                        None => self.refs_all = true,
                    }
                }
            }
            args.push(Operand {
                arg,
                pos: start,
                text: self.lexer.src[start..end].to_string(),
            });
            i += 1;
        }
        Ok(Cmd { args })
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'e> {
    tmpl: &'e Template,
    data: &'e dyn Data,
    line: &'e str,
    ts: i64,
    cache: &'e mut RegexCache,
    vars: Vec<(String, Value)>,
}

impl Template {
    /// Parses a `line_format` / `label_format` template; `name` is Go's
    /// template name in messages (`line`, `label`).
    pub(crate) fn parse(name: &'static str, src: &str) -> Result<Template, String> {
        Template::parse_with(name, src, FuncSet::LineFormat, &[])
    }

    /// Parses `src` with the functions of `funcs`; `vars` are variables
    /// defined before the template starts (given values at execution).
    pub(crate) fn parse_with(
        name: &'static str,
        src: &str,
        funcs: FuncSet,
        vars: &[&str],
    ) -> Result<Template, String> {
        let lexer = Lexer { src, name };
        let items = lexer.items()?;
        let mut parser = Parser {
            lexer,
            items,
            next: 0,
            vars: std::iter::once("$")
                .chain(vars.iter().copied())
                .map(str::to_string)
                .collect(),
            refs_all: false,
            refs: Vec::new(),
            range_depth: 0,
            funcs,
        };
        let (nodes, end) = parser.list()?;
        match end {
            Stop::Eof => {}
            Stop::End => return Err(parser.error(src.len(), "unexpected {{end}}")),
            Stop::Else(_, pos) => return Err(parser.error(pos, "unexpected {{else}}")),
        }
        let refs = if parser.refs_all {
            Refs::All
        } else {
            let mut names = parser.refs;
            names.sort();
            names.dedup();
            Refs::Names(names)
        };
        // The fast path reads fields of the label map, which is the dot of
        // `line_format` only.
        let simple = (funcs == FuncSet::LineFormat && vars.is_empty())
            .then(|| {
                nodes
                    .iter()
                    .map(|node| match node {
                        Node::Text(text) => Some(Piece::Text(text.clone())),
                        Node::Action(pipe) if pipe.decl.is_empty() && pipe.cmds.len() == 1 => {
                            match pipe.cmds[0].args.as_slice() {
                                [Operand {
                                    arg: Arg::Field(names),
                                    ..
                                }] if names.len() == 1 => Some(Piece::Field(names[0].clone())),
                                _ => None,
                            }
                        }
                        _ => None,
                    })
                    .collect::<Option<Vec<Piece>>>()
            })
            .flatten();
        Ok(Template {
            name,
            src: src.to_string(),
            nodes,
            refs,
            simple,
        })
    }

    /// Labels the template reads.
    pub(crate) fn refs(&self) -> &Refs {
        &self.refs
    }

    /// Renders into `out` (cleared first). On error `out` holds partial output.
    pub(crate) fn execute(
        &self,
        data: &dyn Data,
        line: &str,
        ts: i64,
        cache: &mut RegexCache,
        out: &mut String,
    ) -> Result<(), String> {
        out.clear();
        if let Some(pieces) = &self.simple {
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Field(name) => out.push_str(data.get(name).unwrap_or("")),
                }
            }
            return Ok(());
        }
        let mut exec = Exec {
            tmpl: self,
            data,
            line,
            ts,
            cache,
            vars: vec![("$".to_string(), Value::Labels)],
        };
        exec.walk(&self.nodes, &Value::Labels, out).map(|_| ())
    }

    /// Renders into `out` (cleared first) with `dot` as the data and `vars`
    /// the values of the variables given to [`Template::parse_with`];
    /// [`Value::Labels`] reads `labels`.
    pub(crate) fn execute_with(
        &self,
        labels: &dyn Data,
        dot: Value,
        vars: Vec<(String, Value)>,
        cache: &mut RegexCache,
        out: &mut String,
    ) -> Result<(), String> {
        out.clear();
        let mut exec = Exec {
            tmpl: self,
            data: labels,
            line: "",
            ts: 0,
            cache,
            vars: std::iter::once(("$".to_string(), dot.clone()))
                .chain(vars)
                .collect(),
        };
        exec.walk(&self.nodes, &dot, out).map(|_| ())
    }

    fn location(&self, pos: usize) -> String {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        format!("{}:{line}:{col}", self.name)
    }
}

impl Exec<'_> {
    fn fail(&self, operand: &Operand, msg: &str) -> String {
        format!(
            "template: {}: executing \"{}\" at <{}>: {msg}",
            self.tmpl.location(operand.pos),
            self.tmpl.name,
            operand.text
        )
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value, out: &mut String) -> Result<Flow, String> {
        for node in nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipe) => {
                    let value = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let data = self.data;
                        write_value(out, &value, &|visit| data.each(visit));
                    }
                }
                Node::If(branches, otherwise) | Node::With(branches, otherwise) => {
                    let with = matches!(node, Node::With(..));
                    let scope = self.vars.len();
                    let mut taken = false;
                    for (cond, body) in branches {
                        let value = self.pipe(cond, dot)?;
                        if self.truth(&value) {
                            taken = true;
                            let flow = if with {
                                self.walk(body, &value, out)?
                            } else {
                                self.walk(body, dot, out)?
                            };
                            if !matches!(flow, Flow::Normal) {
                                self.vars.truncate(scope);
                                return Ok(flow);
                            }
                            break;
                        }
                    }
                    if !taken {
                        if let Some(other) = otherwise {
                            let flow = self.walk(other, dot, out)?;
                            if !matches!(flow, Flow::Normal) {
                                self.vars.truncate(scope);
                                return Ok(flow);
                            }
                        }
                    }
                    self.vars.truncate(scope);
                }
                Node::Range(pipe, body, otherwise) => {
                    let scope = self.vars.len();
                    let mut plain = pipe.clone();
                    plain.decl.clear();
                    let value = self.pipe(&plain, dot)?;
                    let data = self.data;
                    let items: Vec<(Value, Value)> = match value {
                        Value::List(list) => list
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::Int(i as i64), v))
                            .collect(),
                        Value::Map(map) => {
                            map.into_iter().map(|(k, v)| (Value::Str(k), v)).collect()
                        }
                        Value::StrMap(map) => map
                            .into_iter()
                            .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                            .collect(),
                        Value::Labels => {
                            let mut pairs = Vec::new();
                            data.each(&mut |n, v| pairs.push((n.to_string(), v.to_string())));
                            pairs.sort();
                            pairs
                                .into_iter()
                                .map(|(k, v)| (Value::Str(k), Value::Str(v)))
                                .collect()
                        }
                        Value::Int(n) => (0..n.clamp(0, 1 << 20))
                            .map(|i| (Value::Int(i), Value::Int(i)))
                            .collect(),
                        Value::Nil => Vec::new(),
                        other => {
                            let text = value::sprint_one(&other, &|visit| data.each(visit));
                            let operand = &pipe.cmds[0].args[0];
                            return Err(
                                self.fail(operand, &format!("range can't iterate over {text}"))
                            );
                        }
                    };
                    if items.is_empty() {
                        if let Some(other) = otherwise {
                            self.walk(other, dot, out)?;
                        }
                    }
                    for (key, item) in items {
                        let inner = self.vars.len();
                        match pipe.decl.as_slice() {
                            [one] => self.vars.push((one.clone(), item.clone())),
                            [k, v] => {
                                self.vars.push((k.clone(), key));
                                self.vars.push((v.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        let flow = self.walk(body, &item, out)?;
                        self.vars.truncate(inner);
                        if let Flow::Break = flow {
                            break;
                        }
                    }
                    self.vars.truncate(scope);
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn truth(&self, value: &Value) -> bool {
        match value {
            Value::Labels => {
                let mut any = false;
                self.data.each(&mut |_, _| any = true);
                any
            }
            other => truth(other, false),
        }
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, String> {
        let mut prev: Option<Value> = None;
        for cmd in &pipe.cmds {
            prev = Some(self.cmd(cmd, dot, prev)?);
        }
        let value = prev.unwrap_or(Value::Nil);
        if let Some(name) = pipe.decl.first() {
            if pipe.assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = value.clone();
                }
            } else {
                self.vars.push((name.clone(), value.clone()));
            }
        }
        Ok(value)
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, prev: Option<Value>) -> Result<Value, String> {
        let first = &cmd.args[0];
        if let Arg::Func(func) = first.arg {
            let mut args = Vec::with_capacity(cmd.args.len());
            for operand in &cmd.args[1..] {
                args.push(self.arg(operand, dot)?);
            }
            if let Some(prev) = prev {
                args.push(prev);
            }
            return self.call(func, args, first);
        }
        if cmd.args.len() > 1 || prev.is_some() {
            return Err(self.fail(
                first,
                &format!("can't give argument to non-function {}", first.text),
            ));
        }
        if let Arg::Nil = first.arg {
            return Err(self.fail(first, "nil is not a command"));
        }
        self.arg(first, dot)
    }

    fn call(&mut self, func: Func, args: Vec<Value>, at: &Operand) -> Result<Value, String> {
        let data = self.data;
        let labels = |visit: &mut dyn FnMut(&str, &str)| data.each(visit);
        let label = |name: &str| data.get(name).map(str::to_string);
        let mut env = Env {
            line: self.line,
            ts: self.ts,
            labels: &labels,
            label: &label,
            cache: self.cache,
        };
        call(func, args, &mut env).map_err(|err| match err.strip_prefix('!') {
            Some(plain) => self.fail(at, plain),
            None => self.fail(at, &format!("error calling {}: {err}", func.name())),
        })
    }

    fn arg(&mut self, operand: &Operand, dot: &Value) -> Result<Value, String> {
        match &operand.arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(names) => self.fields(dot.clone(), names, operand),
            Arg::Var(name, chain) => {
                let value = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map_or(Value::Nil, |(_, v)| v.clone());
                self.fields(value, chain, operand)
            }
            Arg::Func(func) => self.call(*func, Vec::new(), operand),
            Arg::Lit(value) => Ok(value.clone()),
            Arg::Nil => Ok(Value::Nil),
            Arg::Pipe(pipe, chain) => {
                let value = self.pipe(pipe, dot)?;
                self.fields(value, chain, operand)
            }
        }
    }

    fn fields(
        &self,
        mut value: Value,
        names: &[String],
        operand: &Operand,
    ) -> Result<Value, String> {
        for name in names {
            value = match value {
                Value::Labels => Value::Str(self.data.get(name).unwrap_or("").to_string()),
                Value::StrMap(entries) => Value::Str(funcs::str_map_get(&entries, name)),
                Value::Map(entries) => entries
                    .into_iter()
                    .find(|(k, _)| k == name)
                    .map_or(Value::Nil, |(_, v)| v),
                Value::Nil => {
                    return Err(self.fail(
                        operand,
                        &format!("nil pointer evaluating interface {{}}.{name}"),
                    ))
                }
                other => {
                    return Err(self.fail(
                        operand,
                        &format!("can't evaluate field {name} in type {}", other.type_name()),
                    ))
                }
            };
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map(Vec<(&'static str, &'static str)>);

    impl Data for Map {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
        fn each(&self, visit: &mut dyn FnMut(&str, &str)) {
            for (n, v) in &self.0 {
                visit(n, v);
            }
        }
    }

    fn render(src: &str) -> Result<String, String> {
        let data = Map(vec![
            ("level", "error"),
            ("msg", "Hello World"),
            ("status", "503"),
            ("dur", "1m30s"),
            ("size", "2KiB"),
            ("path", "/a b"),
            ("json", r#"{"a":{"b":"c"},"n":1}"#),
        ]);
        let template = Template::parse("line", src)?;
        let mut out = String::new();
        let mut cache = RegexCache::default();
        template.execute(
            &data,
            "the line",
            1_700_000_000_000_000_000,
            &mut cache,
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("{{.level}} {{.msg}}", "error Hello World"),
            ("{{.missing}}|", "|"),
            ("{{ .level | ToUpper }}", "ERROR"),
            ("{{ .msg | lower | replace \"world\" \"there\" }}", "hello there"),
            ("{{ if eq .level \"error\" }}E{{ else if eq .level \"warn\" }}W{{ else }}I{{ end }}", "E"),
            ("{{ if and (eq .level \"x\") .msg }}a{{ else }}b{{ end }}", "b"),
            ("{{ $x := .status }}{{ $x }}-{{ $x = \"1\" }}{{ $x }}", "503-1"),
            ("{{ printf \"%s=%05d\" .level 42 }}", "error=00042"),
            ("{{ __line__ }}", "the line"),
            ("{{ __timestamp__ | date \"2006-01-02T15:04:05Z07:00\" }}", "2023-11-14T22:13:20Z"),
            ("{{ __timestamp__ | unixEpochMillis }}", "1700000000000"),
            ("{{ .status | add 1 }}", "504"),
            ("{{ div 7 2 }} {{ mod 7 2 }} {{ mul 2 3 4 }} {{ sub 5 7 }}", "3 1 24 -2"),
            ("{{ addf 1.5 2 }} {{ divf 1 4 }} {{ maxf 1 2.5 }} {{ round 3.14159 2 }}", "3.5 0.25 2.5 3.14"),
            ("{{ .dur | duration }} {{ .size | bytes }}", "90 2048"),
            ("{{ regexReplaceAll \"(\\\\w+) (\\\\w+)\" .msg \"${2}_$1\" }}", "World_Hello"),
            ("{{ regexReplaceAllLiteral \"o\" .msg \"$1\" }}", "Hell$1 W$1rld"),
            ("{{ count \"o\" .msg }}", "2"),
            ("{{ .path | urlencode }}|{{ \"a%20b\" | urldecode }}", "%2Fa+b|a b"),
            ("{{ .msg | b64enc }}|{{ \"aGk=\" | b64dec }}", "SGVsbG8gV29ybGQ=|hi"),
            ("{{ trunc 5 .msg }}|{{ substr 1 3 .msg }}|{{ title \"a b\" }}", "Hello|el|A B"),
            ("{{ contains \"World\" .msg }} {{ hasPrefix \"He\" .msg }} {{ hasSuffix \"x\" .msg }}", "true true false"),
            ("{{ indent 2 \"a\\nb\" }}|{{ nindent 1 \"c\" }}", "  a\n  b|\n c"),
            ("{{ repeat 3 \"ab\" }} {{ trim \"  x \" }} {{ trimAll \"-\" \"--x--\" }}", "ababab x x"),
            ("{{ trimSuffix \"ld\" .msg }} {{ trimPrefix \"He\" .msg }}", "Hello Wor llo World"),
            ("{{ Replace .msg \"l\" \"L\" 2 }} {{ Trim \"xxaxx\" \"x\" }} {{ TrimSpace \" a \" }}", "HeLLo World a a"),
            ("{{ TrimLeft \"xxa\" \"x\" }}{{ TrimRight \"axx\" \"x\" }}{{ TrimPrefix \"ab\" \"a\" }}{{ TrimSuffix \"ab\" \"b\" }}", "aaba"),
            ("{{ .nothing | default \"none\" }} {{ .level | default \"none\" }}", "none error"),
            ("{{ int \"42\" }} {{ float64 \"1.5\" }} {{ max 1 5 3 }} {{ min 4 2 }} {{ minf 1.5 0.5 }}", "42 1.5 5 2 0.5"),
            ("{{ ceil 1.2 }} {{ floor 1.8 }}", "2 1"),
            ("{{ (fromJson .json).a.b }} {{ (fromJson .json).n }}", "c 1"),
            ("{{ len .msg }} {{ index . \"level\" }} {{ slice .msg 0 5 }}", "11 error Hello"),
            ("{{ lt 1 2 }} {{ ge \"b\" \"a\" }} {{ ne .level \"x\" }} {{ not true }}", "true true true false"),
            ("{{ or \"\" .level }} {{ and 1 0 }}", "error 0"),
            ("{{ print 1 2 \"a\" \"b\" 3 }}", "1 2ab3"),
            ("{{- \" x \" -}}  \n {{ \"y\" }}", " x y"),
            ("a {{/* comment */}} b", "a  b"),
            ("{{ range $i, $e := (fromJson \"[1,2,3]\") }}{{ if eq $i 1 }}{{ continue }}{{ end }}{{ $e }};{{ end }}", "1;3;"),
            ("{{ with .level }}[{{ . }}]{{ end }}{{ with .none }}x{{ else }}y{{ end }}", "[error]y"),
            ("{{ toDate \"2006-01-02\" \"2024-03-04\" | unixEpoch }}", "1709510400"),
            ("{{ toDateInZone \"2006-01-02 15:04\" \"UTC\" \"2024-03-04 10:00\" | date \"Jan 2 15h\" }}", "Mar 4 10h"),
            ("{{ \"x\" | printf \"%q\" }}", "\"x\""),
            ("{{ 'a' }} {{ 0x10 }} {{ -1.5 }} {{ `raw\\n` }}", "97 16 -1.5 raw\\n"),
            ("{{ alignLeft 3 \"abcdef\" }}|{{ alignRight 4 \"ab\" }}", "abc|  ab"),
            ("{{ urlquery \"a b\" }} {{ html \"<a>\" }}", "a+b &lt;a&gt;"),
        ];
        for (src, want) in cases {
            assert_eq!(render(src).as_deref(), Ok(*want), "{src}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(
            render("{{ foo }}").expect_err("undefined"),
            "template: line:1: function \"foo\" not defined"
        );
        assert_eq!(
            render("{{ .a ").expect_err("unclosed"),
            "template: line:1: unclosed action"
        );
        assert_eq!(
            render("{{ div 1 0 }}").expect_err("div"),
            "template: line:1:3: executing \"line\" at <div>: error calling div: runtime error: integer divide by zero"
        );
        assert_eq!(
            render("{{.level.x}}").expect_err("field"),
            "template: line:1:2: executing \"line\" at <.level.x>: can't evaluate field x in type string"
        );
        assert!(render("{{ if .a }}").is_err());
        assert!(render("{{ end }}").is_err());
        assert!(render("{{ $x }}").is_err());
        assert!(render("{{ ToUpper 1 }}").is_err());
        assert!(render("{{ regexReplaceAll \"(\" .msg \"\" }}").is_err());
        assert!(render("{{ .level 1 }}").is_err());
    }

    #[test]
    fn refs() {
        let t = Template::parse("line", "{{.a}} {{ .b | lower }} {{ $.c }}").expect("valid");
        assert_eq!(
            t.refs(),
            &Refs::Names(vec!["a".into(), "b".into(), "c".into()])
        );
        let t = Template::parse("line", "{{ index . \"a\" }}").expect("valid");
        assert_eq!(t.refs(), &Refs::All);
        let t = Template::parse("line", "{{ __line__ }}").expect("valid");
        assert_eq!(t.refs(), &Refs::Names(vec![]));
    }
}
