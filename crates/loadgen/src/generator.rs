//! Deterministic generators of realistic service logs.
//!
//! [`ServiceLog`] simulates one HTTP service: requests arrive every ~2 ms
//! with up to 4 in flight, interleaved; each logs 2–6 lines from a small set
//! of templates ("request received", cache hit/miss, "db query", upstream
//! call, "request completed", rare warn/error) carrying the request's random
//! 128-bit trace id and 64-bit span id. Paths come from 8 routes (3 with an
//! id from a bounded range), status codes from a skewed distribution (mostly
//! 200), durations from a long-tailed one, user ids from a population of
//! 20,000. About 1 line in 40 is a background line (pool stats, metric
//! flush) without a trace. Levels end up ~80% info, ~15% debug, a few
//! warn/error. The same events render as JSON (zap-like keys `ts`, `level`,
//! `caller`, `msg`, …), logfmt, or Spring-Boot-style plain text.
//!
//! [`RandomLog`] is the worst case for compression: every line has its own
//! random trace id, span id and user id, and independently random level,
//! service, path and message.
//!
//! Both are pure functions of their seed and the timestamps they are given,
//! so a run is reproducible.

mod random;
mod service;

pub use random::{generate as generate_random, RandomLog};
pub use service::{generate as generate_service, ServiceLog};

/// 2024-05-17T00:00:00Z in nanoseconds: the day the benchmark data sets use.
pub const BENCH_DAY_START_NS: i64 = 1_715_904_000_000_000_000;

/// How a line is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs, values with spaces quoted.
    Logfmt,
    /// Plain text with a timestamp, level, thread, logger and message.
    Text,
}

impl Format {
    /// Every format, in the order `mixed` assigns them to streams.
    pub const ALL: [Format; 3] = [Format::Json, Format::Logfmt, Format::Text];

    /// The format's name, as used on the command line and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Text => "text",
        }
    }

    /// Parses `json`, `logfmt` or `text`.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
    }
}

/// Deterministic xorshift64* generator so every run sees the same lines.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (0 is replaced, xorshift cannot leave it).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A uniformly chosen item.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// A number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Long-tailed duration in milliseconds: mostly a few ms, sometimes seconds.
    fn duration_ms(&mut self) -> f64 {
        let base = 1.0 + self.below(20) as f64;
        let tail = match self.below(100) {
            0..=79 => 1.0,
            80..=96 => 5.0,
            _ => 60.0,
        };
        (base * tail * (1.0 + self.below(1000) as f64 / 1000.0) * 100.0).round() / 100.0
    }

    /// An index into `weights`, chosen with probability proportional to its weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut roll = self.below(total);
        for (index, weight) in weights.iter().enumerate() {
            if roll < *weight {
                return index;
            }
            roll -= weight;
        }
        weights.len() - 1
    }
}

/// A UTC civil time split out of nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
    pub(crate) nanos: i64,
}

impl Civil {
    /// Splits `ns` (days from civil, Howard Hinnant's algorithm).
    pub(crate) fn from_nanos(ns: i64) -> Civil {
        let seconds = ns.div_euclid(1_000_000_000);
        let nanos = ns.rem_euclid(1_000_000_000);
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_index + 2) / 5 + 1;
        let month = if month_index < 10 {
            month_index + 3
        } else {
            month_index - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: (second_of_day / 60) % 60,
            second: second_of_day % 60,
            nanos,
        }
    }

    /// Writes `2024-05-17`.
    pub(crate) fn write_date(&self, out: &mut String) {
        if (0..10_000).contains(&self.year) {
            push_digits(out, self.year, 4);
        } else {
            use std::fmt::Write;
            let _ = write!(out, "{:04}", self.year);
        }
        out.push('-');
        push_digits(out, self.month, 2);
        out.push('-');
        push_digits(out, self.day, 2);
    }

    /// Writes `10:00:00.123` (milliseconds).
    pub(crate) fn write_time_ms(&self, out: &mut String) {
        push_digits(out, self.hour, 2);
        out.push(':');
        push_digits(out, self.minute, 2);
        out.push(':');
        push_digits(out, self.second, 2);
        out.push('.');
        push_digits(out, self.nanos / 1_000_000, 3);
    }
}

/// Writes the last `width` decimal digits of `value` (0 ≤ value <
/// 10^width), zero-padded: what `{:0width$}` writes, without the
/// formatting machinery (the load tool writes a timestamp per line).
fn push_digits(out: &mut String, value: i64, width: u32) {
    let mut divisor = 10i64.pow(width - 1);
    while divisor > 0 {
        let digit = (value / divisor % 10) as u8;
        out.push(char::from(b'0' + digit));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time_of_known_instants() {
        let civil = Civil::from_nanos(BENCH_DAY_START_NS + 36_000_123_456_789);
        let mut out = String::new();
        civil.write_date(&mut out);
        out.push('T');
        civil.write_time_ms(&mut out);
        assert_eq!(out, "2024-05-17T10:00:00.123");
        assert_eq!(
            Civil::from_nanos(951_782_400_000_000_000),
            Civil {
                year: 2000,
                month: 2,
                day: 29,
                hour: 0,
                minute: 0,
                second: 0,
                nanos: 0
            }
        );
    }

    #[test]
    fn civil_time_writes_as_format_does() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let ns = (rng.next_u64() >> 2) as i64 - (1i64 << 61);
            let civil = Civil::from_nanos(ns);
            let mut out = String::new();
            civil.write_date(&mut out);
            civil.write_time_ms(&mut out);
            let expected = format!(
                "{:04}-{:02}-{:02}{:02}:{:02}:{:02}.{:03}",
                civil.year,
                civil.month,
                civil.day,
                civil.hour,
                civil.minute,
                civil.second,
                civil.nanos / 1_000_000
            );
            assert_eq!(out, expected, "{ns}");
        }
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.as_str()), Some(format));
        }
        assert_eq!(Format::parse("xml"), None);
    }
}
