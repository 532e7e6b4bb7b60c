//! One simulated HTTP service and its log lines (see the parent module).

use std::fmt::Write;

use super::{Civil, Format, Rng};

/// A route: method, path template (`{}` takes an id), handler.
const ROUTES: [(&str, &str, &str); 8] = [
    ("GET", "/api/v1/orders/{}", "orders"),
    ("POST", "/api/v1/orders", "orders"),
    ("GET", "/api/v1/cart", "cart"),
    ("PUT", "/api/v1/cart/items/{}", "cart"),
    ("GET", "/api/v1/products/{}", "catalog"),
    ("GET", "/api/v2/search", "catalog"),
    ("POST", "/api/v1/payments/authorize", "payments"),
    ("GET", "/healthz", "health"),
];
const ROUTE_WEIGHTS: [u64; 8] = [20, 8, 15, 6, 25, 10, 6, 10];
const HEALTH_ROUTE: usize = 7;
const STATUSES: [(u16, u64); 8] = [
    (200, 820),
    (201, 50),
    (204, 20),
    (304, 30),
    (400, 25),
    (404, 40),
    (429, 5),
    (500, 10),
];
const UPSTREAMS: [&str; 4] = ["inventory", "pricing", "user-profile", "fraud-check"];
const TABLES: [&str; 4] = ["orders", "order_items", "carts", "products"];
const ERRORS: [&str; 3] = [
    "context deadline exceeded",
    "connection reset by peer",
    "upstream returned 503 Service Unavailable",
];
const THREADS: u64 = 200;
const USERS: u64 = 20_000;
const MAX_IN_FLIGHT: usize = 4;

/// Where the service runs, written into every line when set.
#[derive(Debug, Clone)]
struct Context {
    service: String,
    pod: String,
}

/// One request in flight: its fixed fields and how many lines it still logs.
#[derive(Debug)]
struct Request {
    route: usize,
    path: String,
    trace: String,
    span: String,
    user: u64,
    thread: u64,
    /// Middle lines left before "request completed".
    remaining: u32,
    elapsed_ms: f64,
}

impl Request {
    fn new(rng: &mut Rng) -> Request {
        let route = rng.weighted(&ROUTE_WEIGHTS);
        let path = ROUTES[route]
            .1
            .replace("{}", &(100_000 + rng.below(900_000)).to_string());
        Request {
            route,
            path,
            trace: format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64()),
            span: format!("{:016x}", rng.next_u64()),
            user: 1 + rng.below(USERS),
            thread: 1 + rng.below(THREADS),
            remaining: if route == HEALTH_ROUTE {
                0
            } else {
                rng.below(5) as u32
            },
            elapsed_ms: 0.0,
        }
    }

    fn method(&self) -> &'static str {
        ROUTES[self.route].0
    }

    fn handler(&self) -> &'static str {
        ROUTES[self.route].2
    }
}

/// What one generated line says, independent of the output format.
enum Event<'a> {
    Received(&'a Request),
    Cache {
        request: &'a Request,
        hit: bool,
        key: u64,
    },
    Db {
        request: &'a Request,
        table: &'a str,
        rows: u64,
        ms: f64,
    },
    Upstream {
        request: &'a Request,
        service: &'a str,
        ms: f64,
        error: Option<&'a str>,
    },
    Completed {
        request: &'a Request,
        status: u16,
        bytes: u64,
    },
    PoolStats {
        active: u64,
        idle: u64,
        waiting: u64,
    },
    MetricsFlushed {
        series: u64,
        ms: f64,
    },
}

