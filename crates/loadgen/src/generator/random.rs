//! The worst case for compression: every field random on every line.

use std::fmt::Write;

use super::{Civil, Format, Rng};

const LEVELS: [&str; 5] = ["info", "info", "info", "debug", "warn"];
const SERVICES: [&str; 4] = ["checkout", "payments", "inventory", "gateway"];
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart",
    "/api/v1/users/{id}",
    "/healthz",
    "/api/v2/search",
    "/api/v1/payments/authorize",
];
const MESSAGES: [&str; 6] = [
    "request completed",
    "cache miss, fetching from upstream",
    "retrying upstream call",
    "user session refreshed",
    "slow query detected",
    "published event to queue",
];

/// Lines whose every field is drawn independently (JSON or logfmt; plain
/// text renders as logfmt).
#[derive(Debug)]
pub struct RandomLog {
    rng: Rng,
    json: bool,
    clock_ns: i64,
}

impl RandomLog {
    /// A generator starting at 2024-05-17T00:00:00Z, 1–51 ms between lines.
    pub fn new(format: Format, seed: u64) -> RandomLog {
        RandomLog {
            rng: Rng::new(seed),
            json: format == Format::Json,
            clock_ns: super::BENCH_DAY_START_NS,
        }
    }

    /// Writes the next line into `out` (cleared first) and returns its timestamp.
    pub fn next_entry(&mut self, out: &mut String) -> i64 {
        out.clear();
        let rng = &mut self.rng;
        self.clock_ns += 1_000_000 + rng.below(50_000_000) as i64;
        let level = rng.pick(&LEVELS);
        let service = rng.pick(&SERVICES);
        let path = rng.pick(&PATHS);
        let message = rng.pick(&MESSAGES);
        let trace_high = rng.next_u64();
        let trace_low = rng.next_u64();
        let span = rng.next_u64();
        let status = [200, 200, 200, 201, 404, 500][rng.below(6) as usize];
        let duration = rng.below(250_000) as f64 / 1000.0;
        let user = rng.below(100_000);
        let civil = Civil::from_nanos(self.clock_ns);
        let mut ts = String::with_capacity(30);
        civil.write_date(&mut ts);
        let _ = write!(
            ts,
            "T{:02}:{:02}:{:02}.{:09}Z",
            civil.hour, civil.minute, civil.second, civil.nanos
        );
        let _ = if self.json {
            write!(
                out,
                r#"{{"ts":"{ts}","level":"{level}","service":"{service}","msg":"{message}","method":"GET","path":"{path}","status":{status},"duration_ms":{duration},"user_id":{user},"trace_id":"{trace_high:016x}{trace_low:016x}","span_id":"{span:016x}"}}"#
            )
        } else {
            write!(
                out,
                r#"ts={ts} level={level} service={service} msg="{message}" method=GET path={path} status={status} duration={duration}ms user_id={user} trace_id={trace_high:016x}{trace_low:016x} span_id={span:016x}"#
            )
        };
        self.clock_ns
    }
}

/// Returns (timestamp, line) pairs until the lines add up to `bytes`.
pub fn generate(format: Format, bytes: usize, seed: u64) -> Vec<(i64, String)> {
    let mut log = RandomLog::new(format, seed);
    let mut out = Vec::new();
    let mut total = 0;
    let mut line = String::new();
    while total < bytes {
        let ts = log.next_entry(&mut line);
        total += line.len();
        out.push((ts, line.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_parseable() {
        let first = generate(Format::Json, 50_000, 7);
        assert_eq!(first, generate(Format::Json, 50_000, 7));
        for (_, line) in &first {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            assert_eq!(value["trace_id"].as_str().expect("trace").len(), 32);
        }
        for (_, line) in generate(Format::Logfmt, 20_000, 7) {
            assert!(line.starts_with("ts=2024-05-17T"), "{line}");
            assert_eq!(line.matches('"').count(), 2, "{line}");
        }
    }
}
