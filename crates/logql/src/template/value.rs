//! Dynamic values of templates and Go's `fmt` printing of them (`%v`,
//! `Sprint`, `Sprintf`).

use std::fmt::Write as _;

use super::gotime::GoTime;
use crate::print::quote;

/// Visits every label (name, value) of the template data.
pub(crate) type LabelsFn<'a> = dyn Fn(&mut dyn FnMut(&str, &str)) + 'a;

/// A template value (Go's `reflect.Value` reduced to what Loki templates use).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A nil interface (missing map entry of `fromJson` maps, `nil`).
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Time(GoTime),
    List(Vec<Value>),
    /// A `map[string]interface{}` with sorted keys.
    Map(Vec<(String, Value)>),
    /// The label map (the template's data, `map[string]string`).
    Labels,
    /// Another `map[string]string`, sorted by key (rule templates'
    /// `$externalLabels`): a missing key reads as `""`.
    StrMap(Vec<(String, String)>),
}

impl Value {
    /// Go's type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Time(_) => "time.Time",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
            Value::Labels | Value::StrMap(_) => "map[string]string",
        }
    }
}

/// Formats a float like Go's `%v` (`strconv.FormatFloat(f, 'g', -1, 64)`
/// with the exponent threshold fmt uses).
pub(crate) fn go_float(v: f64) -> String {
    format_g(v, None, false)
}

/// Shortest or fixed-precision decimal digits and the decimal exponent:
/// `v = 0.d1d2d3… × 10^exp`.
fn digits(v: f64, precision: Option<usize>) -> (String, i32) {
    let text = match precision {
        None => format!("{:e}", v.abs()),
        Some(p) => format!("{:.*e}", p.saturating_sub(1), v.abs()),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp + 1)
}

/// Go's `%g` / `%v` for floats.
pub(crate) fn format_g(v: f64, precision: Option<usize>, upper: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    let precision = precision.map(|p| p.max(1));
    let (mut digs, dp) = digits(v, precision);
    if precision.is_some() {
        // %g trims trailing zeros unless '#'.
        while digs.len() > 1 && digs.ends_with('0') {
            digs.pop();
        }
    }
    let eprec = match precision {
        None => 6,
        Some(p) => {
            if p > digs.len() && digs.len() as i32 >= dp {
                digs.len()
            } else {
                p
            }
        }
    } as i32;
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        let mut out = String::from(sign);
        out.push_str(&digs[..1]);
        if digs.len() > 1 {
            out.push('.');
            out.push_str(&digs[1..]);
        }
        let _ = write!(
            out,
            "{}{}{:02}",
            if upper { 'E' } else { 'e' },
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
        return out;
    }
    let mut out = String::from(sign);
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.push_str(&digs);
    } else if dp as usize >= digs.len() {
        out.push_str(&digs);
        out.extend(std::iter::repeat_n('0', dp as usize - digs.len()));
    } else {
        out.push_str(&digs[..dp as usize]);
        out.push('.');
        out.push_str(&digs[dp as usize..]);
    }
    out
}

/// Go's `%e` with a precision.
fn format_e(v: f64, precision: usize, upper: bool) -> String {
    if !v.is_finite() {
        return format_g(v, None, upper);
    }
    let text = format!("{:.*e}", precision, v);
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}{}{}{:02}",
        if upper { 'E' } else { 'e' },
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Appends a value as Go's `fmt.Fprint` (`%v`) prints it.
pub(crate) fn write_value(out: &mut String, value: &Value, labels: &LabelsFn<'_>) {
    match value {
        Value::Nil => out.push_str("<no value>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&go_float(*f)),
        Value::Str(s) => out.push_str(s),
        Value::Time(t) => out.push_str(&t.go_string()),
        Value::List(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                write_nested(out, item, labels);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push_str("map[");
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_nested(out, item, labels);
            }
            out.push(']');
        }
        Value::Labels => {
            let mut pairs: Vec<(String, String)> = Vec::new();
            labels(&mut |n, v| pairs.push((n.to_string(), v.to_string())));
            pairs.sort();
            write_str_map(out, &pairs);
        }
        Value::StrMap(pairs) => write_str_map(out, pairs),
    }
}

/// `map[k1:v1 k2:v2]` of sorted pairs.
fn write_str_map(out: &mut String, pairs: &[(String, String)]) {
    out.push_str("map[");
    for (index, (key, item)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{key}:{item}");
    }
    out.push(']');
}

fn write_nested(out: &mut String, value: &Value, labels: &LabelsFn<'_>) {
    if let Value::Nil = value {
        out.push_str("<nil>");
    } else {
        write_value(out, value, labels);
    }
}

/// `%v` text of a value (nil prints `<nil>` as fmt does outside templates).
pub(crate) fn sprint_one(value: &Value, labels: &LabelsFn<'_>) -> String {
    let mut out = String::new();
    write_nested(&mut out, value, labels);
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value], labels: &LabelsFn<'_>) -> String {
    let mut out = String::new();
    for (index, arg) in args.iter().enumerate() {
        if index > 0 && !matches!(arg, Value::Str(_)) && !matches!(args[index - 1], Value::Str(_)) {
            out.push(' ');
        }
        write_nested(&mut out, arg, labels);
    }
    out
}

