//! Template functions: Go's builtins, Loki's own functions and the sprig
//! subset Loki exposes (`pkg/logql/log/fmt.go`).

use std::collections::HashMap;

use regex::Regex;

use super::gotime::{format_layout, parse_layout, GoTime};
use super::humanize;
use super::value::{sprint, sprintf, sprintln, LabelsFn, Value};
use crate::error::regex_error_message;
use crate::stages::json::{parse_document, JsonValue};
use crate::units::parse_go_duration;

macro_rules! funcs {
    ($($variant:ident => $name:literal, $min:expr, $max:expr, $set:ident;)*) => {
        /// A template function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func { $($variant,)* }

        impl Func {
            /// Looks a function up by name in `set`.
            pub(crate) fn from_name(name: &str, set: FuncSet) -> Option<Func> {
                match name {
                    $($name if Avail::$set.in_set(set) => Some(Func::$variant),)*
                    _ => None,
                }
            }

            /// The function's name.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Func::$variant => $name,)* }
            }

            /// (minimum, maximum) argument count; `usize::MAX` = variadic.
            fn arity(self) -> (usize, usize) {
                match self { $(Func::$variant => ($min, $max),)* }
            }
        }
    };
}

/// The functions a template may call, chosen when it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FuncSet {
    /// `line_format` / `label_format`: Go's builtins, Loki's functions and
    /// its sprig subset.
    LineFormat,
    /// Alerting rule labels and annotations: Go's builtins and Prometheus'
    /// template functions.
    Rules,
}

/// Where a function is defined.
#[derive(Clone, Copy)]
enum Avail {
    /// A Go `text/template` builtin: in every set.
    Go,
    /// Loki's `line_format` functions only.
    Loki,
    /// Prometheus' rule template functions only.
    Prom,
}

impl Avail {
    const fn in_set(self, set: FuncSet) -> bool {
        match self {
            Avail::Go => true,
            Avail::Loki => matches!(set, FuncSet::LineFormat),
            Avail::Prom => matches!(set, FuncSet::Rules),
        }
    }
}

const V: usize = usize::MAX;

