//! Go `time.Time` values of templates: Go reference layouts (`2006-01-02
//! 15:04:05.000 -0700 MST`) for formatting and parsing. Only UTC and fixed
//! offsets exist (no tz database: `Local` is UTC).

use std::fmt::Write as _;

/// A point in time with a fixed UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoTime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Offset east of UTC in seconds.
    pub offset: i32,
    /// True when the zone is UTC (prints as `UTC`).
    pub utc: bool,
}

/// Seconds from 0001-01-01 to 1970-01-01 (Go's zero time).
const ZERO_TIME_SECS: i64 = -62_135_596_800;

impl GoTime {
    /// `time.Unix(0, ns)` in UTC.
    pub(crate) fn from_unix_nanos(ns: i64) -> GoTime {
        GoTime {
            secs: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as u32,
            offset: 0,
            utc: true,
        }
    }

    /// `time.Unix(secs, 0)` in UTC.
    pub(crate) fn from_unix_secs(secs: i64) -> GoTime {
        GoTime {
            secs,
            nanos: 0,
            offset: 0,
            utc: true,
        }
    }

    /// Go's zero `time.Time` (0001-01-01 00:00:00 UTC).
    pub(crate) fn zero() -> GoTime {
        GoTime::from_unix_secs(ZERO_TIME_SECS)
    }

    /// The current time.
    pub(crate) fn now() -> GoTime {
        let ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        GoTime::from_unix_nanos(ns)
    }

    pub(crate) fn unix_nanos(&self) -> i128 {
        i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)
    }

    /// `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub(crate) fn go_string(&self) -> String {
        format_layout(self, "2006-01-02 15:04:05.999999999 -0700 MST")
    }

    fn civil(&self) -> Civil {
        let local = self.secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let rem = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as usize,
            yday: (days - days_from_civil(year, 1, 1) + 1) as u32,
        }
    }
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    weekday: usize,
    yday: u32,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    Tz,
    /// Numeric zone: (z for Z-variant, colons, with seconds, hours only).
    NumTz {
        z: bool,
        colon: bool,
        seconds: bool,
        short: bool,
    },
    /// Fractional seconds: digits, trailing-zero trimming (`9`s).
    Frac(usize, bool),
}

/// Go's `nextStdChunk`: (literal prefix, std, rest).
fn next_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &layout[i..];
        let hit: Option<(Std, usize)> = match b[i] {
            b'J' if rest.starts_with("January") => Some((Std::LongMonth, 7)),
            b'J' if rest.starts_with("Jan") => Some((Std::Month, 3)),
            b'M' if rest.starts_with("Monday") => Some((Std::LongWeekDay, 6)),
            b'M' if rest.starts_with("Mon") => Some((Std::WeekDay, 3)),
            b'M' if rest.starts_with("MST") => Some((Std::Tz, 3)),
            b'0' if rest.starts_with("002") => Some((Std::ZeroYearDay, 3)),
            b'0' if rest.len() >= 2 && (b'1'..=b'6').contains(&b[i + 1]) => Some((
                match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                },
                2,
            )),
            b'1' if rest.starts_with("15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if rest.starts_with("2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if rest.starts_with("_2006") => {
                return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
            }
            b'_' if rest.starts_with("__2") => Some((Std::UnderYearDay, 3)),
            b'_' if rest.starts_with("_2") => Some((Std::UnderDay, 2)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if rest.starts_with("PM") => Some((Std::PM, 2)),
            b'p' if rest.starts_with("pm") => Some((Std::Pm, 2)),
            b'-' | b'Z' => {
                let z = b[i] == b'Z';
                let body = &rest[1..];
                let forms: [(&str, bool, bool, bool); 5] = [
                    ("070000", false, true, false),
                    ("07:00:00", true, true, false),
                    ("0700", false, false, false),
                    ("07:00", true, false, false),
                    ("07", false, false, true),
                ];
                forms.iter().find(|(f, ..)| body.starts_with(f)).map(
                    |&(f, colon, seconds, short)| {
                        (
                            Std::NumTz {
                                z,
                                colon,
                                seconds,
                                short,
                            },
                            f.len() + 1,
                        )
                    },
                )
            }
            b'.' | b',' if rest.len() > 1 && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    None
                } else {
                    Some((Std::Frac(j - i - 1, ch == b'9'), j - i))
                }
            }
            _ => None,
        };
        if let Some((std, len)) = hit {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
        i += layout[i..].chars().next().map_or(1, char::len_utf8);
    }
    (layout, None, "")
}