/// Go's `fmt.Sprintln`.
pub(crate) fn sprintln(args: &[Value], labels: &LabelsFn<'_>) -> String {
    let parts: Vec<String> = args.iter().map(|a| sprint_one(a, labels)).collect();
    let mut out = parts.join(" ");
    out.push('\n');
    out
}

#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    zero: bool,
    space: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

fn pad(out: &mut String, body: &str, spec: &Spec, numeric: bool) {
    let len = body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero && numeric {
        let (sign, digits) = match body.strip_prefix(['-', '+']) {
            Some(rest) => (&body[..1], rest),
            None => ("", body),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn bad_verb(verb: char, value: &Value, labels: &LabelsFn<'_>) -> String {
    match value {
        Value::Nil => format!("%!{verb}(<nil>)"),
        other => format!(
            "%!{verb}({}={})",
            other.type_name(),
            sprint_one(other, labels)
        ),
    }
}

fn signed(spec: &Spec, text: String, negative: bool) -> String {
    if negative {
        text
    } else if spec.plus {
        format!("+{text}")
    } else if spec.space {
        format!(" {text}")
    } else {
        text
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub(crate) fn sprintf(format: &str, args: &[Value], labels: &LabelsFn<'_>) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        spec.width = width.parse().ok();
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut precision = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                precision.push(d);
                chars.next();
            }
            spec.precision = Some(precision.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        let body = match (verb, arg) {
            ('v', Value::Float(f)) | ('g', Value::Float(f)) => (
                signed(&spec, format_g(*f, spec.precision, false), *f < 0.0),
                true,
            ),
            ('G', Value::Float(f)) => (
                signed(&spec, format_g(*f, spec.precision, true), *f < 0.0),
                true,
            ),
            ('v', Value::Int(i)) | ('d', Value::Int(i)) => {
                (signed(&spec, i.to_string(), *i < 0), true)
            }
            ('v', other) => (sprint_one(other, labels), false),
            ('s', Value::Str(s)) => {
                let shown: String = match spec.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s.clone(),
                };
                (shown, false)
            }
            ('s', Value::Time(t)) => (t.go_string(), false),
            ('s', Value::List(_) | Value::Map(_) | Value::Labels | Value::StrMap(_)) => {
                (sprint_one(arg, labels), false)
            }
            ('q', Value::Str(s)) => (quote(s), false),
            ('q', Value::Int(i)) => (
                format!("'{}'", char::from_u32(*i as u32).unwrap_or('\u{fffd}')),
                false,
            ),
            ('c', Value::Int(i)) => (
                char::from_u32(*i as u32).unwrap_or('\u{fffd}').to_string(),
                false,
            ),
            ('t', Value::Bool(b)) => (b.to_string(), false),
            ('f' | 'F', Value::Float(f)) => (
                signed(
                    &spec,
                    format!("{:.*}", spec.precision.unwrap_or(6), f),
                    *f < 0.0,
                ),
                true,
            ),
            ('e' | 'E', Value::Float(f)) => (
                signed(
                    &spec,
                    format_e(*f, spec.precision.unwrap_or(6), verb == 'E'),
                    *f < 0.0,
                ),
                true,
            ),
            ('x', Value::Int(i)) => (signed(&spec, format!("{i:x}"), *i < 0), true),
            ('X', Value::Int(i)) => (signed(&spec, format!("{i:X}"), *i < 0), true),
            ('o', Value::Int(i)) => (signed(&spec, format!("{i:o}"), *i < 0), true),
            ('b', Value::Int(i)) => (signed(&spec, format!("{i:b}"), *i < 0), true),
            ('x', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02x}")).collect(), false),
            ('X', Value::Str(s)) => (s.bytes().map(|b| format!("{b:02X}")).collect(), false),
            (verb, other) => (bad_verb(verb, other, labels), false),
        };
        pad(&mut out, &body.0, &spec, body.1);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), sprint_one(a, labels)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_labels(_: &mut dyn FnMut(&str, &str)) {}

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(format_g(1234567.0, Some(3), false), "1.23e+06");
    }

    #[test]
    fn printf() {
        let args = [
            Value::Str("ab".into()),
            Value::Int(5),
            Value::Float(1.23456),
        ];
        assert_eq!(sprintf("%s-%d-%.2f", &args, &no_labels), "ab-5-1.23");
        assert_eq!(
            sprintf(
                "%5s|%-4d|%05d",
                &args[..2]
                    .iter()
                    .cloned()
                    .chain([Value::Int(-3)])
                    .collect::<Vec<_>>(),
                &no_labels
            ),
            "   ab|5   |-0003"
        );
        assert_eq!(
            sprintf("%d", &[Value::Str("x".into())], &no_labels),
            "%!d(string=x)"
        );
        assert_eq!(
            sprintf("%s %s", &[Value::Str("x".into())], &no_labels),
            "x %!s(MISSING)"
        );
        assert_eq!(
            sprintf("%q", &[Value::Str("a\"b".into())], &no_labels),
            "\"a\\\"b\""
        );
        assert_eq!(
            sprintf("%e", &[Value::Float(1234.5)], &no_labels),
            "1.234500e+03"
        );
        assert_eq!(sprintf("%v", &[Value::Float(1e6)], &no_labels), "1e+06");
    }
}