funcs! {
    And => "and", 1, V, Go;
    Or => "or", 1, V, Go;
    Not => "not", 1, 1, Go;
    Len => "len", 1, 1, Go;
    Index => "index", 1, V, Go;
    Slice => "slice", 1, V, Go;
    Print => "print", 0, V, Go;
    Printf => "printf", 1, V, Go;
    Println => "println", 0, V, Go;
    Urlquery => "urlquery", 0, V, Go;
    Html => "html", 0, V, Go;
    Eq => "eq", 1, V, Go;
    Ne => "ne", 2, 2, Go;
    Lt => "lt", 2, 2, Go;
    Le => "le", 2, 2, Go;
    Gt => "gt", 2, 2, Go;
    Ge => "ge", 2, 2, Go;
    GoToLower => "ToLower", 1, 1, Loki;
    GoToUpper => "ToUpper", 1, 1, Loki;
    GoReplace => "Replace", 4, 4, Loki;
    GoTrim => "Trim", 2, 2, Loki;
    GoTrimLeft => "TrimLeft", 2, 2, Loki;
    GoTrimRight => "TrimRight", 2, 2, Loki;
    GoTrimPrefix => "TrimPrefix", 2, 2, Loki;
    GoTrimSuffix => "TrimSuffix", 2, 2, Loki;
    GoTrimSpace => "TrimSpace", 1, 1, Loki;
    RegexReplaceAll => "regexReplaceAll", 3, 3, Loki;
    RegexReplaceAllLiteral => "regexReplaceAllLiteral", 3, 3, Loki;
    Count => "count", 2, 2, Loki;
    Urldecode => "urldecode", 1, 1, Loki;
    Urlencode => "urlencode", 1, 1, Loki;
    Bytes => "bytes", 1, 1, Loki;
    Duration => "duration", 1, 1, Loki;
    DurationSeconds => "duration_seconds", 1, 1, Loki;
    UnixEpochMillis => "unixEpochMillis", 1, 1, Loki;
    UnixEpochNanos => "unixEpochNanos", 1, 1, Loki;
    ToDateInZone => "toDateInZone", 3, 3, Loki;
    UnixToTime => "unixToTime", 1, 1, Loki;
    AlignLeft => "alignLeft", 2, 2, Loki;
    AlignRight => "alignRight", 2, 2, Loki;
    Line => "__line__", 0, 0, Loki;
    Timestamp => "__timestamp__", 0, 0, Loki;
    B64enc => "b64enc", 1, 1, Loki;
    B64dec => "b64dec", 1, 1, Loki;
    Lower => "lower", 1, 1, Loki;
    Upper => "upper", 1, 1, Loki;
    Title => "title", 1, 1, Loki;
    Trunc => "trunc", 2, 2, Loki;
    Substr => "substr", 3, 3, Loki;
    Contains => "contains", 2, 2, Loki;
    HasPrefix => "hasPrefix", 2, 2, Loki;
    HasSuffix => "hasSuffix", 2, 2, Loki;
    Indent => "indent", 2, 2, Loki;
    Nindent => "nindent", 2, 2, Loki;
    Replace => "replace", 3, 3, Loki;
    Repeat => "repeat", 2, 2, Loki;
    Trim => "trim", 1, 1, Loki;
    TrimAll => "trimAll", 2, 2, Loki;
    TrimSuffix => "trimSuffix", 2, 2, Loki;
    TrimPrefix => "trimPrefix", 2, 2, Loki;
    Int => "int", 1, 1, Loki;
    Float64 => "float64", 1, 1, Loki;
    Add => "add", 0, V, Loki;
    Sub => "sub", 2, 2, Loki;
    Mul => "mul", 1, V, Loki;
    Div => "div", 2, 2, Loki;
    Mod => "mod", 2, 2, Loki;
    Addf => "addf", 0, V, Loki;
    Subf => "subf", 1, V, Loki;
    Mulf => "mulf", 1, V, Loki;
    Divf => "divf", 1, V, Loki;
    Max => "max", 1, V, Loki;
    Min => "min", 1, V, Loki;
    Maxf => "maxf", 1, V, Loki;
    Minf => "minf", 1, V, Loki;
    Ceil => "ceil", 1, 1, Loki;
    Floor => "floor", 1, 1, Loki;
    Round => "round", 2, 3, Loki;
    FromJson => "fromJson", 1, 1, Loki;
    Date => "date", 2, 2, Loki;
    ToDate => "toDate", 2, 2, Loki;
    Now => "now", 0, 0, Loki;
    UnixEpoch => "unixEpoch", 1, 1, Loki;
    Default => "default", 1, V, Loki;
    Humanize => "humanize", 1, 1, Prom;
    Humanize1024 => "humanize1024", 1, 1, Prom;
    HumanizePercentage => "humanizePercentage", 1, 1, Prom;
    HumanizeDuration => "humanizeDuration", 1, 1, Prom;
    PromToUpper => "toUpper", 1, 1, Prom;
    PromToLower => "toLower", 1, 1, Prom;
    PromTitle => "title", 1, 1, Prom;
    ReReplaceAll => "reReplaceAll", 3, 3, Prom;
    Match => "match", 2, 2, Prom;
}

/// Compiled regexes of `regexReplaceAll` & co, per stream pipeline.
#[derive(Default)]
pub(crate) struct RegexCache {
    map: HashMap<String, Result<Regex, String>>,
}

impl RegexCache {
    fn get(&mut self, pattern: &str) -> Result<&Regex, String> {
        if self.map.len() > 256 {
            self.map.clear();
        }
        let entry = self.map.entry(pattern.to_string()).or_insert_with(|| {
            Regex::new(pattern).map_err(|err| regex_error_message(pattern, &err))
        });
        entry.as_ref().map_err(Clone::clone)
    }
}

/// What functions can read besides their arguments.
pub(crate) struct Env<'a> {
    pub line: &'a str,
    pub ts: i64,
    pub labels: &'a LabelsFn<'a>,
    pub label: &'a dyn Fn(&str) -> Option<String>,
    pub cache: &'a mut RegexCache,
}

fn want_str(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn want_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

fn want_time(v: &Value) -> Result<GoTime, String> {
    match v {
        Value::Time(t) => Ok(*t),
        other => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )),
    }
}

