//! Templating of alert labels and annotations: the part of Go's
//! `text/template`, as Prometheus sets it up for rules, that alerting rules
//! use.
//!
//! Supported:
//! - text with `{{ … }}` actions, trim markers `{{-` / `-}}` and comments
//!   `{{/* … */}}`;
//! - values `$value` / `.Value` (the sample value), `$labels` / `.Labels`
//!   (the alert's labels), `$labels.<name>` / `.Labels.<name>` (a label, ""
//!   when missing), `$externalURL` / `.ExternalURL`, `$externalLabels` /
//!   `.ExternalLabels` (always empty), string literals (`"…"` with Go
//!   escapes, `` `…` ``), integer and float literals, and parenthesized
//!   pipelines;
//! - pipelines `a | f b` (the left value becomes the last argument);
//! - functions `printf` (verbs `%s %v %d %f %e %g %q %%` with flags `-+0 `,
//!   width and precision, formatted as Go does), `print`, `humanize`,
//!   `humanize1024`, `humanizePercentage`, `humanizeDuration`, `toUpper`,
//!   `toLower`, `title`, `index <labels> "<name>"`, `reReplaceAll`.
//!
//! Not supported: `if`, `range`, `with`, variables other than the above,
//! `define` / `template`, and Prometheus' query functions (`query`,
//! `first`, …). Using them is a parse error, reported when the rule is
//! loaded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a template can read.
#[derive(Debug, Clone, Default)]
pub struct TemplateData<'a> {
    /// The alert's labels.
    pub labels: BTreeMap<&'a str, &'a str>,
    /// The sample value.
    pub value: f64,
    /// `ruler.external_url`.
    pub external_url: &'a str,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
}

#[derive(Debug, Clone, PartialEq)]
struct Pipeline {
    commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
enum Command {
    Call(Func, Vec<Operand>),
    Value(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Value,
    Labels,
    Label(String),
    ExternalUrl,
    ExternalLabels,
    Str(String),
    Int(i64),
    Float(f64),
    Sub(Box<Pipeline>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Printf,
    Print,
    Humanize,
    Humanize1024,
    HumanizePercentage,
    HumanizeDuration,
    ToUpper,
    ToLower,
    Title,
    Index,
    ReReplaceAll,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "printf" => Func::Printf,
            "print" => Func::Print,
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizePercentage" => Func::HumanizePercentage,
            "humanizeDuration" => Func::HumanizeDuration,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "title" => Func::Title,
            "index" => Func::Index,
            "reReplaceAll" => Func::ReReplaceAll,
            _ => return None,
        })
    }
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Labels(Vec<(String, String)>),
}

impl Template {
    /// Parses a template; the error says what and where.
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut nodes = Vec::new();
        let mut rest = src;
        let mut trim_next_text = false;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            if trim_next_text {
                text = text.trim_start();
            }
            let after_open = &rest[open + 2..];
            let (trim_left, body_start) = match after_open.strip_prefix('-') {
                Some(stripped) if stripped.starts_with(char::is_whitespace) => (true, stripped),
                _ => (false, after_open),
            };
            if trim_left {
                text = text.trim_end();
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_string()));
            }
            let close = find_close(body_start).ok_or_else(|| {
                format!(
                    "unclosed action starting at byte {}",
                    src.len() - rest.len() + open
                )
            })?;
            let mut body = &body_start[..close];
            let trim_right = body.ends_with(" -")
                || body.ends_with("\t-")
                || body.ends_with("\n-")
                || body == "-";
            if trim_right {
                body = &body[..body.len() - 1];
            }
            rest = &body_start[close + 2..];
            trim_next_text = trim_right;
            let trimmed = body.trim();
            if trimmed.starts_with("/*") {
                if !trimmed.ends_with("*/") {
                    return Err("unclosed comment".to_string());
                }
                continue;
            }
            let tokens = lex(trimmed)?;
            let mut parser = Parser { tokens, next: 0 };
            let pipeline = parser.pipeline()?;
            if parser.next < parser.tokens.len() {
                return Err(format!(
                    "unexpected {:?} in action {trimmed:?}",
                    parser.tokens[parser.next]
                ));
            }
            nodes.push(Node::Action(pipeline));
        }
        let text = if trim_next_text {
            rest.trim_start()
        } else {
            rest
        };
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_string()));
        }
        Ok(Template { nodes })
    }

    /// Renders the template.
    pub fn execute(&self, data: &TemplateData<'_>) -> Result<String, String> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(text) => out.push_str(text),
                Node::Action(pipeline) => {
                    let value = eval_pipeline(pipeline, data)?;
                    out.push_str(&go_print(&value));
                }
            }
        }
        Ok(out)
    }
}

