//! Deterministic generated service logs shared by the chunk benches; the
//! data sets are described in `chunk.rs`.

/// Deterministic xorshift64* generator so every run sees the same lines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
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
}

const DAY_START_NS: i64 = 1_715_904_000_000_000_000;

/// `2024-05-17T10:00:00.123Z` (milliseconds).
fn rfc3339_ms(ns: i64) -> String {
    let (h, m, s, ms) = clock(ns);
    format!("2024-05-17T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

fn clock(ns: i64) -> (i64, i64, i64, i64) {
    let seconds = ns / 1_000_000_000;
    (
        (seconds / 3600) % 24,
        (seconds / 60) % 60,
        seconds % 60,
        (ns / 1_000_000) % 1000,
    )
}

// ---------------------------------------------------------------------------
// Realistic data sets.

/// A route: method, path template (`{}` takes an id), handler, caller file.
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

fn weighted(rng: &mut Rng, weights: &[u64]) -> usize {
    let total: u64 = weights.iter().sum();
    let mut roll = rng.below(total);
    for (index, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return index;
        }
        roll -= weight;
    }
    weights.len() - 1
}

/// One request in flight: its fixed fields and how many lines it still logs.
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
        let route = weighted(rng, &ROUTE_WEIGHTS);
        let path = ROUTES[route]
            .1
            .replace("{}", &(100_000 + rng.below(900_000)).to_string());
        Request {
            route,
            path,
            trace: format!("{:016x}{:016x}", rng.next(), rng.next()),
            span: format!("{:016x}", rng.next()),
            user: 1 + rng.below(USERS),
            thread: 1 + rng.below(THREADS),
            remaining: if route == 7 { 0 } else { rng.below(5) as u32 },
            elapsed_ms: 0.0,
        }
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
}