/// Go's truth of a value (`if`, `and`, `or`, `not`).
pub(crate) fn truth(v: &Value, labels_empty: bool) -> bool {
    match v {
        Value::Nil => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Time(_) => true,
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Labels => !labels_empty,
        Value::StrMap(m) => !m.is_empty(),
    }
}

/// `cast.ToInt64` (sprig's `toInt64`): strings parse with Go's base
/// prefixes, failures give 0.
pub(crate) fn cast_i64(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_go_int(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    match s.split_once('.') {
        Some((int, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => int,
        _ => s,
    }
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let body = body.replace('_', "");
    let lower = body.to_ascii_lowercase();
    let value = if let Some(hex) = lower.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()?
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()?
    } else if lower.len() > 1 && lower.starts_with('0') {
        i64::from_str_radix(&lower[1..], 8).ok()?
    } else {
        lower.parse().ok()?
    };
    Some(if neg { -value } else { value })
}

/// `cast.ToFloat64`.
pub(crate) fn cast_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// sprig's `empty`.
fn is_empty_value(v: &Value, env: &Env<'_>) -> bool {
    match v {
        Value::Labels => {
            let mut any = false;
            (env.labels)(&mut |_, _| any = true);
            !any
        }
        Value::Time(_) => false,
        other => !truth(other, true),
    }
}

/// Compares two values like Go's `eq`/`lt`; `None` when incompatible.
fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Less)),
        (Value::Bool(x), Value::Bool(y)) if x == y => Ok(Ordering::Equal),
        (Value::Bool(_), Value::Bool(_)) => Ok(Ordering::Less),
        (Value::Nil, Value::Nil) => Ok(Ordering::Equal),
        _ => Err("incompatible types for comparison".to_string()),
    }
}

fn ordered(a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    if matches!(
        a,
        Value::Bool(_)
            | Value::Nil
            | Value::Labels
            | Value::StrMap(_)
            | Value::List(_)
            | Value::Map(_)
            | Value::Time(_)
    ) {
        return Err("invalid type for comparison".into());
    }
    compare(a, b)
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                let Some(hex) = hex else {
                    let shown: String = s[i..].chars().take(3).collect();
                    return Err(format!(
                        "invalid URL escape {}",
                        crate::print::quote(&shown)
                    ));
                };
                out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let word = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= n {
                out.push(B64[(word >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<(usize, u8)> = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| *b != b'\r' && *b != b'\n')
        .collect();
    let illegal = |pos: usize| format!("illegal base64 data at input byte {pos}");
    if bytes.len() % 4 != 0 {
        let pos = bytes.len() - bytes.len() % 4;
        return Err(illegal(bytes.get(pos).map_or(text.len(), |(p, _)| *p)));
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, quad) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let mut word = 0u32;
        let mut pad = 0;
        for (k, &(pos, b)) in quad.iter().enumerate() {
            let value = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' if last && k >= 2 => {
                    pad += 1;
                    0
                }
                _ => return Err(illegal(pos)),
            };
            if pad > 0 && b != b'=' {
                return Err(illegal(pos));
            }
            word = (word << 6) | u32::from(value);
        }
        let decoded = [(word >> 16) as u8, (word >> 8) as u8, word as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

/// go-humanize `ParseBytes` with its error messages.
pub(crate) fn parse_bytes_go(s: &str) -> Result<u64, String> {
    let digits = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(s.len(), |(i, _)| i);
    let number: String = s[..digits].chars().filter(|c| *c != ',').collect();
    let value: f64 = parse_float_go(&number)?;
    let unit = s[digits..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1_048_576.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1_073_741_824.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1_099_511_627_776.0,
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1_125_899_906_842_624.0,
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1_152_921_504_606_846_976.0,
        _ => return Err(format!("unhandled size name: {unit}")),
    };
    let product = value * mult;
    if product >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(product as u64)
}

/// Go's `strconv.ParseFloat(s, 64)` with its error messages.
pub(crate) fn parse_float_go(s: &str) -> Result<f64, String> {
    let invalid = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            crate::print::quote(s)
        )
    };
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let special = matches!(body, "inf" | "infinity" | "nan");
    if s.is_empty()
        || s.contains('_')
        || (!special
            && !body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-')))
    {
        return Err(invalid());
    }
    let value: f64 = s.parse().map_err(|_| invalid())?;
    if value.is_infinite() && !special {
        return Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            crate::print::quote(s)
        ));
    }
    Ok(value)
}

