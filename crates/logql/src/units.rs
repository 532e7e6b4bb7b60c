//! Duration, bytes and number literals: parsing as Loki's lexer does
//! (Prometheus durations with Go `time.ParseDuration` fallback, go-humanize
//! byte sizes) and canonical printing that lexes back to the same value.

use std::fmt::Write as _;

const NS_PER_MS: i64 = 1_000_000;

/// Parses a Prometheus duration (`1h30m`, `5m`, `1d`, `2w`, `1y`, `0`),
/// returning nanoseconds. Units must appear from biggest to smallest.
pub(crate) fn parse_prometheus_duration(input: &str) -> Result<i64, String> {
    match input {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: \"{input}\"");
    // (unit, position, milliseconds)
    const UNITS: [(&str, u8, u64); 7] = [
        ("y", 1, 1000 * 60 * 60 * 24 * 365),
        ("w", 2, 1000 * 60 * 60 * 24 * 7),
        ("d", 3, 1000 * 60 * 60 * 24),
        ("h", 4, 1000 * 60 * 60),
        ("m", 5, 1000 * 60),
        ("s", 6, 1000),
        ("ms", 7, 1),
    ];
    let bytes = input.as_bytes();
    let mut index = 0;
    let mut last_position = 0u8;
    let mut total_ms: u64 = 0;
    while index < bytes.len() {
        let digits_start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        if index == digits_start {
            return Err(invalid());
        }
        let value: u64 = input[digits_start..index].parse().map_err(|_| invalid())?;
        let unit_start = index;
        while index < bytes.len() && !bytes[index].is_ascii_digit() {
            index += 1;
        }
        if index == unit_start {
            return Err(invalid());
        }
        let unit = &input[unit_start..index];
        let Some(&(_, position, mult)) = UNITS.iter().find(|(name, _, _)| *name == unit) else {
            return Err(invalid());
        };
        if position <= last_position {
            return Err(invalid());
        }
        last_position = position;
        let added = value
            .checked_mul(mult)
            .and_then(|ms| total_ms.checked_add(ms))
            .filter(|ms| *ms <= (i64::MAX as u64) / (NS_PER_MS as u64))
            .ok_or_else(|| "duration out of range".to_string())?;
        total_ms = added;
    }
    Ok(total_ms as i64 * NS_PER_MS)
}

/// Parses a Go `time.ParseDuration` string (`1.5s`, `-5m`, `1h2m3us`), in ns.
pub(crate) fn parse_go_duration(input: &str) -> Option<i64> {
    let mut rest = input;
    let mut negative = false;
    if let Some(stripped) = rest.strip_prefix('-') {
        negative = true;
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int_value: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = int_value.checked_mul(unit_ns)?;
        if !frac_part.is_empty() {
            // Go truncates the fraction's contribution to whole nanoseconds.
            let digits = &frac_part[..frac_part.len().min(30)];
            let frac: u128 = digits.parse().ok()?;
            let scale = 10u128.checked_pow(digits.len() as u32)?;
            value = value.checked_add(frac.checked_mul(unit_ns)? / scale)?;
        }
        total = total.checked_add(value)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return None;
        }
    }
    let signed = if negative {
        (total as i128).wrapping_neg()
    } else {
        total as i128
    };
    i64::try_from(signed).ok()
}

/// Parses a duration literal like Loki's lexer: Prometheus first, then Go.
pub(crate) fn parse_duration_literal(input: &str) -> Option<i64> {
    parse_prometheus_duration(input)
        .ok()
        .or_else(|| parse_go_duration(input))
}

/// Parses a byte size like go-humanize's `ParseBytes` (`5KB`=5000, `5KiB`=5120).
pub(crate) fn parse_bytes(input: &str) -> Option<u64> {
    let number_len = input
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == ','))
        .map_or(input.len(), |(i, _)| i);
    let number: String = input[..number_len].chars().filter(|c| *c != ',').collect();
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let unit = input[number_len..].trim().to_ascii_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1_000_000_000_000_000,
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1_000_000_000_000_000_000,
        "ei" | "eib" => 1 << 60,
        _ => return None,
    };
    let product = value * multiplier as f64;
    if !product.is_finite() || product >= u64::MAX as f64 {
        return None;
    }
    Some(product as u64)
}