fn json_line(ts: i64, event: &Event<'_>) -> String {
    let head = format!(r#"{{"ts":"{}","level":"{}""#, rfc3339_ms(ts), event.level());
    let request_fields = |r: &Request| {
        format!(
            r#""trace_id":"{}","span_id":"{}","user_id":{}"#,
            r.trace, r.span, r.user
        )
    };
    let body = match event {
        Event::Received(r) => format!(
            r#","caller":"server/middleware.go:88","msg":"request received","method":"{}","path":"{}","remote_addr":"10.42.{}.{}:{}",{}"#,
            ROUTES[r.route].0,
            r.path,
            r.user % 16,
            r.user % 251,
            30_000 + r.user % 20_000,
            request_fields(r)
        ),
        Event::Cache { request, hit, key } => format!(
            r#","caller":"cache/redis.go:{}","msg":"cache {}","key":"{}:{key}",{}"#,
            if *hit { 61 } else { 74 },
            if *hit { "hit" } else { "miss" },
            ROUTES[request.route].2,
            request_fields(request)
        ),
        Event::Db {
            request,
            table,
            rows,
            ms,
        } => format!(
            r#","caller":"store/postgres.go:203","msg":"db query","table":"{table}","rows":{rows},"duration_ms":{ms},{}"#,
            request_fields(request)
        ),
        Event::Upstream {
            request,
            service,
            ms,
            error,
        } => match error {
            Some(error) => format!(
                r#","caller":"client/http.go:131","msg":"upstream call failed","upstream":"{service}","duration_ms":{ms},"error":"{error}",{}"#,
                request_fields(request)
            ),
            None => format!(
                r#","caller":"client/http.go:117","msg":"upstream call","upstream":"{service}","duration_ms":{ms},{}"#,
                request_fields(request)
            ),
        },
        Event::Completed {
            request,
            status,
            bytes,
        } => format!(
            r#","caller":"server/middleware.go:112","msg":"request completed","method":"{}","path":"{}","status":{status},"bytes":{bytes},"duration_ms":{},{}"#,
            ROUTES[request.route].0,
            request.path,
            (request.elapsed_ms * 100.0).round() / 100.0,
            request_fields(request)
        ),
        Event::PoolStats {
            active,
            idle,
            waiting,
        } => format!(
            r#","caller":"store/pool.go:54","msg":"connection pool stats","active":{active},"idle":{idle},"waiting":{waiting}"#
        ),
        Event::MetricsFlushed { series, ms } => format!(
            r#","caller":"telemetry/push.go:39","msg":"flushed metrics","series":{series},"duration_ms":{ms}"#
        ),
    };
    format!("{head}{body}}}")
}

fn text_line(ts: i64, event: &Event<'_>) -> String {
    let (h, m, s, ms) = clock(ts);
    let level = event.level().to_ascii_uppercase();
    let thread = |r: &Request| format!("nio-8080-exec-{}", r.thread);
    let (thread, logger, mdc, message) = match event {
        Event::Received(r) => (
            thread(r),
            "o.s.web.servlet.DispatcherServlet",
            Some(*r),
            format!("{} \"{}\" from user {}", ROUTES[r.route].0, r.path, r.user),
        ),
        Event::Cache { request, hit, key } => (
            thread(request),
            "c.e.shop.cache.RedisCache",
            Some(*request),
            format!(
                "Cache {} for {}:{key}",
                if *hit { "hit" } else { "miss" },
                ROUTES[request.route].2
            ),
        ),
        Event::Db { request, table, rows, ms } => (
            thread(request),
            "c.e.shop.repository.JdbcRepository",
            Some(*request),
            format!("Query on {table} returned {rows} rows in {ms} ms"),
        ),
        Event::Upstream { request, service, ms, error } => (
            thread(request),
            "c.e.shop.client.UpstreamClient",
            Some(*request),
            match error {
                Some(error) => format!("Call to {service} failed after {ms} ms: {error}"),
                None => format!("Call to {service} took {ms} ms"),
            },
        ),
        Event::Completed { request, status, bytes } => (
            thread(request),
            "c.e.shop.web.AccessLogFilter",
            Some(*request),
            format!(
                "Completed {} {} with {status} ({bytes} bytes) in {} ms for user {}",
                ROUTES[request.route].0,
                request.path,
                (request.elapsed_ms * 100.0).round() / 100.0,
                request.user
            ),
        ),
        Event::PoolStats { active, idle, waiting } => (
            "HikariPool-1 housekeeper".to_owned(),
            "com.zaxxer.hikari.pool.HikariPool",
            None,
            format!("HikariPool-1 - Pool stats (total={}, active={active}, idle={idle}, waiting={waiting})", active + idle),
        ),
        Event::MetricsFlushed { series, ms } => (
            "metrics-publisher".to_owned(),
            "i.m.core.instrument.push.PushMeterRegistry",
            None,
            format!("Published {series} series in {ms} ms"),
        ),
    };
    let mdc = mdc
        .map(|r| format!("[shop,{},{}]", r.trace, r.span))
        .unwrap_or_else(|| "[shop,,]".to_owned());
    format!(
        "2024-05-17 {h:02}:{m:02}:{s:02}.{ms:03} {level:>5} 1 --- {mdc} [{thread:>15}] {logger:<40} : {message}"
    )
}

/// Returns (timestamp, line) pairs of one realistic service stream until the
/// lines add up to `bytes`.
pub fn generate_service(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
    let mut rng = Rng(seed);
    let mut ts = DAY_START_NS + 36_000_000_000_000;
    let mut in_flight: Vec<Request> = Vec::new();
    let mut out = Vec::new();
    let mut total = 0;
    while total < bytes {
        let step_ns = 50_000 + rng.below(1_000_000) as i64;
        ts += step_ns;
        for request in &mut in_flight {
            request.elapsed_ms += step_ns as f64 / 1e6;
        }
        let render = |event: &Event<'_>| {
            if json {
                json_line(ts, event)
            } else {
                text_line(ts, event)
            }
        };
        let line = if rng.below(40) == 0 {
            if rng.chance(50) {
                render(&Event::PoolStats {
                    active: rng.below(20),
                    idle: rng.below(10),
                    waiting: if rng.chance(90) { 0 } else { rng.below(5) },
                })
            } else {
                render(&Event::MetricsFlushed {
                    series: 1_200 + rng.below(40),
                    ms: rng.duration_ms(),
                })
            }
        } else if in_flight.len() < 4 && (in_flight.is_empty() || rng.chance(40)) {
            let request = Request::new(&mut rng);
            in_flight.push(request);
            let request = in_flight.last().expect("just pushed");
            render(&Event::Received(request))
        } else {
            let index = rng.below(in_flight.len() as u64) as usize;
            let request = &mut in_flight[index];
            if request.remaining == 0 {
                let request = in_flight.swap_remove(index);
                let status = STATUSES[weighted(&mut rng, &STATUSES.map(|(_, weight)| weight))].0;
                let bytes = if status == 204 || status == 304 {
                    0
                } else {
                    120 + rng.below(8_000)
                };
                render(&Event::Completed {
                    request: &request,
                    status,
                    bytes,
                })
            } else {
                request.remaining -= 1;
                let request = &in_flight[index];
                match rng.below(10) {
                    0..=3 => render(&Event::Cache {
                        request,
                        hit: rng.chance(80),
                        key: 100_000 + rng.below(900_000),
                    }),
                    4..=6 => render(&Event::Db {
                        request,
                        table: rng.pick(&TABLES),
                        rows: if rng.chance(60) { 1 } else { rng.below(50) },
                        ms: (rng.duration_ms() * 25.0).round() / 100.0,
                    }),
                    _ => {
                        let error = if rng.chance(2) {
                            Some(rng.pick(&ERRORS))
                        } else {
                            None
                        };
                        render(&Event::Upstream {
                            request,
                            service: rng.pick(&UPSTREAMS),
                            ms: rng.duration_ms(),
                            error,
                        })
                    }
                }
            }
        };
        total += line.len();
        out.push((ts, line));
    }
    out
}