/// Expands `src` for an alert; a failure is rendered into the text as
/// Prometheus does, so the alert still goes out.
pub fn expand(src: &str, data: &TemplateData<'_>) -> String {
    if !src.contains("{{") {
        return src.to_string();
    }
    match Template::parse(src).and_then(|template| template.execute(data)) {
        Ok(text) => text,
        Err(err) => format!("<error expanding template: {err}>"),
    }
}

/// Finds the `}}` closing an action, skipping string literals.
fn find_close(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'"' {
                    if bytes[index] == b'\\' {
                        index += 1;
                    }
                    index += 1;
                }
            }
            b'`' => {
                index += 1;
                while index < bytes.len() && bytes[index] != b'`' {
                    index += 1;
                }
            }
            b'}' if bytes.get(index + 1) == Some(&b'}') => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Var(String, Vec<String>),
    Field(Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Pipe,
    LParen,
    RParen,
}

fn lex(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    let word = |start: usize| -> usize {
        let mut end = start;
        while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
            end += 1;
        }
        end
    };
    while index < chars.len() {
        let c = chars[index];
        if c.is_whitespace() {
            index += 1;
        } else if c == '|' {
            tokens.push(Token::Pipe);
            index += 1;
        } else if c == '(' {
            tokens.push(Token::LParen);
            index += 1;
        } else if c == ')' {
            tokens.push(Token::RParen);
            index += 1;
        } else if c == '$' || c == '.' {
            let mut path = Vec::new();
            let mut name = String::new();
            let mut position = index;
            if c == '$' {
                let end = word(index + 1);
                name = chars[index + 1..end].iter().collect();
                position = end;
            }
            while position < chars.len() && chars[position] == '.' {
                let end = word(position + 1);
                if end == position + 1 {
                    break;
                }
                path.push(chars[position + 1..end].iter().collect());
                position = end;
            }
            if c == '.' && path.is_empty() {
                return Err("`.` alone is not supported: use $labels or $value".into());
            }
            index = position;
            tokens.push(if c == '$' {
                Token::Var(name, path)
            } else {
                Token::Field(path)
            });
        } else if c == '"' {
            let mut text = String::new();
            index += 1;
            loop {
                let Some(&next) = chars.get(index) else {
                    return Err("unterminated quoted string".into());
                };
                index += 1;
                match next {
                    '"' => break,
                    '\\' => {
                        let escaped = chars
                            .get(index)
                            .copied()
                            .ok_or("unterminated quoted string")?;
                        index += 1;
                        text.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '\\' => '\\',
                            '"' => '"',
                            '\'' => '\'',
                            other => return Err(format!("unknown escape sequence \\{other}")),
                        });
                    }
                    other => text.push(other),
                }
            }
            tokens.push(Token::Str(text));
        } else if c == '`' {
            let end = chars[index + 1..]
                .iter()
                .position(|&ch| ch == '`')
                .ok_or("unterminated raw quoted string")?;
            tokens.push(Token::Str(
                chars[index + 1..index + 1 + end].iter().collect(),
            ));
            index += end + 2;
        } else if c.is_ascii_digit() || c == '-' || c == '+' {
            let start = index;
            index += 1;
            while index < chars.len()
                && (chars[index].is_ascii_alphanumeric() || chars[index] == '.')
            {
                index += 1;
            }
            let text: String = chars[start..index].iter().collect();
            if let Ok(int) = text.parse::<i64>() {
                tokens.push(Token::Int(int));
            } else if let Ok(float) = text.parse::<f64>() {
                tokens.push(Token::Float(float));
            } else {
                return Err(format!("bad number syntax: {text:?}"));
            }
        } else if c.is_alphabetic() || c == '_' {
            let end = word(index);
            tokens.push(Token::Ident(chars[index..end].iter().collect()));
            index = end;
        } else {
            return Err(format!("unexpected {c:?} in action"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn pipeline(&mut self) -> Result<Pipeline, String> {
        let mut commands = vec![self.command()?];
        while self.tokens.get(self.next) == Some(&Token::Pipe) {
            self.next += 1;
            commands.push(self.command()?);
        }
        Ok(Pipeline { commands })
    }

    fn command(&mut self) -> Result<Command, String> {
        match self.tokens.get(self.next).cloned() {
            Some(Token::Ident(name)) => {
                let func = Func::from_name(&name).ok_or_else(|| {
                    if matches!(name.as_str(), "if" | "range" | "with" | "end" | "else") {
                        format!("{name:?} is not supported in alert templates")
                    } else {
                        format!("function {name:?} not defined")
                    }
                })?;
                self.next += 1;
                let mut args = Vec::new();
                while let Some(operand) = self.operand()? {
                    args.push(operand);
                }
                Ok(Command::Call(func, args))
            }
            _ => {
                let operand = self.operand()?.ok_or("missing value for command")?;
                if let Some(Token::Ident(_) | Token::Var(..) | Token::Field(_) | Token::Str(_)) =
                    self.tokens.get(self.next)
                {
                    return Err("can't give argument to non-function".into());
                }
                Ok(Command::Value(operand))
            }
        }
    }

    fn operand(&mut self) -> Result<Option<Operand>, String> {
        let Some(token) = self.tokens.get(self.next).cloned() else {
            return Ok(None);
        };
        let operand = match token {
            Token::Pipe | Token::RParen | Token::Ident(_) => return Ok(None),
            Token::Str(text) => Operand::Str(text),
            Token::Int(int) => Operand::Int(int),
            Token::Float(float) => Operand::Float(float),
            Token::LParen => {
                self.next += 1;
                let inner = self.pipeline()?;
                if self.tokens.get(self.next) != Some(&Token::RParen) {
                    return Err("unclosed left paren".into());
                }
                Operand::Sub(Box::new(inner))
            }
            Token::Var(name, path) => variable(&name, &path)?,
            Token::Field(path) => {
                let (head, rest) = path.split_first().ok_or("empty field")?;
                let name = match head.as_str() {
                    "Value" => "value",
                    "Labels" => "labels",
                    "ExternalURL" => "externalURL",
                    "ExternalLabels" => "externalLabels",
                    other => return Err(format!("can't evaluate field {other}")),
                };
                variable(name, rest)?
            }
        };
        self.next += 1;
        Ok(Some(operand))
    }
}

fn variable(name: &str, path: &[String]) -> Result<Operand, String> {
    match (name, path) {
        ("value", []) => Ok(Operand::Value),
        ("labels", []) => Ok(Operand::Labels),
        ("labels", [label]) => Ok(Operand::Label(label.clone())),
        ("externalURL", []) => Ok(Operand::ExternalUrl),
        ("externalLabels", []) => Ok(Operand::ExternalLabels),
        ("externalLabels", [_]) => Ok(Operand::Str(String::new())),
        ("value" | "labels" | "externalURL" | "externalLabels", _) => {
            Err(format!("can't evaluate ${name}.{}", path.join(".")))
        }
        _ => Err(format!("undefined variable \"${name}\"")),
    }
}

fn eval_pipeline(pipeline: &Pipeline, data: &TemplateData<'_>) -> Result<Value, String> {
    let mut previous: Option<Value> = None;
    for command in &pipeline.commands {
        previous = Some(match command {
            Command::Value(operand) => {
                if previous.is_some() {
                    return Err("can't give argument to non-function".into());
                }
                eval_operand(operand, data)?
            }
            Command::Call(func, operands) => {
                let mut args = operands
                    .iter()
                    .map(|operand| eval_operand(operand, data))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(value) = previous.take() {
                    args.push(value);
                }
                call(*func, args)?
            }
        });
    }
    previous.ok_or_else(|| "empty pipeline".to_string())
}

fn eval_operand(operand: &Operand, data: &TemplateData<'_>) -> Result<Value, String> {
    Ok(match operand {
        Operand::Value => Value::Float(data.value),
        Operand::Labels => Value::Labels(
            data.labels
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        ),
        Operand::Label(name) => Value::Str(
            data.labels
                .get(name.as_str())
                .map(|value| value.to_string())
                .unwrap_or_default(),
        ),
        Operand::ExternalUrl => Value::Str(data.external_url.to_string()),
        Operand::ExternalLabels => Value::Labels(Vec::new()),
        Operand::Str(text) => Value::Str(text.clone()),
        Operand::Int(int) => Value::Int(*int),
        Operand::Float(float) => Value::Float(*float),
        Operand::Sub(pipeline) => eval_pipeline(pipeline, data)?,
    })
}

fn call(func: Func, args: Vec<Value>) -> Result<Value, String> {
    let one = |args: &[Value]| -> Result<Value, String> {
        match args {
            [value] => Ok(value.clone()),
            _ => Err(format!("wrong number of args: want 1 got {}", args.len())),
        }
    };
    let number = |value: &Value| -> Result<f64, String> {
        match value {
            Value::Float(float) => Ok(*float),
            Value::Int(int) => Ok(*int as f64),
            Value::Str(text) => text
                .trim()
                .parse()
                .map_err(|_| format!("strconv.ParseFloat: parsing {text:?}: invalid syntax")),
            Value::Labels(_) => Err("can't convert labels to a number".into()),
        }
    };
    Ok(match func {
        Func::Printf => {
            let (format, rest) = args.split_first().ok_or("printf needs a format")?;
            let Value::Str(format) = format else {
                return Err("printf's format must be a string".into());
            };
            Value::Str(go_sprintf(format, rest))
        }
        Func::Print => {
            let mut out = String::new();
            for (index, arg) in args.iter().enumerate() {
                let is_string = matches!(arg, Value::Str(_));
                let previous_string = index > 0 && matches!(args[index - 1], Value::Str(_));
                if index > 0 && !is_string && !previous_string {
                    out.push(' ');
                }
                out.push_str(&go_print(arg));
            }
            Value::Str(out)
        }
        Func::Humanize => Value::Str(humanize(number(&one(&args)?)?)),
        Func::Humanize1024 => Value::Str(humanize1024(number(&one(&args)?)?)),
        Func::HumanizePercentage => {
            Value::Str(format!("{}%", go_g(number(&one(&args)?)? * 100.0, Some(4))))
        }
        Func::HumanizeDuration => Value::Str(humanize_duration(number(&one(&args)?)?)),
        Func::ToUpper => Value::Str(go_print(&one(&args)?).to_uppercase()),
        Func::ToLower => Value::Str(go_print(&one(&args)?).to_lowercase()),
        Func::Title => Value::Str(title(&go_print(&one(&args)?))),
        Func::Index => match args.as_slice() {
            [Value::Labels(labels), Value::Str(key)] => Value::Str(
                labels
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.clone())
                    .unwrap_or_default(),
            ),
            _ => return Err("index needs a label map and a label name".into()),
        },
        Func::ReReplaceAll => match args.as_slice() {
            [Value::Str(pattern), Value::Str(replacement), text] => {
                // Go's `$1` / `${name}` replacement syntax is the regex
                // crate's too.
                let regex = compile(pattern)?;
                Value::Str(
                    regex
                        .replace_all(&go_print(text), replacement.as_str())
                        .into_owned(),
                )
            }
            _ => return Err("reReplaceAll needs a pattern, a replacement and a text".into()),
        },
    })
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|err| format!("error parsing regexp: {err}"))
}

fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    out
}

/// Go's `fmt.Print` of one value.
fn go_print(value: &Value) -> String {
    match value {
        Value::Str(text) => text.clone(),
        Value::Int(int) => int.to_string(),
        Value::Float(float) => go_g(*float, None),
        Value::Labels(labels) => {
            let mut out = String::from("map[");
            for (index, (name, value)) in labels.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{name}:{value}");
            }
            out.push(']');
            out
        }
    }
}

/// Decimal digits of `v` (no trailing zeros) and the position of the
/// decimal point: `v = 0.d1d2… × 10^dp`. `significant` rounds to that many
/// digits; `None` is the shortest exact representation.
fn decimal_digits(v: f64, significant: Option<usize>) -> (String, i32) {
    let text = match significant {
        None => format!("{:e}", v.abs()),
        Some(digits) => format!("{:.*e}", digits.saturating_sub(1), v.abs()),
    };
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if digits == "0" {
        return (digits, 1);
    }
    (digits, exponent + 1)
}

/// Go's `%g` (`%v` when `precision` is `None`).
fn go_g(v: f64, precision: Option<usize>) -> String {
    if let Some(special) = special_float(v) {
        return special;
    }
    let (digits, dp) = decimal_digits(v, precision.map(|p| p.max(1)));
    let nd = digits.len() as i32;
    let mut eprec = precision.map_or(6, |p| p.max(1) as i32);
    if precision.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    if precision.is_none() {
        eprec = 6;
    }
    let exp = dp - 1;
    let sign = if v.is_sign_negative() && v != 0.0 {
        "-"
    } else {
        ""
    };
    if v == 0.0 {
        return format!("{sign}0");
    }
    if exp < -4 || exp >= eprec {
        let mut out = format!("{sign}{}", &digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
        return out;
    }
    let decimals = (nd - dp).max(0) as usize;
    fixed_from_digits(sign, &digits, dp, decimals)
}

fn fixed_from_digits(sign: &str, digits: &str, dp: i32, decimals: usize) -> String {
    let mut out = String::from(sign);
    let digit_at = |index: i32| -> char {
        if index < 0 {
            '0'
        } else {
            digits
                .as_bytes()
                .get(index as usize)
                .map_or('0', |&b| b as char)
        }
    };
    if dp > 0 {
        for index in 0..dp {
            out.push(digit_at(index));
        }
    } else {
        out.push('0');
    }
    if decimals > 0 {
        out.push('.');
        for offset in 0..decimals as i32 {
            out.push(digit_at(dp + offset));
        }
    }
    out
}

fn special_float(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Go's `%e` with `precision` decimals.
fn go_e(v: f64, precision: usize) -> String {
    if let Some(special) = special_float(v) {
        return special;
    }
    let text = format!("{v:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    format!(
        "{mantissa}e{}{:02}",
        if exponent < 0 { '-' } else { '+' },
        exponent.abs()
    )
}

/// Go's `fmt.Sprintf` for the verbs alert templates use.
fn go_sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next_arg = 0;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut minus = false;
        let mut plus = false;
        let mut zero = false;
        let mut space = false;
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = None;
        while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + digit as usize);
            chars.next();
        }
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut value = 0;
            while let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
                value = value * 10 + digit as usize;
                chars.next();
            }
            precision = Some(value);
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        let mut body = match (verb, arg) {
            ('v', value) => match value {
                Value::Float(float) => go_g(*float, precision),
                other => go_print(other),
            },
            ('s', Value::Str(text)) => match precision {
                Some(limit) => text.chars().take(limit).collect(),
                None => text.clone(),
            },
            ('s', Value::Labels(_)) => go_print(arg),
            ('q', Value::Str(text)) => format!("{text:?}"),
            ('d', Value::Int(int)) => int.to_string(),
            ('f' | 'F', Value::Float(float)) => fixed(*float, precision.unwrap_or(6)),
            ('f' | 'F', Value::Int(int)) => format!("%!f(int={int})"),
            ('e', Value::Float(float)) => go_e(*float, precision.unwrap_or(6)),
            ('g', Value::Float(float)) => go_g(*float, precision),
            (verb, value) => format!("%!{verb}({}={})", go_type(value), go_print(value)),
        };
        let numeric = matches!(arg, Value::Float(_) | Value::Int(_))
            && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g' | 'v');
        if numeric && !body.starts_with('-') {
            if plus {
                body.insert(0, '+');
            } else if space {
                body.insert(0, ' ');
            }
        }
        let length = body.chars().count();
        match width {
            Some(width) if width > length => {
                let pad = width - length;
                if minus {
                    body.push_str(&" ".repeat(pad));
                } else if zero && numeric {
                    let sign_len = usize::from(body.starts_with(['-', '+', ' ']));
                    body.insert_str(sign_len, &"0".repeat(pad));
                } else {
                    body.insert_str(0, &" ".repeat(pad));
                }
            }
            _ => {}
        }
        out.push_str(&body);
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (index, arg) in args[next_arg..].iter().enumerate() {
            if index > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}={}", go_type(arg), go_print(arg));
        }
        out.push(')');
    }
    out
}