/// Formats nanoseconds so that Loki's lexer reads back the same value:
/// Prometheus style (`1h30m`, `1d`, `0s`) for non-negative whole
/// milliseconds, Go style (`-1m30s`, `1us500ns`) otherwise.
pub fn format_duration(nanos: i64) -> String {
    if nanos >= 0 && nanos % NS_PER_MS == 0 {
        return format_prometheus_duration(nanos / NS_PER_MS);
    }
    let mut out = String::new();
    if nanos < 0 {
        out.push('-');
    }
    let mut rest = nanos.unsigned_abs();
    const GO_UNITS: [(&str, u64); 6] = [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    for (unit, mult) in GO_UNITS {
        let value = rest / mult;
        if value > 0 {
            let _ = write!(out, "{value}{unit}");
            rest -= value * mult;
        }
    }
    if out.is_empty() || out == "-" {
        out = "0s".to_string();
    }
    out
}

fn format_prometheus_duration(total_ms: i64) -> String {
    if total_ms == 0 {
        return "0s".to_string();
    }
    let mut ms = total_ms;
    let mut out = String::new();
    let units: [(&str, i64, bool); 7] = [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (unit, mult, exact) in units {
        if exact && ms % mult != 0 {
            continue;
        }
        let value = ms / mult;
        if value > 0 {
            let _ = write!(out, "{value}{unit}");
            ms -= value * mult;
        }
    }
    out
}

/// Formats a byte count with the largest exact unit (`1KiB`, `5MB`, `17B`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 10] = [
        ("PiB", 1 << 50),
        ("PB", 1_000_000_000_000_000),
        ("TiB", 1 << 40),
        ("TB", 1_000_000_000_000),
        ("GiB", 1 << 30),
        ("GB", 1_000_000_000),
        ("MiB", 1 << 20),
        ("MB", 1_000_000),
        ("KiB", 1 << 10),
        ("KB", 1_000),
    ];
    if bytes != 0 {
        for (unit, mult) in UNITS {
            if bytes % mult == 0 {
                return format!("{}{unit}", bytes / mult);
            }
        }
    }
    format!("{bytes}B")
}

/// Formats a float so that it lexes back as the same number literal
/// (`1`, `0.5`, `-2`, `1e+300`). `-0` prints as `-0.0` because Loki lexes
/// `-0` as a duration. Non-finite values have no literal form and print as
/// constant expressions that fold back to them (`(1 / 0)`).
pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "(0 / 0)".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "(1 / 0)" } else { "(-1 / 0)" }.to_string();
    }
    if value == 0.0 && value.is_sign_negative() {
        return "-0.0".to_string();
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_prometheus_duration("5m"), Ok(300 * S));
        assert_eq!(parse_prometheus_duration("1h30m"), Ok(5400 * S));
        assert_eq!(parse_prometheus_duration("1d"), Ok(86400 * S));
        assert_eq!(parse_prometheus_duration("0"), Ok(0));
        assert_eq!(parse_prometheus_duration("10ms"), Ok(10_000_000));
        assert_eq!(
            parse_prometheus_duration("1.5m"),
            Err("not a valid duration string: \"1.5m\"".to_string())
        );
        assert_eq!(
            parse_prometheus_duration("5x"),
            Err("not a valid duration string: \"5x\"".to_string())
        );
        assert!(parse_prometheus_duration("30m1h").is_err());
        assert!(parse_prometheus_duration("999999999999y").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("-5m"), Some(-300 * S));
        assert_eq!(parse_go_duration("1us500ns"), Some(1500));
        assert_eq!(parse_go_duration("-0"), Some(0));
        assert_eq!(parse_go_duration("1"), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration("."), None);
        assert_eq!(parse_go_duration("9999999999999h"), None);
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("5KB"), Some(5000));
        assert_eq!(parse_bytes("5kB"), Some(5000));
        assert_eq!(parse_bytes("5KiB"), Some(5120));
        assert_eq!(parse_bytes("1.5MB"), Some(1_500_000));
        assert_eq!(parse_bytes("5M"), Some(5_000_000));
        assert_eq!(parse_bytes("5X"), None);
        assert_eq!(parse_bytes("99999999EB"), None);
        assert_eq!(format_bytes(5120), "5KiB");
        assert_eq!(format_bytes(5000), "5KB");
        assert_eq!(format_bytes(17), "17B");
        assert_eq!(format_bytes(0), "0B");
    }

    #[test]
    fn duration_printing_round_trips() {
        for nanos in [
            0,
            1,
            1500,
            300 * S,
            5400 * S,
            86400 * S,
            7 * 86400 * S,
            365 * 86400 * S,
            -300 * S,
            -1,
            1_500_000_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let text = format_duration(nanos);
            assert_eq!(parse_duration_literal(&text), Some(nanos), "{text}");
        }
        assert_eq!(format_duration(5400 * S), "1h30m");
        assert_eq!(format_duration(-90 * S), "-1m30s");
    }

    #[test]
    fn float_printing() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(-2.0), "-2");
        assert_eq!(format_float(-0.0), "-0.0");
        assert_eq!(format_float(1e300), "1e300");
        assert_eq!(format_float(f64::INFINITY), "(1 / 0)");
    }
}
