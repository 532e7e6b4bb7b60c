//! Chunk benchmarks on generated service logs.
//!
//! First a table (printed, not a criterion measurement) of what is stored: for
//! each data set, codec / zstd level and block size, lines are appended into
//! `MemChunk`s with Loki's default target size (a new chunk starts when
//! `has_space_for` says no) and every chunk is encoded. It reports
//! `ratio = line bytes / encoded chunk bytes` (headers, block CRCs, meta and
//! the timestamp/length varints count as stored bytes), append + encode MB/s
//! and decode + full iteration MB/s (line bytes per second, one core, one
//! run, so expect ±10% on a shared machine). Set `SLUICE_CHUNK_RATIOS=0` to
//! skip it. Then criterion measures per-codec compress / decompress of one
//! 256 KiB block, append throughput and query iteration.
//!
//! Data sets (deterministic; 16 MiB of lines each):
//!
//! - `json`: one stream of a Go-style HTTP service logging JSON (zap-like keys
//!   `ts`, `level`, `caller`, `msg`, …). Requests arrive every ~2 ms with up
//!   to 4 in flight, interleaved. Each request logs 2–6 lines from a small set
//!   of templates ("request received", cache hit/miss, "db query", upstream
//!   call, "request completed", rare warn/error), all carrying the request's
//!   random 128-bit trace id and 64-bit span id. Paths come from 8 routes (3
//!   with an order/product id from a bounded range), status codes from a
//!   skewed distribution (mostly 200), durations from a long-tailed one, user
//!   ids from a population of 20,000. About 1 line in 40 is a background
//!   line (pool stats, metric flush) without a trace. Levels end up ~80%
//!   info, ~15% debug, a few warn/error. Timestamps increase; the line shows
//!   milliseconds, the entry timestamp has nanoseconds (receive time).
//! - `text`: one stream of a Spring-Boot-style plain-text service (`2024-05-17
//!   10:00:00.123  INFO 1 --- [nio-8080-exec-12] c.e.p.PaymentController :
//!   [trace,span] Payment authorized for order 812345 amount=59.90 …`), same
//!   request model, messages with the variables inline, threads from a pool
//!   of 200.
//! - `json-rand`, `logfmt-rand`: the worst case kept from before — every line
//!   has its own random 128-bit trace id, 64-bit span id and a user id out of
//!   100,000, and independently random level, service, path and message.
//!
//! Run: `cargo bench -p sluice-chunk --bench chunk -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_chunk::{
    Codec, Direction, MemChunk, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE, DEFAULT_ZSTD_LEVEL,
};

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
fn generate_service(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
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
fn generate_random(bytes: usize, json: bool, seed: u64) -> Vec<(i64, String)> {
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

const DATA_SET_BYTES: usize = 16 << 20;

fn data_sets() -> Vec<(&'static str, Vec<(i64, String)>)> {
    vec![
        ("json", generate_service(DATA_SET_BYTES, true, 7)),
        ("text", generate_service(DATA_SET_BYTES, false, 11)),
        ("json-rand", generate_random(DATA_SET_BYTES, true, 7)),
        ("logfmt-rand", generate_random(DATA_SET_BYTES, false, 11)),
    ]
}

// ---------------------------------------------------------------------------
// Stored-size table.

struct Stored {
    ratio: f64,
    chunks: usize,
    write_mb_s: f64,
    read_mb_s: f64,
}

/// Appends every entry into chunks as the ingester does (new chunk when the
/// target size is reached), encodes them, then decodes and reads them back.
fn store(entries: &[(i64, String)], codec: Codec, level: i32, block_size: usize) -> Stored {
    let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
    let new_chunk = || MemChunk::new(codec, block_size, DEFAULT_TARGET_SIZE).with_zstd_level(level);
    let started = Instant::now();
    let mut encoded = Vec::new();
    let mut chunk = new_chunk();
    for (ts, line) in entries {
        if !chunk.has_space_for(line.len()) {
            encoded.push(chunk.encode());
            chunk = new_chunk();
        }
        chunk.append(*ts, line);
    }
    encoded.push(chunk.encode());
    let write = started.elapsed().as_secs_f64();
    let stored: usize = encoded.iter().map(Vec::len).sum();

    let started = Instant::now();
    let mut read = 0;
    for bytes in &encoded {
        let chunk = MemChunk::decode_with_sizes(bytes, block_size, DEFAULT_TARGET_SIZE)
            .expect("round trip");
        let mut iter = chunk
            .iter(i64::MIN, i64::MAX, Direction::Forward)
            .expect("iterator");
        while let Some((_, line)) = iter.next_entry() {
            read += line.len();
        }
    }
    let read_secs = started.elapsed().as_secs_f64();
    assert_eq!(read, line_bytes);
    Stored {
        ratio: line_bytes as f64 / stored as f64,
        chunks: encoded.len(),
        write_mb_s: line_bytes as f64 / write / 1e6,
        read_mb_s: line_bytes as f64 / read_secs / 1e6,
    }
}

/// (label, codec, zstd level) rows of the stored-size table.
fn table_codecs() -> Vec<(String, Codec, i32)> {
    let mut rows: Vec<(String, Codec, i32)> = [1, 3, 6, 9, 15]
        .into_iter()
        .map(|level| {
            let default = if level == DEFAULT_ZSTD_LEVEL {
                " (default)"
            } else {
                ""
            };
            (format!("zstd -{level}{default}"), Codec::Zstd, level)
        })
        .collect();
    for codec in [Codec::Snappy, Codec::Lz4_256k, Codec::Gzip] {
        rows.push((codec.as_str().to_owned(), codec, DEFAULT_ZSTD_LEVEL));
    }
    rows
}

fn print_stored_table(sets: &[(&str, Vec<(i64, String)>)]) {
    if std::env::var("SLUICE_CHUNK_RATIOS").is_ok_and(|value| value == "0") {
        return;
    }
    println!(
        "stored size: line bytes / encoded chunk bytes, {} MiB of lines per data set, target size {} B",
        DATA_SET_BYTES >> 20,
        DEFAULT_TARGET_SIZE
    );
    for (name, entries) in sets {
        let lines = entries.len();
        let bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        println!(
            "  {name}: {lines} lines, {:.0} B/line, e.g. {}",
            bytes as f64 / lines as f64,
            entries[lines / 2].1
        );
    }
    // Upper bound for cross-block context (dictionaries, long-distance
    // matching): the whole data set as one zstd frame with a 128 MiB window.
    // Not a chunk format; it only shows what is left to gain.
    for (name, entries) in sets {
        let mut all = Vec::new();
        for (_, line) in entries {
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
        }
        let mut compressor = zstd::bulk::Compressor::new(19).expect("zstd context");
        compressor
            .set_parameter(zstd::stream::raw::CParameter::EnableLongDistanceMatching(
                true,
            ))
            .expect("ldm");
        compressor
            .set_parameter(zstd::stream::raw::CParameter::WindowLog(27))
            .expect("window");
        let compressed = compressor.compress(&all).expect("compress");
        // The same lines in independent 256 KiB pieces, no timestamps: what
        // per-block compression alone costs against the whole-stream bound.
        let pieces: usize = all
            .chunks(DEFAULT_BLOCK_SIZE)
            .map(|piece| {
                let mut out = Vec::new();
                Codec::Zstd.compress_with_level(piece, 19, &mut out);
                out.len()
            })
            .sum();
        let line_bytes = (all.len() - entries.len()) as f64;
        println!(
            "  {name}: lines only (no entry timestamps), zstd -19: one --long=27 frame {:.2}x, independent 256 KiB pieces {:.2}x",
            line_bytes / compressed.len() as f64,
            line_bytes / pieces as f64
        );
    }
    println!(
        "| data set | codec | block | ratio | chunks | append+encode MB/s | decode+read MB/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, entries) in sets {
        for block_size in [DEFAULT_BLOCK_SIZE, 1 << 20] {
            for (label, codec, level) in table_codecs() {
                let stored = store(entries, codec, level, block_size);
                println!(
                    "| {name} | {label} | {} KiB | {:.2} | {} | {:.0} | {:.0} |",
                    block_size >> 10,
                    stored.ratio,
                    stored.chunks,
                    stored.write_mb_s,
                    stored.read_mb_s
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Criterion measurements.

/// Serialises entries into the uncompressed block layout until `size` bytes.
fn block_layout(entries: &[(i64, String)], size: usize) -> Vec<u8> {
    fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }
    let mut out = Vec::with_capacity(size + 1024);
    for (ts, line) in entries.iter().cycle() {
        if out.len() >= size {
            break;
        }
        put_uvarint(&mut out, ((ts << 1) ^ (ts >> 63)) as u64);
        put_uvarint(&mut out, line.len() as u64);
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn bench_codecs(c: &mut Criterion) {
    let sets = data_sets();
    print_stored_table(&sets);
    let blocks: Vec<(&str, Vec<u8>)> = sets
        .iter()
        .filter(|(name, _)| *name != "json-rand")
        .map(|(name, entries)| (*name, block_layout(entries, DEFAULT_BLOCK_SIZE)))
        .collect();

    let mut compress = c.benchmark_group("compress");
    for (name, block) in &blocks {
        compress.throughput(Throughput::Bytes(block.len() as u64));
        for codec in Codec::ALL {
            let mut out = Vec::with_capacity(block.len() + 1024);
            compress.bench_with_input(BenchmarkId::new(codec.as_str(), name), block, |b, block| {
                b.iter(|| {
                    out.clear();
                    codec.compress(black_box(block), &mut out);
                    out.len()
                })
            });
        }
    }
    compress.finish();

    let mut decompress = c.benchmark_group("decompress");
    for (name, block) in &blocks {
        decompress.throughput(Throughput::Bytes(block.len() as u64));
        for codec in Codec::ALL {
            let mut compressed = Vec::new();
            codec.compress(block, &mut compressed);
            let mut out = Vec::with_capacity(block.len());
            decompress.bench_with_input(
                BenchmarkId::new(codec.as_str(), name),
                &compressed,
                |b, compressed| {
                    b.iter(|| {
                        out.clear();
                        codec
                            .decompress(black_box(compressed), &mut out, block.len())
                            .expect("valid stream");
                        out.len()
                    })
                },
            );
        }
    }
    decompress.finish();
}

fn bench_chunk(c: &mut Criterion) {
    let sets = [
        ("text", generate_service(5 << 20, false, 3)),
        ("logfmt-rand", generate_random(5 << 20, false, 3)),
    ];
    let mut append = c.benchmark_group("append");
    for (name, entries) in &sets {
        let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
        append.throughput(Throughput::Bytes(line_bytes as u64));
        for (codec, level) in [
            (Codec::None, 0),
            (Codec::Snappy, 0),
            (Codec::Zstd, DEFAULT_ZSTD_LEVEL),
        ] {
            let id = if codec == Codec::Zstd {
                format!("zstd-{level}")
            } else {
                codec.as_str().to_owned()
            };
            append.bench_function(BenchmarkId::new(*name, id), |b| {
                b.iter(|| {
                    let mut chunk = MemChunk::new(codec, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE)
                        .with_zstd_level(level);
                    for (ts, line) in entries {
                        chunk.append(*ts, line);
                    }
                    chunk.size_bytes()
                })
            });
        }
    }
    append.finish();

    let (_, entries) = &sets[0];
    let line_bytes: usize = entries.iter().map(|(_, line)| line.len()).sum();
    let mut chunk = MemChunk::new(Codec::Zstd, DEFAULT_BLOCK_SIZE, DEFAULT_TARGET_SIZE);
    for (ts, line) in entries {
        chunk.append(*ts, line);
    }
    chunk.cut_block();
    let mut iterate = c.benchmark_group("iter");
    iterate.throughput(Throughput::Bytes(line_bytes as u64));
    for direction in [Direction::Forward, Direction::Backward] {
        iterate.bench_function(BenchmarkId::new("zstd", format!("{direction:?}")), |b| {
            b.iter(|| {
                let mut iter = chunk.iter(i64::MIN, i64::MAX, direction).expect("iterator");
                let mut total = 0usize;
                while let Some((_, line)) = iter.next_entry() {
                    total += line.len();
                }
                total
            })
        });
    }
    iterate.finish();
}

criterion_group!(benches, bench_codecs, bench_chunk);
criterion_main!(benches);
