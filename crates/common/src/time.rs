//! Timestamps as Loki's HTTP API reads and writes them. Everything inside
//! Sluice is `i64` nanoseconds since the Unix epoch.

use chrono::{DateTime, SecondsFormat, Utc};

/// Returns the current time in nanoseconds since the epoch.
pub fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Why a timestamp parameter did not parse; Display gives Go's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("strconv.ParseInt: parsing {input:?}: invalid syntax")]
pub struct TimestampError {
    /// The text as sent.
    pub input: String,
}

/// Parses a query timestamp with Loki's rules: text containing `.` is float
/// seconds (rounded to milliseconds); an integer of at most 10 digits is
/// seconds, a longer one nanoseconds; anything else must be RFC3339Nano.
pub fn parse_timestamp(text: &str) -> Result<i64, TimestampError> {
    if text.contains('.') {
        if let Ok(float_seconds) = text.parse::<f64>() {
            if float_seconds.is_finite() {
                let whole = float_seconds.trunc();
                let millis = ((float_seconds - whole) * 1000.0).round() as i64;
                let seconds = clamp_f64_to_i64(whole);
                return Ok(seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(millis * 1_000_000));
            }
        }
    }
    match text.parse::<i64>() {
        Ok(number) if text.trim_start_matches(['-', '+']).len() <= 10 => {
            Ok(number.saturating_mul(1_000_000_000))
        }
        Ok(number) => Ok(number),
        Err(_) => DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|time| time.timestamp_nanos_opt())
            .ok_or_else(|| TimestampError {
                input: text.to_string(),
            }),
    }
}

fn clamp_f64_to_i64(value: f64) -> i64 {
    if value >= i64::MAX as f64 {
        i64::MAX
    } else if value <= i64::MIN as f64 {
        i64::MIN
    } else {
        value as i64
    }
}

/// Formats nanoseconds as RFC3339 with the fewest fractional digits needed
/// (Go's `time.RFC3339Nano`), as used in Loki's messages.
pub fn format_rfc3339_nano(nanos: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Formats nanoseconds as seconds with at most three decimals, the form
/// Loki uses for sample timestamps in matrix and vector results.
pub fn format_unix_seconds(nanos: i64) -> String {
    let millis = nanos.div_euclid(1_000_000);
    let seconds = millis.div_euclid(1000);
    let remainder = millis.rem_euclid(1000);
    if remainder == 0 {
        seconds.to_string()
    } else {
        let digits = format!("{remainder:03}");
        format!("{seconds}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_timestamp_forms() {
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_timestamp("4000000000"), Ok(4_000_000_000_000_000_000));
        assert_eq!(
            parse_timestamp("1700000000123456789"),
            Ok(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_timestamp("1700000000.5"),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_timestamp("1700000000.1234"),
            Ok(1_700_000_000_123_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_timestamp("abc").unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            format_rfc3339_nano(1_700_000_000_000_000_000),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(format_unix_seconds(1_700_000_000_000_000_000), "1700000000");
        assert_eq!(
            format_unix_seconds(1_700_000_000_250_000_000),
            "1700000000.25"
        );
        assert_eq!(
            format_unix_seconds(1_700_000_000_206_999_999),
            "1700000000.206"
        );
    }
}