fn fixed(v: f64, precision: usize) -> String {
    special_float(v).unwrap_or_else(|| format!("{v:.precision$}"))
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Str(_) => "string",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Labels(_) => "map[string]string",
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for next in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = next;
            v /= 1000.0;
        }
    } else {
        for next in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = next;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g(v, Some(4)))
}

/// Prometheus' `humanize1024`: binary prefixes for values of at least 1.
fn humanize1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return go_g(v, Some(4));
    }
    let mut prefix = "";
    for next in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = next;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g(v, Some(4)))
}

/// Prometheus' `humanizeDuration` of seconds: `1d 2h 3m 4s`, or `1.5s`,
/// `250ms`.
fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return go_g(v, Some(4));
    }
    if v == 0.0 {
        return format!("{}s", go_g(v, Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        let total = v as i64;
        let seconds = total % 60;
        let minutes = (total / 60) % 60;
        let hours = (total / 3600) % 24;
        let days = total / 86_400;
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_g(v, Some(4)))
        };
    }
    let mut prefix = "";
    for next in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = next;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, Some(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, value: f64) -> String {
        let data = TemplateData {
            labels: BTreeMap::from([("service", "ryot"), ("level", "error")]),
            value,
            external_url: "http://sluice:3100",
        };
        Template::parse(src).unwrap().execute(&data).unwrap()
    }

    #[test]
    fn variables_and_fields() {
        assert_eq!(
            render("High error rate in {{ $labels.service }}", 1.0),
            "High error rate in ryot"
        );
        assert_eq!(
            render("{{ .Labels.level }}/{{ .Value }}", 12.5),
            "error/12.5"
        );
        assert_eq!(render("{{ $value }}", 1e6), "1e+06");
        assert_eq!(render("{{ $value }}", 100000.0), "100000");
        assert_eq!(render("{{ $value }}", 0.25), "0.25");
        assert_eq!(render("{{ $labels.missing }}|", 0.0), "|");
        assert_eq!(
            render("{{ $labels }}", 0.0),
            "map[level:error service:ryot]"
        );
        assert_eq!(render("{{ $externalURL }}", 0.0), "http://sluice:3100");
        assert_eq!(render("{{ index $labels \"service\" }}", 0.0), "ryot");
        assert_eq!(render("a {{- \" b \" -}} c", 0.0), "a b c");
        assert_eq!(render("x{{/* note */}}y", 0.0), "xy");
    }

    #[test]
    fn functions_format_like_prometheus() {
        assert_eq!(render("{{ printf \"%.2f\" $value }}", 12.3456), "12.35");
        assert_eq!(render("{{ $value | printf \"%.1f\" }}", 2.25), "2.2");
        assert_eq!(render("{{ humanize $value }}", 1234567.0), "1.235M");
        assert_eq!(render("{{ humanize $value }}", 0.0012), "1.2m");
        assert_eq!(render("{{ humanize $value }}", 12.0), "12");
        assert_eq!(render("{{ $value | humanize }}", 0.0), "0");
        assert_eq!(render("{{ humanize1024 $value }}", 2048.0), "2ki");
        assert_eq!(render("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(
            render("{{ humanizeDuration $value }}", 90061.0),
            "1d 1h 1m 1s"
        );
        assert_eq!(render("{{ humanizeDuration $value }}", 1.5), "1.5s");
        assert_eq!(render("{{ humanizeDuration $value }}", 0.25), "250ms");
        assert_eq!(render("{{ toUpper $labels.service }}", 0.0), "RYOT");
        assert_eq!(render("{{ title \"hello world\" }}", 0.0), "Hello World");
        assert_eq!(render("{{ printf \"%d%%\" 5 }}", 0.0), "5%");
        assert_eq!(
            render("{{ printf \"%5.1f|%-4s|\" $value \"ab\" }}", 2.71),
            "  2.7|ab  |"
        );
        assert_eq!(render("{{ printf \"%e\" $value }}", 1234.5), "1.234500e+03");
        assert_eq!(
            render("{{ printf \"%s\" $value }}", 1.5),
            "%!s(float64=1.5)"
        );
        assert_eq!(
            render("{{ reReplaceAll \"(.*)-(.*)\" \"$2\" \"a-b\" }}", 0.0),
            "b"
        );
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!(Template::parse("{{ $value ")
            .unwrap_err()
            .contains("unclosed action"));
        assert!(Template::parse("{{ nope $value }}")
            .unwrap_err()
            .contains("function \"nope\" not defined"));
        assert!(Template::parse("{{ $other }}")
            .unwrap_err()
            .contains("undefined variable"));
        assert!(Template::parse("{{ if $value }}x{{ end }}")
            .unwrap_err()
            .contains("not supported"));
        assert_eq!(
            expand("{{ printf }}", &TemplateData::default()),
            "<error expanding template: printf needs a format>"
        );
        assert_eq!(expand("plain", &TemplateData::default()), "plain");
    }
}
