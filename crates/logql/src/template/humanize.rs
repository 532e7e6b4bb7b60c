//! Prometheus' number and text formatting functions of rule templates
//! (`humanize`, `humanize1024`, `humanizePercentage`, `humanizeDuration`,
//! `title`).

use super::value::format_g;

/// `%.4g`, Go's way.
fn g4(v: f64) -> String {
    format_g(v, Some(4), false)
}

const LARGE: [&str; 8] = ["k", "M", "G", "T", "P", "E", "Z", "Y"];
const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];
const BINARY: [&str; 8] = ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];

/// Brings `v` into `[1, factor)` in magnitude, as far as `prefixes` go:
/// divides by `factor` while it is `factor` or more (`up`), or multiplies
/// while it is below 1. Returns the scaled value and the last prefix used
/// ("" when none).
fn scale(mut v: f64, factor: f64, prefixes: [&'static str; 8], up: bool) -> (f64, &'static str) {
    let mut prefix = "";
    for next in prefixes {
        let in_range = if up { v.abs() < factor } else { v.abs() >= 1.0 };
        if in_range {
            break;
        }
        prefix = next;
        v = if up { v / factor } else { v * factor };
    }
    (v, prefix)
}

/// `humanize`: SI prefixes, 4 significant digits (`1.235M`, `1.2m`).
pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let (v, prefix) = if v.abs() >= 1.0 {
        scale(v, 1000.0, LARGE, true)
    } else {
        scale(v, 1000.0, SMALL, false)
    };
    format!("{}{prefix}", g4(v))
}

/// `humanize1024`: binary prefixes for values above 1 (`2ki`).
pub(crate) fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    let (v, prefix) = scale(v, 1024.0, BINARY, true);
    format!("{}{prefix}", g4(v))
}

/// `humanizePercentage`: a ratio as a percentage (`0.1234` → `12.34%`).
pub(crate) fn percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

/// `humanizeDuration` of seconds: `1d 2h 3m 4s`, `1.5s`, `250ms`.
pub(crate) fn duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
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
            format!("{sign}{}s", g4(v))
        };
    }
    let (v, prefix) = scale(v, 1000.0, SMALL, false);
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `title` (`cases.Title` without lowering): the first letter
/// of every word upper-cased; an apostrophe does not start a word.
pub(crate) fn title(text: &str) -> String {
    title_words(text, |c| c.is_alphanumeric() || c == '_' || c == '\'')
}

/// Upper-cases the first character of every word; a word is a run of
/// characters `in_word` accepts.
pub(crate) fn title_words(text: &str, in_word: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !in_word(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize1024(2048.0), "2ki");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(percentage(0.1234), "12.34%");
        assert_eq!(duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(duration(3725.0), "1h 2m 5s");
        assert_eq!(duration(1.5), "1.5s");
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(0.0), "0s");
        assert_eq!(title("hello world"), "Hello World");
        assert_eq!(title("don't stop"), "Don't Stop");
    }
}
