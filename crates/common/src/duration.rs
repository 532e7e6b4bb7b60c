//! Duration syntax as Loki reads it: Prometheus durations (`5m`, `1h30m`,
//! `2d`, `1w`, `1y`) with Go's `time.ParseDuration` (`1.5s`, `300us`) as the
//! fallback. Values are nanoseconds.

use thiserror::Error;

/// A duration string that neither syntax accepts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

const NANOS_PER_MILLI: i64 = 1_000_000;
const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Parses a Prometheus duration, falling back to Go's syntax.
pub fn parse_duration(text: &str) -> Result<i64, DurationError> {
    parse_prometheus_duration(text).or_else(|_| parse_go_duration(text))
}

/// Parses a Prometheus duration: one or more `<integer><unit>` terms with
/// units `y w d h m s ms` in decreasing order, or `0`.
pub fn parse_prometheus_duration(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_string());
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(err());
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * NANOS_PER_SECOND),
        ("w", 7 * 24 * 3600 * NANOS_PER_SECOND),
        ("d", 24 * 3600 * NANOS_PER_SECOND),
        ("h", 3600 * NANOS_PER_SECOND),
        ("m", 60 * NANOS_PER_SECOND),
        ("s", NANOS_PER_SECOND),
        ("ms", NANOS_PER_MILLI),
    ];
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut total: i64 = 0;
    let mut last_unit_index: Option<usize> = None;
    while pos < bytes.len() {
        let digits_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        if pos == digits_start {
            return Err(err());
        }
        let number: i64 = text[digits_start..pos].parse().map_err(|_| err())?;
        let unit_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_alphabetic() {
            pos += 1;
        }
        let unit = &text[unit_start..pos];
        let unit_index = UNITS
            .iter()
            .position(|(name, _)| *name == unit)
            .ok_or_else(err)?;
        if last_unit_index.is_some_and(|last| unit_index <= last) {
            return Err(err());
        }
        last_unit_index = Some(unit_index);
        total = number
            .checked_mul(UNITS[unit_index].1)
            .and_then(|term| total.checked_add(term))
            .ok_or_else(err)?;
    }
    Ok(total)
}

/// Parses Go's `time.ParseDuration` syntax: an optional sign and terms such
/// as `1.5h`, `300ms`, `2h45m`, with units `ns us µs ms s m h`.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_string());
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: f64 = 0.0;
    let mut remaining = rest;
    while !remaining.is_empty() {
        let number_len = remaining
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if number_len == 0 {
            return Err(err());
        }
        let number: f64 = remaining[..number_len].parse().map_err(|_| err())?;
        remaining = &remaining[number_len..];
        let unit_len = remaining
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(remaining.len());
        let scale = match &remaining[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        remaining = &remaining[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return Err(err());
    }
    let nanos = total.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

/// Formats nanoseconds the way Go's `time.Duration.String` does (`1h0m0s`,
/// `1.5s`, `300ms`), which is how Loki prints durations in messages.
pub fn format_go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let negative = nanos < 0;
    let magnitude = nanos.unsigned_abs();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if magnitude < 1_000_000_000 {
        let (unit, scale) = if magnitude < 1_000 {
            ("ns", 1)
        } else if magnitude < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&format_fraction(magnitude, scale));
        out.push_str(unit);
        return out;
    }
    let hours = magnitude / 3_600_000_000_000;
    let minutes = (magnitude / 60_000_000_000) % 60;
    let seconds_nanos = magnitude % 60_000_000_000;
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format_fraction(seconds_nanos, 1_000_000_000));
    out.push('s');
    out
}

fn format_fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_forms() {
        assert_eq!(parse_duration("5m"), Ok(300 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("1h30m"), Ok(5400 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("2d"), Ok(172_800 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("1w"), Ok(604_800 * NANOS_PER_SECOND));
        assert_eq!(parse_duration("250ms"), Ok(250 * NANOS_PER_MILLI));
        assert_eq!(parse_duration("0"), Ok(0));
        assert!(parse_prometheus_duration("30m1h").is_err());
    }

    #[test]
    fn go_fallback() {
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("300us"), Ok(300_000));
        assert_eq!(parse_duration("-1.5h"), Ok(-5400 * NANOS_PER_SECOND));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(3600 * NANOS_PER_SECOND), "1h0m0s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(300 * NANOS_PER_MILLI), "300ms");
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(
            format_go_duration(721 * 3600 * NANOS_PER_SECOND),
            "721h0m0s"
        );
    }
}