impl Event<'_> {
    fn level(&self) -> &'static str {
        match self {
            Event::Cache { .. } => "debug",
            Event::Upstream { error: Some(_), .. } => "error",
            Event::Upstream { ms, .. } if *ms > 500.0 => "warn",
            Event::Completed { status, .. } if *status >= 500 => "error",
            Event::Completed { status, .. } if *status >= 400 => "warn",
            Event::MetricsFlushed { .. } => "debug",
            _ => "info",
        }
    }

    fn request(&self) -> Option<&Request> {
        match self {
            Event::Received(request)
            | Event::Cache { request, .. }
            | Event::Db { request, .. }
            | Event::Upstream { request, .. }
            | Event::Completed { request, .. } => Some(request),
            Event::PoolStats { .. } | Event::MetricsFlushed { .. } => None,
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// A simulated service writing one stream of logs.
///
/// ```
/// use sluice_loadgen::generator::{Format, ServiceLog};
/// let mut log = ServiceLog::new(Format::Logfmt, 42);
/// let mut line = String::new();
/// let ts = log.next_entry(&mut line);
/// assert!(ts > 0 && line.starts_with("ts="));
/// ```
#[derive(Debug)]
pub struct ServiceLog {
    rng: Rng,
    format: Format,
    context: Option<Context>,
    /// Timestamp of the previous line (ns).
    clock_ns: i64,
    in_flight: Vec<Request>,
}

impl ServiceLog {
    /// A service logging in `format`, its simulated clock starting at
    /// 2024-05-17T10:00:00Z (what the chunk benchmarks use).
    pub fn new(format: Format, seed: u64) -> ServiceLog {
        ServiceLog {
            rng: Rng::new(seed),
            format,
            context: None,
            clock_ns: super::BENCH_DAY_START_NS + 36_000_000_000_000,
            in_flight: Vec::new(),
        }
    }

    /// Adds the service name and pod to every line (`service`/`pod` keys in
    /// JSON and logfmt, the application name in plain text), as structured
    /// loggers in a cluster usually do.
    pub fn with_context(mut self, service: &str, pod: &str) -> ServiceLog {
        self.context = Some(Context {
            service: service.to_owned(),
            pod: pod.to_owned(),
        });
        self
    }

    /// The format lines are rendered in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Advances the simulated clock by 50 µs – 1.05 ms, writes the next line
    /// into `out` (cleared first) and returns its timestamp.
    pub fn next_entry(&mut self, out: &mut String) -> i64 {
        let step_ns = 50_000 + self.rng.below(1_000_000) as i64;
        let ts = self.clock_ns + step_ns;
        self.line_at(ts, out);
        ts
    }

    /// Writes the next line, stamped `ts_ns` (wall-clock time in a load
    /// test), into `out` (cleared first).
    pub fn line_at(&mut self, ts_ns: i64, out: &mut String) {
        out.clear();
        let step_ms = (ts_ns - self.clock_ns).max(0) as f64 / 1e6;
        self.clock_ns = ts_ns;
        for request in &mut self.in_flight {
            request.elapsed_ms += step_ms;
        }
        let rng = &mut self.rng;
        let render = |event: &Event<'_>, out: &mut String| {
            render(self.format, self.context.as_ref(), ts_ns, event, out)
        };
        if rng.below(40) == 0 {
            if rng.chance(50) {
                let event = Event::PoolStats {
                    active: rng.below(20),
                    idle: rng.below(10),
                    waiting: if rng.chance(90) { 0 } else { rng.below(5) },
                };
                render(&event, out);
            } else {
                let event = Event::MetricsFlushed {
                    series: 1_200 + rng.below(40),
                    ms: rng.duration_ms(),
                };
                render(&event, out);
            }
        } else if self.in_flight.len() < MAX_IN_FLIGHT
            && (self.in_flight.is_empty() || rng.chance(40))
        {
            let request = Request::new(rng);
            self.in_flight.push(request);
            let request = self.in_flight.last().expect("just pushed");
            render(&Event::Received(request), out);
        } else {
            let index = rng.below(self.in_flight.len() as u64) as usize;
            if self.in_flight[index].remaining == 0 {
                let request = self.in_flight.swap_remove(index);
                let status = STATUSES[rng.weighted(&STATUSES.map(|(_, weight)| weight))].0;
                let bytes = if status == 204 || status == 304 {
                    0
                } else {
                    120 + rng.below(8_000)
                };
                render(
                    &Event::Completed {
                        request: &request,
                        status,
                        bytes,
                    },
                    out,
                );
            } else {
                self.in_flight[index].remaining -= 1;
                let request = &self.in_flight[index];
                let event = match rng.below(10) {
                    0..=3 => Event::Cache {
                        request,
                        hit: rng.chance(80),
                        key: 100_000 + rng.below(900_000),
                    },
                    4..=6 => Event::Db {
                        request,
                        table: rng.pick(&TABLES),
                        rows: if rng.chance(60) { 1 } else { rng.below(50) },
                        ms: (rng.duration_ms() * 25.0).round() / 100.0,
                    },
                    _ => {
                        let error = if rng.chance(2) {
                            Some(rng.pick(&ERRORS))
                        } else {
                            None
                        };
                        Event::Upstream {
                            request,
                            service: rng.pick(&UPSTREAMS),
                            ms: rng.duration_ms(),
                            error,
                        }
                    }
                };
                render(&event, out);
            }
        }
    }
}

fn render(format: Format, context: Option<&Context>, ts: i64, event: &Event<'_>, out: &mut String) {
    match format {
        Format::Json => json_line(context, ts, event, out),
        Format::Logfmt => logfmt_line(context, ts, event, out),
        Format::Text => text_line(context, ts, event, out),
    }
}

fn json_line(context: Option<&Context>, ts: i64, event: &Event<'_>, out: &mut String) {
    let civil = Civil::from_nanos(ts);
    out.push_str(r#"{"ts":""#);
    civil.write_date(out);
    out.push('T');
    civil.write_time_ms(out);
    let _ = write!(out, r#"Z","level":"{}""#, event.level());
    if let Some(context) = context {
        let _ = write!(
            out,
            r#","service":"{}","pod":"{}""#,
            context.service, context.pod
        );
    }
    let _ = match event {
        Event::Received(r) => write!(
            out,
            r#","caller":"server/middleware.go:88","msg":"request received","method":"{}","path":"{}","remote_addr":"10.42.{}.{}:{}""#,
            r.method(),
            r.path,
            r.user % 16,
            r.user % 251,
            30_000 + r.user % 20_000,
        ),
        Event::Cache { request, hit, key } => write!(
            out,
            r#","caller":"cache/redis.go:{}","msg":"cache {}","key":"{}:{key}""#,
            if *hit { 61 } else { 74 },
            if *hit { "hit" } else { "miss" },
            request.handler(),
        ),
        Event::Db {
            table, rows, ms, ..
        } => write!(
            out,
            r#","caller":"store/postgres.go:203","msg":"db query","table":"{table}","rows":{rows},"duration_ms":{ms}"#
        ),
        Event::Upstream {
            service, ms, error, ..
        } => match error {
            Some(error) => write!(
                out,
                r#","caller":"client/http.go:131","msg":"upstream call failed","upstream":"{service}","duration_ms":{ms},"error":"{error}""#
            ),
            None => write!(
                out,
                r#","caller":"client/http.go:117","msg":"upstream call","upstream":"{service}","duration_ms":{ms}"#
            ),
        },
        Event::Completed {
            request,
            status,
            bytes,
        } => write!(
            out,
            r#","caller":"server/middleware.go:112","msg":"request completed","method":"{}","path":"{}","status":{status},"bytes":{bytes},"duration_ms":{}"#,
            request.method(),
            request.path,
            round2(request.elapsed_ms),
        ),
        Event::PoolStats {
            active,
            idle,
            waiting,
        } => write!(
            out,
            r#","caller":"store/pool.go:54","msg":"connection pool stats","active":{active},"idle":{idle},"waiting":{waiting}"#
        ),
        Event::MetricsFlushed { series, ms } => write!(
            out,
            r#","caller":"telemetry/push.go:39","msg":"flushed metrics","series":{series},"duration_ms":{ms}"#
        ),
    };
    if let Some(r) = event.request() {
        let _ = write!(
            out,
            r#","trace_id":"{}","span_id":"{}","user_id":{}"#,
            r.trace, r.span, r.user
        );
    }
    out.push('}');
}

fn logfmt_line(context: Option<&Context>, ts: i64, event: &Event<'_>, out: &mut String) {
    let civil = Civil::from_nanos(ts);
    out.push_str("ts=");
    civil.write_date(out);
    out.push('T');
    civil.write_time_ms(out);
    let _ = write!(out, "Z level={}", event.level());
    if let Some(context) = context {
        let _ = write!(out, " service={} pod={}", context.service, context.pod);
    }
    let _ = match event {
        Event::Received(r) => write!(
            out,
            r#" caller=server/middleware.go:88 msg="request received" method={} path={} remote_addr=10.42.{}.{}:{}"#,
            r.method(),
            r.path,
            r.user % 16,
            r.user % 251,
            30_000 + r.user % 20_000,
        ),
        Event::Cache { request, hit, key } => write!(
            out,
            r#" caller=cache/redis.go:{} msg="cache {}" key={}:{key}"#,
            if *hit { 61 } else { 74 },
            if *hit { "hit" } else { "miss" },
            request.handler(),
        ),
        Event::Db {
            table, rows, ms, ..
        } => write!(
            out,
            r#" caller=store/postgres.go:203 msg="db query" table={table} rows={rows} duration={ms}ms"#
        ),
        Event::Upstream {
            service, ms, error, ..
        } => match error {
            Some(error) => write!(
                out,
                r#" caller=client/http.go:131 msg="upstream call failed" upstream={service} duration={ms}ms err="{error}""#
            ),
            None => write!(
                out,
                r#" caller=client/http.go:117 msg="upstream call" upstream={service} duration={ms}ms"#
            ),
        },
        Event::Completed {
            request,
            status,
            bytes,
        } => write!(
            out,
            r#" caller=server/middleware.go:112 msg="request completed" method={} path={} status={status} bytes={bytes} duration={}ms"#,
            request.method(),
            request.path,
            round2(request.elapsed_ms),
        ),
        Event::PoolStats {
            active,
            idle,
            waiting,
        } => write!(
            out,
            r#" caller=store/pool.go:54 msg="connection pool stats" active={active} idle={idle} waiting={waiting}"#
        ),
        Event::MetricsFlushed { series, ms } => write!(
            out,
            r#" caller=telemetry/push.go:39 msg="flushed metrics" series={series} duration={ms}ms"#
        ),
    };
    if let Some(r) = event.request() {
        let _ = write!(
            out,
            " trace_id={} span_id={} user_id={}",
            r.trace, r.span, r.user
        );
    }
}

fn text_line(context: Option<&Context>, ts: i64, event: &Event<'_>, out: &mut String) {
    let civil = Civil::from_nanos(ts);
    civil.write_date(out);
    out.push(' ');
    civil.write_time_ms(out);
    let level = match event.level() {
        "debug" => "DEBUG",
        "warn" => "WARN",
        "error" => "ERROR",
        _ => "INFO",
    };
    let app = context.map_or("shop", |context| context.service.as_str());
    let _ = write!(out, " {level:>5} 1 --- ");
    match event.request() {
        Some(r) => {
            let _ = write!(out, "[{app},{},{}]", r.trace, r.span);
        }
        None => {
            let _ = write!(out, "[{app},,]");
        }
    }
    let (thread, logger) = match event {
        Event::Received(r) => (Some(r.thread), "o.s.web.servlet.DispatcherServlet"),
        Event::Cache { request, .. } => (Some(request.thread), "c.e.shop.cache.RedisCache"),
        Event::Db { request, .. } => (Some(request.thread), "c.e.shop.repository.JdbcRepository"),
        Event::Upstream { request, .. } => (Some(request.thread), "c.e.shop.client.UpstreamClient"),
        Event::Completed { request, .. } => (Some(request.thread), "c.e.shop.web.AccessLogFilter"),
        Event::PoolStats { .. } => (None, "com.zaxxer.hikari.pool.HikariPool"),
        Event::MetricsFlushed { .. } => (None, "i.m.core.instrument.push.PushMeterRegistry"),
    };
    // `[{thread:>15}] {logger:<40} : `, written without building the
    // thread's name.
    out.push_str(" [");
    match thread {
        Some(number) => {
            const EXEC: &str = "nio-8080-exec-";
            pad(
                out,
                15usize.saturating_sub(EXEC.len() + decimal_len(number)),
            );
            out.push_str(EXEC);
            let _ = write!(out, "{number}");
        }
        None => {
            let name = match event {
                Event::PoolStats { .. } => "HikariPool-1 housekeeper",
                _ => "metrics-publisher",
            };
            pad(out, 15usize.saturating_sub(name.len()));
            out.push_str(name);
        }
    }
    out.push_str("] ");
    out.push_str(logger);
    pad(out, 40usize.saturating_sub(logger.len()));
    out.push_str(" : ");
    let _ = match event {
        Event::Received(r) => write!(out, "{} \"{}\" from user {}", r.method(), r.path, r.user),
        Event::Cache { request, hit, key } => write!(
            out,
            "Cache {} for {}:{key}",
            if *hit { "hit" } else { "miss" },
            request.handler()
        ),
        Event::Db {
            table, rows, ms, ..
        } => write!(out, "Query on {table} returned {rows} rows in {ms} ms"),
        Event::Upstream {
            service, ms, error, ..
        } => match error {
            Some(error) => write!(out, "Call to {service} failed after {ms} ms: {error}"),
            None => write!(out, "Call to {service} took {ms} ms"),
        },
        Event::Completed {
            request,
            status,
            bytes,
        } => write!(
            out,
            "Completed {} {} with {status} ({bytes} bytes) in {} ms for user {}",
            request.method(),
            request.path,
            round2(request.elapsed_ms),
            request.user
        ),
        Event::PoolStats {
            active,
            idle,
            waiting,
        } => write!(
            out,
            "HikariPool-1 - Pool stats (total={}, active={active}, idle={idle}, waiting={waiting})",
            active + idle
        ),
        Event::MetricsFlushed { series, ms } => {
            write!(out, "Published {series} series in {ms} ms")
        }
    };
}

/// Appends `count` spaces.
fn pad(out: &mut String, count: usize) {
    out.extend(std::iter::repeat_n(' ', count));
}

/// The number of decimal digits of `value`.
fn decimal_len(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}

/// Returns (timestamp, line) pairs of one service stream in `format` until
/// the lines add up to `bytes` (what the chunk benchmarks store).
pub fn generate(format: Format, bytes: usize, seed: u64) -> Vec<(i64, String)> {
    let mut log = ServiceLog::new(format, seed);
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

    fn lines(format: Format, seed: u64, count: usize) -> Vec<(i64, String)> {
        let mut log = ServiceLog::new(format, seed).with_context("checkout", "checkout-7d9f-x2x7q");
        let mut line = String::new();
        (0..count)
            .map(|_| {
                let ts = log.next_entry(&mut line);
                (ts, line.clone())
            })
            .collect()
    }

    #[test]
    fn same_seed_same_lines_other_seed_other_lines() {
        for format in Format::ALL {
            assert_eq!(lines(format, 7, 2000), lines(format, 7, 2000));
            assert_ne!(lines(format, 7, 50), lines(format, 8, 50));
        }
    }

    #[test]
    fn json_lines_are_json_objects_with_the_usual_keys() {
        let mut levels = std::collections::BTreeMap::new();
        for (_, line) in lines(Format::Json, 3, 5000) {
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
            let object = value.as_object().expect("an object");
            for key in ["ts", "level", "service", "pod", "caller", "msg"] {
                assert!(object.contains_key(key), "{key} missing in {line}");
            }
            assert!(object["ts"]
                .as_str()
                .expect("ts")
                .starts_with("2024-05-17T1"));
            *levels
                .entry(object["level"].as_str().expect("level").to_owned())
                .or_insert(0) += 1;
        }
        assert!(levels["info"] > 3000, "{levels:?}");
        assert!(levels["debug"] > 300, "{levels:?}");
        assert!(
            levels.contains_key("warn") && levels.contains_key("error"),
            "{levels:?}"
        );
    }

    /// Splits a logfmt line the way LogQL's `| logfmt` reads it.
    fn parse_logfmt(line: &str) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once('=')
                .unwrap_or_else(|| panic!("no = in {rest:?} of {line}"));
            assert!(
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "bad key {key:?} in {line}"
            );
            let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted
                    .find('"')
                    .unwrap_or_else(|| panic!("unclosed quote in {line}"));
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = after.find(' ').unwrap_or(after.len());
                assert!(!after[..end].contains('"'), "stray quote in {line}");
                (&after[..end], &after[end..])
            };
            pairs.push((key.to_owned(), value.to_owned()));
            rest = after.strip_prefix(' ').unwrap_or(after);
            assert!(!rest.starts_with(' '), "double space in {line}");
        }
        pairs
    }

    #[test]
    fn logfmt_lines_are_key_value_pairs() {
        for (_, line) in lines(Format::Logfmt, 5, 5000) {
            let pairs = parse_logfmt(&line);
            let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
            assert_eq!(
                &keys[..5],
                ["ts", "level", "service", "pod", "caller"],
                "{line}"
            );
            assert!(keys.contains(&"msg"), "{line}");
        }
    }

    #[test]
    fn text_lines_start_with_a_timestamp_and_level() {
        for (ts, line) in lines(Format::Text, 9, 2000) {
            let civil = Civil::from_nanos(ts);
            let mut prefix = String::new();
            civil.write_date(&mut prefix);
            prefix.push(' ');
            civil.write_time_ms(&mut prefix);
            assert!(
                line.starts_with(&prefix),
                "{line} should start with {prefix}"
            );
            let level = line[prefix.len()..]
                .split_whitespace()
                .next()
                .expect("level");
            assert!(
                ["DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
                "{line}"
            );
            assert!(line.contains("[checkout,"), "{line}");
        }
    }

    #[test]
    fn requests_share_their_trace_id_across_lines() {
        let mut per_trace = std::collections::HashMap::new();
        for (_, line) in lines(Format::Json, 11, 4000) {
            let value: serde_json::Value = serde_json::from_str(&line).expect("json");
            if let Some(trace) = value["trace_id"].as_str() {
                *per_trace.entry(trace.to_owned()).or_insert(0) += 1;
            }
        }
        let multi = per_trace.values().filter(|count| **count >= 2).count();
        assert!(multi * 2 > per_trace.len(), "most traces log several lines");
    }

    #[test]
    fn wall_clock_timestamps_show_in_the_line() {
        // 2026-03-01T12:34:56.789Z
        let ts = 1_772_368_496_789_000_000;
        let mut log = ServiceLog::new(Format::Json, 1);
        let mut line = String::new();
        log.line_at(ts, &mut line);
        assert!(
            line.starts_with(r#"{"ts":"2026-03-01T12:34:56.789Z""#),
            "{line}"
        );
    }

    #[test]
    fn generate_stops_at_the_byte_budget() {
        let entries = generate(Format::Text, 100_000, 3);
        let bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        assert!((100_000..101_000).contains(&bytes), "{bytes}");
        assert!(entries.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }
}