/// Go's `time.ParseDuration` with its error messages, in nanoseconds.
pub(crate) fn parse_duration_go(s: &str) -> Result<i64, String> {
    if let Some(ns) = parse_go_duration(s) {
        return Ok(ns);
    }
    let quoted = crate::print::quote(s);
    let body = s.trim_start_matches(['+', '-']);
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.') && body != "." {
        return Err(format!("time: missing unit in duration {quoted}"));
    }
    // Find an unknown unit after a number.
    let mut rest = body;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        if n == 0 {
            break;
        }
        rest = &rest[n..];
        let u = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..u];
        if unit.is_empty() {
            break;
        }
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return Err(format!(
                "time: unknown unit {} in duration {quoted}",
                crate::print::quote(unit)
            ));
        }
        rest = &rest[u..];
    }
    Err(format!("time: invalid duration {quoted}"))
}

fn json_to_value(json: JsonValue) -> Value {
    match json {
        JsonValue::Null => Value::Nil,
        JsonValue::Bool(b) => Value::Bool(b),
        JsonValue::Number(n) => Value::Float(n),
        JsonValue::String(s) => Value::Str(s),
        JsonValue::Array(items) => Value::List(items.into_iter().map(json_to_value).collect()),
        JsonValue::Object(members) => {
            let mut entries: Vec<(String, Value)> = members
                .into_iter()
                .map(|(k, v)| (k, json_to_value(v)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(entries)
        }
    }
}

/// Byte slice of a string, lossy at non-character boundaries.
fn byte_slice(s: &str, start: usize, end: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[start..end]).into_owned()
}

/// Go's `strings.Title`: a word is a run of letters, digits and `_`.
fn go_title(s: &str) -> String {
    humanize::title_words(s, |c| c.is_alphanumeric() || c == '_')
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A value of a [`Value::StrMap`], `""` when missing (`missingkey=zero`).
pub(crate) fn str_map_get(map: &[(String, String)], key: &str) -> String {
    map.iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

fn index_value(item: &Value, key: &Value, env: &Env<'_>) -> Result<Value, String> {
    match (item, key) {
        (Value::Labels, Value::Str(k)) => Ok(Value::Str((env.label)(k).unwrap_or_default())),
        (Value::Map(m), Value::Str(k)) => Ok(m
            .iter()
            .find(|(name, _)| name == k)
            .map_or(Value::Nil, |(_, v)| v.clone())),
        (Value::StrMap(m), Value::Str(k)) => Ok(Value::Str(str_map_get(m, k))),
        (Value::List(l), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| l.get(i).cloned())
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::Str(s), Value::Int(i)) => usize::try_from(*i)
            .ok()
            .and_then(|i| s.as_bytes().get(i))
            .map(|b| Value::Int(i64::from(*b)))
            .ok_or_else(|| format!("index out of range: {i}")),
        (Value::Nil, _) => Err("index of untyped nil".into()),
        (item, key) => Err(format!(
            "cannot index {} with {}",
            item.type_name(),
            key.type_name()
        )),
    }
}

fn int_reduce(args: &[Value], f: impl Fn(i64, i64) -> i64) -> Value {
    let mut iter = args.iter().map(cast_i64);
    let first = iter.next().unwrap_or(0);
    Value::Int(iter.fold(first, f))
}

fn float_reduce(args: &[Value], f: impl Fn(f64, f64) -> f64) -> Value {
    let mut iter = args.iter().map(cast_f64);
    let first = iter.next().unwrap_or(0.0);
    Value::Float(iter.fold(first, f))
}

/// Calls a function; `Err` carries the message after `error calling X: `
/// (or the whole message for argument-count and type errors, flagged by
/// the leading `!`).
pub(crate) fn call(func: Func, args: Vec<Value>, env: &mut Env<'_>) -> Result<Value, String> {
    let (min, max) = func.arity();
    if args.len() < min || args.len() > max {
        return Err(if max == usize::MAX {
            format!(
                "!wrong number of args for {}: want at least {} got {}",
                func.name(),
                min,
                args.len()
            )
        } else {
            format!(
                "!wrong number of args for {}: want {} got {}",
                func.name(),
                min,
                args.len()
            )
        });
    }
    let a = &args;
    let s = |i: usize| want_str(&a[i]).map_err(|e| format!("!{e}"));
    let n = |i: usize| want_int(&a[i]).map_err(|e| format!("!{e}"));
    let str_value = |v: String| Ok(Value::Str(v));
    match func {
        Func::And => Ok(a
            .iter()
            .find(|v| !truth(v, false))
            .unwrap_or(&a[a.len() - 1])
            .clone()),
        Func::Or => Ok(a
            .iter()
            .find(|v| truth(v, false))
            .unwrap_or(&a[a.len() - 1])
            .clone()),
        Func::Not => Ok(Value::Bool(!truth(
            &a[0],
            is_empty_value(&Value::Labels, env),
        ))),
        Func::Len => match &a[0] {
            Value::Str(s) => Ok(Value::Int(s.len() as i64)),
            Value::List(l) => Ok(Value::Int(l.len() as i64)),
            Value::Map(m) => Ok(Value::Int(m.len() as i64)),
            Value::StrMap(m) => Ok(Value::Int(m.len() as i64)),
            Value::Labels => {
                let mut count = 0;
                (env.labels)(&mut |_, _| count += 1);
                Ok(Value::Int(count))
            }
            other => Err(format!("len of type {}", other.type_name())),
        },
        Func::Index => {
            let mut item = a[0].clone();
            for key in &a[1..] {
                item = index_value(&item, key, env)?;
            }
            Ok(item)
        }
        Func::Slice => {
            let bounds: Vec<i64> = a[1..].iter().map(want_int).collect::<Result<_, _>>()?;
            match &a[0] {
                Value::Str(s) => {
                    if bounds.len() > 2 {
                        return Err("cannot 3-index slice a string".into());
                    }
                    let start = bounds.first().copied().unwrap_or(0);
                    let end = bounds.get(1).copied().unwrap_or(s.len() as i64);
                    if start < 0 || end < start || end > s.len() as i64 {
                        return Err(format!(
                            "index out of range: {}",
                            if end > s.len() as i64 { end } else { start }
                        ));
                    }
                    str_value(byte_slice(s, start as usize, end as usize))
                }
                Value::List(l) => {
                    let start = bounds.first().copied().unwrap_or(0);
                    let end = bounds.get(1).copied().unwrap_or(l.len() as i64);
                    if start < 0 || end < start || end > l.len() as i64 {
                        return Err(format!("index out of range: {end}"));
                    }
                    Ok(Value::List(l[start as usize..end as usize].to_vec()))
                }
                other => Err(format!("can't slice item of type {}", other.type_name())),
            }
        }
        Func::Print => str_value(sprint(a, env.labels)),
        Func::Printf => {
            let format = s(0)?;
            str_value(sprintf(format, &a[1..], env.labels))
        }
        Func::Println => str_value(sprintln(a, env.labels)),
        Func::Urlquery => str_value(query_escape(&sprint(a, env.labels))),
        Func::Html => str_value(html_escape(&sprint(a, env.labels))),
        Func::Eq => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for other in &a[1..] {
                if compare(&a[0], other)? == std::cmp::Ordering::Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        Func::Ne => Ok(Value::Bool(
            compare(&a[0], &a[1])? != std::cmp::Ordering::Equal,
        )),
        Func::Lt => Ok(Value::Bool(ordered(&a[0], &a[1])?.is_lt())),
        Func::Le => Ok(Value::Bool(ordered(&a[0], &a[1])?.is_le())),
        Func::Gt => Ok(Value::Bool(ordered(&a[0], &a[1])?.is_gt())),
        Func::Ge => Ok(Value::Bool(ordered(&a[0], &a[1])?.is_ge())),
        Func::GoToLower | Func::Lower => str_value(s(0)?.to_lowercase()),
        Func::GoToUpper | Func::Upper => str_value(s(0)?.to_uppercase()),
        Func::GoReplace => {
            let count = n(3)?;
            if count < 0 {
                str_value(s(0)?.replace(s(1)?, s(2)?))
            } else {
                str_value(s(0)?.replacen(s(1)?, s(2)?, count as usize))
            }
        }
        Func::GoTrim => {
            let cut = s(1)?;
            str_value(s(0)?.trim_matches(|c| cut.contains(c)).to_string())
        }
        Func::GoTrimLeft => {
            let cut = s(1)?;
            str_value(s(0)?.trim_start_matches(|c| cut.contains(c)).to_string())
        }
        Func::GoTrimRight => {
            let cut = s(1)?;
            str_value(s(0)?.trim_end_matches(|c| cut.contains(c)).to_string())
        }
        Func::GoTrimPrefix => {
            let v = s(0)?;
            str_value(v.strip_prefix(s(1)?).unwrap_or(v).to_string())
        }
        Func::GoTrimSuffix => {
            let v = s(0)?;
            str_value(v.strip_suffix(s(1)?).unwrap_or(v).to_string())
        }
        Func::GoTrimSpace | Func::Trim => str_value(s(0)?.trim().to_string()),
        Func::RegexReplaceAll | Func::RegexReplaceAllLiteral => {
            let (pattern, src, repl) = (s(0)?, s(1)?, s(2)?);
            let regex = env.cache.get(pattern)?;
            let out = if func == Func::RegexReplaceAll {
                regex.replace_all(src, repl).into_owned()
            } else {
                regex.replace_all(src, regex::NoExpand(repl)).into_owned()
            };
            str_value(out)
        }
        Func::Count => {
            let (pattern, src) = (s(0)?, s(1)?);
            let regex = env.cache.get(pattern)?;
            Ok(Value::Int(regex.find_iter(src).count() as i64))
        }
        Func::Urldecode => str_value(query_unescape(s(0)?)?),
        Func::Urlencode => str_value(query_escape(s(0)?)),
        Func::Bytes => Ok(Value::Float(parse_bytes_go(s(0)?)? as f64)),
        Func::Duration | Func::DurationSeconds => {
            Ok(Value::Float(parse_duration_go(s(0)?)? as f64 / 1e9))
        }
        Func::UnixEpochMillis => {
            let t = want_time(&a[0]).map_err(|e| format!("!{e}"))?;
            str_value((t.unix_nanos().div_euclid(1_000_000)).to_string())
        }
        Func::UnixEpochNanos => {
            let t = want_time(&a[0]).map_err(|e| format!("!{e}"))?;
            str_value(t.unix_nanos().to_string())
        }
        Func::UnixEpoch => {
            let t = want_time(&a[0]).map_err(|e| format!("!{e}"))?;
            str_value(t.secs.to_string())
        }
        Func::ToDateInZone => {
            let (layout, zone, value) = (s(0)?, s(1)?, s(2)?);
            // Only UTC-like zones are known (no tz database); Loki falls back to UTC.
            let _ = zone;
            Ok(Value::Time(
                parse_layout(layout, value, 0, true).unwrap_or_else(GoTime::zero),
            ))
        }
        Func::ToDate => Ok(Value::Time(
            parse_layout(s(0)?, s(1)?, 0, true).unwrap_or_else(GoTime::zero),
        )),
        Func::UnixToTime => {
            let text = s(0)?;
            let value: i64 = text.parse().map_err(|_| {
                format!(
                    "strconv.ParseInt: parsing {}: invalid syntax",
                    crate::print::quote(text)
                )
            })?;
            let ns = match text.len() {
                0..=10 => value.checked_mul(1_000_000_000),
                11..=13 => value.checked_mul(1_000_000),
                14..=16 => value.checked_mul(1_000),
                _ => Some(value),
            };
            Ok(Value::Time(GoTime::from_unix_nanos(ns.unwrap_or(0))))
        }
        Func::AlignLeft | Func::AlignRight => {
            let count = usize::try_from(n(0)?).unwrap_or(0);
            let text = s(1)?;
            let len = text.chars().count();
            let out = if len >= count {
                text.chars().take(count).collect()
            } else if func == Func::AlignLeft {
                format!("{text}{}", " ".repeat(count - len))
            } else {
                format!("{}{text}", " ".repeat(count - len))
            };
            str_value(out)
        }
        Func::Line => str_value(env.line.to_string()),
        Func::Timestamp => Ok(Value::Time(GoTime::from_unix_nanos(env.ts))),
        Func::B64enc => str_value(b64_encode(s(0)?.as_bytes())),
        Func::B64dec => str_value(match b64_decode(s(0)?) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => err,
        }),
        Func::Title => str_value(go_title(s(0)?)),
        Func::Trunc => {
            let (c, v) = (n(0)?, s(1)?);
            let len = v.len() as i64;
            let out = if c < 0 && len + c > 0 {
                byte_slice(v, (len + c) as usize, v.len())
            } else if c >= 0 && len > c {
                byte_slice(v, 0, c as usize)
            } else {
                v.to_string()
            };
            str_value(out)
        }
        Func::Substr => {
            let (start, end, v) = (n(0)?, n(1)?, s(2)?);
            let len = v.len() as i64;
            let (from, to) = if start < 0 {
                (0, end)
            } else if end < 0 || end > len {
                (start, len)
            } else {
                (start, end)
            };
            if from > to || to > len || from < 0 {
                return Err(format!(
                    "runtime error: slice bounds out of range [{from}:{to}]"
                ));
            }
            str_value(byte_slice(v, from as usize, to as usize))
        }
        Func::Contains => Ok(Value::Bool(s(1)?.contains(s(0)?))),
        Func::HasPrefix => Ok(Value::Bool(s(1)?.starts_with(s(0)?))),
        Func::HasSuffix => Ok(Value::Bool(s(1)?.ends_with(s(0)?))),
        Func::Indent | Func::Nindent => {
            let pad = " ".repeat(usize::try_from(n(0)?).unwrap_or(0));
            let body = format!("{pad}{}", s(1)?.replace('\n', &format!("\n{pad}")));
            str_value(if func == Func::Nindent {
                format!("\n{body}")
            } else {
                body
            })
        }
        Func::Replace => str_value(s(2)?.replace(s(0)?, s(1)?)),
        Func::Repeat => {
            let count = n(0)?;
            if count < 0 {
                return Err("strings: negative Repeat count".into());
            }
            let text = s(1)?;
            if (count as usize).saturating_mul(text.len()) > 1 << 24 {
                return Err("strings: Repeat output length overflow".into());
            }
            str_value(text.repeat(count as usize))
        }
        Func::TrimAll => {
            let cut = s(0)?;
            str_value(s(1)?.trim_matches(|c| cut.contains(c)).to_string())
        }
        Func::TrimSuffix => {
            let v = s(1)?;
            str_value(v.strip_suffix(s(0)?).unwrap_or(v).to_string())
        }
        Func::TrimPrefix => {
            let v = s(1)?;
            str_value(v.strip_prefix(s(0)?).unwrap_or(v).to_string())
        }
        Func::Int => Ok(Value::Int(cast_i64(&a[0]))),
        Func::Float64 => Ok(Value::Float(cast_f64(&a[0]))),
        Func::Add => Ok(Value::Int(
            a.iter().map(cast_i64).fold(0i64, i64::wrapping_add),
        )),
        Func::Sub => Ok(Value::Int(cast_i64(&a[0]).wrapping_sub(cast_i64(&a[1])))),
        Func::Mul => Ok(int_reduce(a, i64::wrapping_mul)),
        Func::Div | Func::Mod => {
            let divisor = cast_i64(&a[1]);
            if divisor == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            let dividend = cast_i64(&a[0]);
            Ok(Value::Int(if func == Func::Div {
                dividend.wrapping_div(divisor)
            } else {
                dividend.wrapping_rem(divisor)
            }))
        }
        Func::Addf => Ok(Value::Float(a.iter().map(cast_f64).sum())),
        Func::Subf => Ok(float_reduce(a, |x, y| x - y)),
        Func::Mulf => Ok(float_reduce(a, |x, y| x * y)),
        Func::Divf => {
            if a[1..].iter().any(|v| cast_f64(v) == 0.0) {
                return Err("decimal division by 0".into());
            }
            Ok(float_reduce(a, |x, y| x / y))
        }
        Func::Max => Ok(int_reduce(a, i64::max)),
        Func::Min => Ok(int_reduce(a, i64::min)),
        Func::Maxf => Ok(float_reduce(a, f64::max)),
        Func::Minf => Ok(float_reduce(a, f64::min)),
        Func::Ceil => Ok(Value::Float(cast_f64(&a[0]).ceil())),
        Func::Floor => Ok(Value::Float(cast_f64(&a[0]).floor())),
        Func::Round => {
            let round_on = a.get(2).map_or(0.5, cast_f64);
            let value = cast_f64(&a[0]);
            let pow = 10f64.powf(cast_i64(&a[1]) as f64);
            let digit = pow * value;
            let fraction = digit.fract();
            let rounded = if fraction >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(rounded / pow))
        }
        Func::FromJson => Ok(parse_document(s(0)?).map_or(Value::Nil, json_to_value)),
        Func::Date => {
            let layout = s(0)?;
            let t = match &a[1] {
                Value::Time(t) => *t,
                Value::Int(secs) => GoTime::from_unix_secs(*secs),
                _ => GoTime::now(),
            };
            str_value(format_layout(&t, layout))
        }
        Func::Now => Ok(Value::Time(GoTime::now())),
        Func::Default => {
            let given = a.get(1);
            Ok(match given {
                Some(v) if !is_empty_value(v, env) => v.clone(),
                _ => a[0].clone(),
            })
        }
        Func::Humanize => str_value(humanize::humanize(prom_float(&a[0])?)),
        Func::Humanize1024 => str_value(humanize::humanize1024(prom_float(&a[0])?)),
        Func::HumanizePercentage => str_value(humanize::percentage(prom_float(&a[0])?)),
        Func::HumanizeDuration => str_value(humanize::duration(prom_float(&a[0])?)),
        Func::PromToUpper => str_value(s(0)?.to_uppercase()),
        Func::PromToLower => str_value(s(0)?.to_lowercase()),
        Func::PromTitle => str_value(humanize::title(s(0)?)),
        Func::ReReplaceAll => {
            let (pattern, repl, src) = (s(0)?, s(1)?, s(2)?);
            let regex = env.cache.get(pattern)?;
            str_value(regex.replace_all(src, repl).into_owned())
        }
        Func::Match => {
            let (pattern, text) = (s(0)?, s(1)?);
            Ok(Value::Bool(env.cache.get(pattern)?.is_match(text)))
        }
    }
}

/// Prometheus' `convertToFloat`: numbers as they are, strings parsed.
fn prom_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_float_go(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for text in ["", "a", "ab", "abc", "hello world"] {
            let enc = b64_encode(text.as_bytes());
            assert_eq!(b64_decode(&enc).expect("valid"), text.as_bytes());
        }
        assert_eq!(b64_encode(b"hi"), "aGk=");
        assert_eq!(
            b64_decode("a!==").expect_err("bad"),
            "illegal base64 data at input byte 1"
        );
    }

    #[test]
    fn url_escaping() {
        assert_eq!(query_escape("a b/c?d=é"), "a+b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(query_unescape("a+b%2Fc").expect("valid"), "a b/c");
        assert_eq!(
            query_unescape("%zz").expect_err("bad"),
            "invalid URL escape \"%zz\""
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(cast_i64(&Value::Str("0x10".into())), 16);
        assert_eq!(cast_i64(&Value::Str("2.0".into())), 2);
        assert_eq!(cast_i64(&Value::Str("2.5".into())), 0);
        assert_eq!(parse_bytes_go("5KiB"), Ok(5120));
        assert_eq!(
            parse_bytes_go("abc"),
            Err("strconv.ParseFloat: parsing \"\": invalid syntax".into())
        );
        assert_eq!(parse_bytes_go("5XB"), Err("unhandled size name: xb".into()));
        assert_eq!(parse_duration_go("1m30s"), Ok(90_000_000_000));
        assert_eq!(
            parse_duration_go("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert_eq!(
            parse_duration_go("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_duration_go("5d"),
            Err("time: unknown unit \"d\" in duration \"5d\"".into())
        );
        assert_eq!(
            parse_float_go("abc"),
            Err("strconv.ParseFloat: parsing \"abc\": invalid syntax".into())
        );
    }
}