// ---------------------------------------------------------------------------
// Worst case: every id random on every line (the generator used until now).

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

fn timestamp(ns: i64) -> String {
    let seconds = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let (hours, minutes, secs) = ((seconds / 3600) % 24, (seconds / 60) % 60, seconds % 60);
    format!("2024-05-17T{hours:02}:{minutes:02}:{secs:02}.{nanos:09}Z")
}

/// Returns (timestamp, line) pairs in JSON or logfmt form, every field drawn
/// independently per line, until the lines add up to `bytes`.
pub fn generate_random(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
    let mut rng = Rng(seed);
    let mut ts: i64 = DAY_START_NS;
    let mut out = Vec::new();
    let mut total = 0;
    while total < bytes {
        ts += 1_000_000 + rng.below(50_000_000) as i64;
        let level = rng.pick(&LEVELS);
        let service = rng.pick(&SERVICES);
        let path = rng.pick(&PATHS);
        let message = rng.pick(&MESSAGES);
        let trace = format!("{:016x}{:016x}", rng.next(), rng.next());
        let span = format!("{:016x}", rng.next());
        let status = [200, 200, 200, 201, 404, 500][rng.below(6) as usize];
        let duration = rng.below(250_000) as f64 / 1000.0;
        let user = rng.below(100_000);
        let line = if json {
            format!(
                r#"{{"ts":"{}","level":"{level}","service":"{service}","msg":"{message}","method":"GET","path":"{path}","status":{status},"duration_ms":{duration},"user_id":{user},"trace_id":"{trace}","span_id":"{span}"}}"#,
                timestamp(ts)
            )
        } else {
            format!(
                r#"ts={} level={level} service={service} msg="{message}" method=GET path={path} status={status} duration={duration}ms user_id={user} trace_id={trace} span_id={span}"#,
                timestamp(ts)
            )
        };
        total += line.len();
        out.push((ts, line));
    }
    out
}

pub const DATA_SET_BYTES: usize = 16 << 20;

pub fn data_sets() -> Vec<(&'static str, Vec<(i64, String)>)> {
    vec![
        ("json", generate_service(DATA_SET_BYTES, true, 7)),
        ("text", generate_service(DATA_SET_BYTES, false, 11)),
        ("json-rand", generate_random(DATA_SET_BYTES, true, 7)),
        ("logfmt-rand", generate_random(DATA_SET_BYTES, false, 11)),
    ]
}