/// Formats like Go's `Time.Format(layout)`.
pub(crate) fn format_layout(t: &GoTime, layout: &str) -> String {
    let c = t.civil();
    let mut out = String::new();
    let mut rest = layout;
    loop {
        let (prefix, std, after) = next_chunk(rest);
        out.push_str(prefix);
        let Some(std) = std else {
            break;
        };
        rest = after;
        let hour12 = match c.hour % 12 {
            0 => 12,
            h => h,
        };
        let _ = match std {
            Std::LongMonth => write!(out, "{}", LONG_MONTHS[c.month as usize - 1]),
            Std::Month => write!(out, "{}", &LONG_MONTHS[c.month as usize - 1][..3]),
            Std::NumMonth => write!(out, "{}", c.month),
            Std::ZeroMonth => write!(out, "{:02}", c.month),
            Std::LongWeekDay => write!(out, "{}", LONG_DAYS[c.weekday]),
            Std::WeekDay => write!(out, "{}", &LONG_DAYS[c.weekday][..3]),
            Std::Day => write!(out, "{}", c.day),
            Std::UnderDay => write!(out, "{:>2}", c.day),
            Std::ZeroDay => write!(out, "{:02}", c.day),
            Std::UnderYearDay => write!(out, "{:>3}", c.yday),
            Std::ZeroYearDay => write!(out, "{:03}", c.yday),
            Std::Hour => write!(out, "{:02}", c.hour),
            Std::Hour12 => write!(out, "{hour12}"),
            Std::ZeroHour12 => write!(out, "{hour12:02}"),
            Std::Minute => write!(out, "{}", c.minute),
            Std::ZeroMinute => write!(out, "{:02}", c.minute),
            Std::Second => write!(out, "{}", c.second),
            Std::ZeroSecond => write!(out, "{:02}", c.second),
            Std::LongYear => {
                if c.year < 0 {
                    write!(out, "-{:04}", -c.year)
                } else {
                    write!(out, "{:04}", c.year)
                }
            }
            Std::Year => write!(out, "{:02}", c.year.rem_euclid(100)),
            Std::PM => write!(out, "{}", if c.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => write!(out, "{}", if c.hour >= 12 { "pm" } else { "am" }),
            Std::Tz => {
                if t.utc {
                    write!(out, "UTC")
                } else {
                    format_offset(&mut out, t.offset, false, false, false);
                    Ok(())
                }
            }
            Std::NumTz {
                z,
                colon,
                seconds,
                short,
            } => {
                if z && t.offset == 0 {
                    write!(out, "Z")
                } else {
                    format_offset(&mut out, t.offset, colon, seconds, short);
                    Ok(())
                }
            }
            Std::Frac(digits, trim) => {
                let frac = format!("{:09}", t.nanos);
                let mut shown = &frac[..digits.min(9)];
                if trim {
                    shown = shown.trim_end_matches('0');
                    if !shown.is_empty() {
                        out.push('.');
                    }
                } else {
                    out.push('.');
                }
                write!(out, "{shown}")
            }
        };
    }
    out
}

fn format_offset(out: &mut String, offset: i32, colon: bool, seconds: bool, short: bool) {
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    let _ = write!(out, "{sign}{:02}", abs / 3600);
    if short {
        return;
    }
    if colon {
        out.push(':');
    }
    let _ = write!(out, "{:02}", abs / 60 % 60);
    if seconds {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", abs % 60);
    }
}

fn take_digits(value: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = value
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_digit)
        .count();
    if n < min {
        return None;
    }
    Some((value[..n].parse().ok()?, &value[n..]))
}

fn take_name<'v>(value: &'v str, names: &[&str], short: bool) -> Option<(usize, &'v str)> {
    for (index, name) in names.iter().enumerate() {
        let name = if short { &name[..3] } else { name };
        if value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name) {
            return Some((index, &value[name.len()..]));
        }
    }
    None
}

/// Parses like Go's `time.ParseInLocation(layout, value, loc)` where `loc`
/// is a fixed offset (`default_offset`); `None` on failure.
pub(crate) fn parse_layout(
    layout: &str,
    value: &str,
    default_offset: i32,
    default_utc: bool,
) -> Option<GoTime> {
    let mut value = value;
    let mut rest = layout;
    let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut utc_name = false;
    loop {
        let (prefix, std, after) = next_chunk(rest);
        value = value.strip_prefix(prefix)?;
        let Some(std) = std else {
            if !value.is_empty() {
                return None;
            }
            break;
        };
        rest = after;
        match std {
            Std::LongYear => {
                let (y, r) = take_digits(value, 4, 4)?;
                year = y;
                value = r;
            }
            Std::Year => {
                let (y, r) = take_digits(value, 2, 2)?;
                year = if y >= 69 { 1900 + y } else { 2000 + y };
                value = r;
            }
            Std::LongMonth | Std::Month => {
                let (m, r) = take_name(value, &LONG_MONTHS, std == Std::Month)?;
                month = m as u32 + 1;
                value = r;
            }
            Std::NumMonth | Std::ZeroMonth => {
                let (m, r) = take_digits(value, if std == Std::ZeroMonth { 2 } else { 1 }, 2)?;
                month = u32::try_from(m).ok()?;
                value = r;
            }
            Std::LongWeekDay | Std::WeekDay => {
                let (_, r) = take_name(value, &LONG_DAYS, std == Std::WeekDay)?;
                value = r;
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay {
                    value = value.strip_prefix(' ').unwrap_or(value);
                }
                let (d, r) = take_digits(value, if std == Std::ZeroDay { 2 } else { 1 }, 2)?;
                day = u32::try_from(d).ok()?;
                value = r;
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                let (_, r) = take_digits(value.trim_start(), 1, 3)?;
                value = r;
            }
            Std::Hour | Std::Hour12 | Std::ZeroHour12 => {
                let min = if std == Std::Hour12 { 1 } else { 2 };
                let (h, r) = take_digits(value, min, 2)?;
                hour = u32::try_from(h).ok()?;
                value = r;
            }
            Std::Minute | Std::ZeroMinute => {
                let (m, r) = take_digits(value, if std == Std::ZeroMinute { 2 } else { 1 }, 2)?;
                minute = u32::try_from(m).ok()?;
                value = r;
            }
            Std::Second | Std::ZeroSecond => {
                let (s, r) = take_digits(value, if std == Std::ZeroSecond { 2 } else { 1 }, 2)?;
                second = u32::try_from(s).ok()?;
                value = r;
                // Go accepts a fractional second after seconds even if the layout has none.
                if !rest.starts_with(['.', ',']) {
                    if let Some(frac) = value.strip_prefix(['.', ',']) {
                        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                        if n > 0 {
                            nanos = frac_nanos(&frac[..n]);
                            value = &frac[n..];
                        }
                    }
                }
            }
            Std::PM | Std::Pm => {
                let word = value.get(..2)?;
                pm = Some(match word.to_ascii_uppercase().as_str() {
                    "PM" => true,
                    "AM" => false,
                    _ => return None,
                });
                value = &value[2..];
            }
            Std::Tz => {
                if let Some(r) = value.strip_prefix("UTC") {
                    utc_name = true;
                    offset = Some(0);
                    value = r;
                } else {
                    let n = value.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return None;
                    }
                    value = &value[n..];
                }
            }
            Std::NumTz {
                z,
                colon,
                seconds,
                short,
            } => {
                if z {
                    if let Some(r) = value.strip_prefix('Z') {
                        offset = Some(0);
                        utc_name = true;
                        value = r;
                        continue;
                    }
                }
                let sign = match value.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                value = &value[1..];
                let (h, r) = take_digits(value, 2, 2)?;
                value = r;
                let mut secs = h * 3600;
                if !short {
                    if colon {
                        value = value.strip_prefix(':')?;
                    }
                    let (m, r) = take_digits(value, 2, 2)?;
                    value = r;
                    secs += m * 60;
                    if seconds {
                        if colon {
                            value = value.strip_prefix(':')?;
                        }
                        let (s, r) = take_digits(value, 2, 2)?;
                        value = r;
                        secs += s;
                    }
                }
                offset = Some(i32::try_from(sign * secs).ok()?);
            }
            Std::Frac(digits, trim) => {
                let frac = value.strip_prefix(['.', ','])?;
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if !trim && n != digits {
                    return None;
                }
                nanos = frac_nanos(&frac[..n]);
                value = &frac[n..];
            }
        }
    }
    if let Some(pm) = pm {
        if hour > 12 {
            return None;
        }
        if pm && hour < 12 {
            hour += 12;
        } else if !pm && hour == 12 {
            hour = 0;
        }
    }
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    let (offset, utc) = match offset {
        Some(off) => (off, utc_name || (off == 0 && default_utc)),
        None => (default_offset, default_utc),
    };
    let local = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(GoTime {
        secs: local - i64::from(offset),
        nanos,
        offset,
        utc,
    })
}

fn frac_nanos(digits: &str) -> u32 {
    let mut padded: String = digits.chars().take(9).collect();
    while padded.len() < 9 {
        padded.push('0');
    }
    padded.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = GoTime::from_unix_nanos(1_700_000_000_123_456_789);
        assert_eq!(
            format_layout(&t, "2006-01-02T15:04:05.000Z07:00"),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(t.go_string(), "2023-11-14 22:13:20.123456789 +0000 UTC");
        assert_eq!(format_layout(&t, "Jan _2 3:04PM Mon"), "Nov 14 10:13PM Tue");
        assert_eq!(format_layout(&GoTime::zero(), "2006-01-02"), "0001-01-01");
    }

    #[test]
    fn parses() {
        let t = parse_layout(
            "2006-01-02T15:04:05Z07:00",
            "2023-11-14T22:13:20+02:00",
            0,
            true,
        )
        .expect("valid");
        assert_eq!(t.secs, 1_700_000_000 - 7200);
        let t = parse_layout(
            "2006-01-02 15:04:05.000",
            "2023-11-14 22:13:20.123",
            0,
            true,
        )
        .expect("valid");
        assert_eq!(t.nanos, 123_000_000);
        assert!(parse_layout("2006-01-02", "2023-02-30", 0, true).is_none());
        assert!(parse_layout("2006-01-02", "nope", 0, true).is_none());
    }
}
