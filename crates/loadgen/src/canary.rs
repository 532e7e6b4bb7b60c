//! `sluice canary`: Loki canary's end-to-end check of a running cluster.
//!
//! It writes one timestamped line per `-interval` through the push API,
//! reads the lines back, and exports on its own `/metrics` port how many
//! were missing, duplicated or out of order and how long they took to come
//! back, under Loki canary's metric names and flags. Lines are read back
//! through live tail over a WebSocket as Loki's canary does (the default)
//! or, with `-tail=false`, by polling the query API; entries not seen within `-wait`
//! are looked for with a query until `-max-wait`, then counted missing.
//! Spot checks re-query a sample of old entries for hours (catching loss
//! after flush), and a metric test compares `count_over_time` with the
//! number written.

pub mod comparator;
pub mod metrics;
pub mod reader;
pub mod tail;
pub mod writer;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use clap::Parser;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::comparator::{Comparator, ComparatorConfig, Received};
use self::metrics::CanaryMetrics;
use self::reader::{PollDeliveries, Reader};
use self::tail::TailConfig;
use self::writer::{PushTarget, Sink};

/// Clock skew allowance when querying around an entry (Loki's canary uses
/// 10 s either side).
const QUERY_MARGIN_NS: i64 = 10_000_000_000;

/// The canary's flags: Loki canary's names and defaults, plus `-tail`,
/// `-query-interval` and `-write-addr`. Go-style single-dash flags are
/// accepted.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "sluice canary",
    about = "Writes timestamped lines through the push API, reads them back and exports \
             loki_canary_* metrics on -port",
    disable_version_flag = true
)]
pub struct CanaryArgs {
    /// The server's address, e.g. `sluice:3100` or `http://sluice:3100`
    /// (falls back to $LOKI_ADDRESS).
    #[arg(long, default_value = "")]
    pub addr: String,
    /// Where to push, when it is not `-addr` (e.g. the distributors while
    /// `-addr` is the query frontend); defaults to `-addr`.
    #[arg(long = "write-addr", default_value = "")]
    pub write_addr: String,
    /// Tenant ID sent in X-Scope-OrgID.
    #[arg(long = "tenant-id", default_value = "")]
    pub tenant_id: String,
    /// Basic-auth user (instead of X-Scope-OrgID).
    #[arg(long, default_value = "")]
    pub user: String,
    /// Basic-auth password.
    #[arg(long, default_value = "")]
    pub pass: String,
    /// Label name identifying this canary's stream.
    #[arg(long = "labelname", default_value = "name")]
    pub label_name: String,
    /// Label value identifying this canary's stream.
    #[arg(long = "labelvalue", default_value = "loki-canary")]
    pub label_value: String,
    /// Second label name of the stream.
    #[arg(long = "streamname", default_value = "stream")]
    pub stream_name: String,
    /// Second label value of the stream.
    #[arg(long = "streamvalue", default_value = "stdout")]
    pub stream_value: String,
    /// Port serving /metrics.
    #[arg(long, default_value_t = 3500)]
    pub port: u16,
    /// Push lines to the server (true, Sluice's default) or print them to
    /// stdout for an agent to ship (Loki canary's default).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub push: bool,
    /// Connect with TLS (not supported by this build).
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls: bool,
    /// Time between lines.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Bytes per line.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// How long to wait for a line on the receive path before querying for it.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub wait: Duration,
    /// How long to keep querying for a line before reporting it missing.
    #[arg(long = "max-wait", default_value = "5m", value_parser = parse_duration)]
    pub max_wait: Duration,
    /// How often to look for lines past -wait and query for them.
    #[arg(long = "pruneinterval", default_value = "60s", value_parser = parse_duration)]
    pub prune_interval: Duration,
    /// Buckets of the response latency histogram (0.5 s doubling).
    #[arg(long, default_value_t = 10)]
    pub buckets: u16,
    /// Timeout of one query.
    #[arg(long = "query-timeout", default_value = "10s", value_parser = parse_duration)]
    pub query_timeout: Duration,
    /// Timeout of one push.
    #[arg(long = "write-timeout", default_value = "10s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// First retry delay of a failed push.
    #[arg(long = "write-min-backoff", default_value = "500ms", value_parser = parse_duration)]
    pub write_min_backoff: Duration,
    /// Longest retry delay of a failed push.
    #[arg(long = "write-max-backoff", default_value = "5m", value_parser = parse_duration)]
    pub write_max_backoff: Duration,
    /// Retries of a failed push.
    #[arg(long = "write-max-retries", default_value_t = 10)]
    pub write_max_retries: u32,
    /// LogQL appended to the canary's selector, e.g. `| json | line_format "{{.log}}"`.
    #[arg(long = "query-append", default_value = "")]
    pub query_append: String,
    /// How often to run the count_over_time metric test.
    #[arg(long = "metric-test-interval", default_value = "1h", value_parser = parse_duration)]
    pub metric_test_interval: Duration,
    /// Range of the metric test (capped at the canary's run time).
    #[arg(long = "metric-test-range", default_value = "24h", value_parser = parse_duration)]
    pub metric_test_range: Duration,
    /// Keep one line per interval for spot checks.
    #[arg(long = "spot-check-interval", default_value = "15m", value_parser = parse_duration)]
    pub spot_check_interval: Duration,
    /// Stop spot-checking a line this long after it was written.
    #[arg(long = "spot-check-max", default_value = "4h", value_parser = parse_duration)]
    pub spot_check_max: Duration,
    /// How often to query every spot-check line.
    #[arg(long = "spot-check-query-rate", default_value = "1m", value_parser = parse_duration)]
    pub spot_check_query_rate: Duration,
    /// Wait this long after writing a line before spot-checking it.
    #[arg(long = "spot-check-initial-wait", default_value = "10s", value_parser = parse_duration)]
    pub spot_check_initial_wait: Duration,
    /// Read lines back through live tail (/loki/api/v1/tail, WebSocket), as
    /// Loki's canary does; `-tail=false` polls the query API instead.
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tail: bool,
    /// How often the query-API receive path polls (with -tail=false).
    #[arg(long = "query-interval", default_value = "1s", value_parser = parse_duration)]
    pub query_interval: Duration,
    /// Print the version and exit.
    #[arg(long, default_value = "false", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub version: bool,
}

/// Parses a Go-style duration (`500ms`, `10s`, `5m`, `1h30m`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("invalid duration {text:?}: {err}"))
}

/// Turns Go-style `-flag` and `-flag=value` into `--flag…` for clap.
fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let single_dash_long = arg.starts_with('-')
                && !arg.starts_with("--")
                && arg.len() > 2
                && !arg[1..].starts_with(|c: char| c.is_ascii_digit());
            if single_dash_long {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

/// `http://host:port` for an address given as `host:port` or as a URL.
fn base_url(addr: &str) -> String {
    let addr = addr.trim_end_matches('/');
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

/// Everything a canary run needs, resolved from [`CanaryArgs`].
#[derive(Debug, Clone)]
pub struct CanaryConfig {
    /// `http://host:port` of the server.
    pub base_url: String,
    /// `http://host:port` pushes go to (`-write-addr`, else `base_url`).
    pub write_url: String,
    /// Where /metrics is served.
    pub metrics_addr: SocketAddr,
    /// The flags as given.
    pub args: CanaryArgs,
    /// Pause before reconnecting the tail (10 s, as Loki's canary).
    pub tail_reconnect_delay: Duration,
}

impl CanaryConfig {
    /// Validates the flags; `env` looks up environment variables
    /// (`LOKI_ADDRESS`).
    pub fn from_args(
        args: CanaryArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<CanaryConfig, String> {
        let addr = if args.addr.is_empty() {
            env("LOKI_ADDRESS").unwrap_or_default()
        } else {
            args.addr.clone()
        };
        if addr.is_empty() {
            return Err(
                "must specify a server address with -addr or the environment variable LOKI_ADDRESS"
                    .to_owned(),
            );
        }
        if args.tls || addr.starts_with("https://") || args.write_addr.starts_with("https://") {
            return Err("TLS is not supported by this build of the canary".to_owned());
        }
        if args.interval.is_zero() {
            return Err("-interval must be greater than 0".to_owned());
        }
        if args.buckets == 0 {
            return Err("-buckets must be at least 1".to_owned());
        }
        for (flag, value) in [
            ("-pruneinterval", args.prune_interval),
            ("-query-interval", args.query_interval),
            ("-metric-test-interval", args.metric_test_interval),
            ("-spot-check-query-rate", args.spot_check_query_rate),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be greater than 0"));
            }
        }
        let write_url = if args.write_addr.is_empty() {
            base_url(&addr)
        } else {
            base_url(&args.write_addr)
        };
        Ok(CanaryConfig {
            base_url: base_url(&addr),
            write_url,
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], args.port)),
            args,
            tail_reconnect_delay: Duration::from_secs(10),
        })
    }

    fn selector(&self) -> String {
        let args = &self.args;
        let selector = format!(
            r#"{{{}="{}",{}="{}"}}"#,
            args.stream_name, args.stream_value, args.label_name, args.label_value
        );
        if args.query_append.is_empty() {
            selector
        } else {
            format!("{selector} {}", args.query_append)
        }
    }

    fn tenant(&self) -> Option<String> {
        Some(self.args.tenant_id.clone()).filter(|tenant| !tenant.is_empty())
    }

    fn basic_auth(&self) -> Option<(String, String)> {
        Some((self.args.user.clone(), self.args.pass.clone())).filter(|(user, _)| !user.is_empty())
    }
}

/// Entry point of `sluice canary <flags>`: parses `args` (without the
/// program name and `canary`), runs until SIGTERM/SIGINT.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let argv = std::iter::once("sluice canary".to_owned()).chain(normalize_args(args));
    let args = match CanaryArgs::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if args.version {
        println!("sluice canary, version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let config = match CanaryConfig::from_args(args, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        run(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(err) => {
                eprintln!("canary: cannot listen for SIGTERM: {err}");
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("canary: shutting down");
    shutdown.cancel();
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as i64)
        .unwrap_or(0)
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// State the canary's tasks share.
struct Shared {
    comparator: Mutex<Comparator>,
    metrics: CanaryMetrics,
    reader: Reader,
    /// Set by `/suspend`: no new lines are written, while the receive path
    /// and the checks go on deciding the lines already written.
    suspended: AtomicBool,
}

impl Shared {
    fn comparator(&self) -> std::sync::MutexGuard<'_, Comparator> {
        self.comparator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs the canary until `shutdown`: serves /metrics, writes, reads back
/// and compares.
pub async fn run(config: CanaryConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let args = &config.args;
    let mut registry = Registry::default();
    let metrics = CanaryMetrics::new(&mut registry, args.buckets);
    let listener = tokio::net::TcpListener::bind(config.metrics_addr)
        .await
        .map_err(|err| {
            anyhow::anyhow!("listening on {} for /metrics: {err}", config.metrics_addr)
        })?;
    eprintln!(
        "canary: writing to {} every {:?}, reading back from {} via {}, metrics on {}",
        config.write_url,
        args.interval,
        config.base_url,
        if args.tail {
            "live tail"
        } else {
            "query polling"
        },
        listener.local_addr()?
    );
    let shared = Arc::new(Shared {
        comparator: Mutex::new(Comparator::new(ComparatorConfig {
            wait_ns: nanos(args.wait),
            max_wait_ns: nanos(args.max_wait),
            spot_check_interval_ns: nanos(args.spot_check_interval),
            spot_check_max_ns: nanos(args.spot_check_max),
        })),
        metrics: metrics.clone(),
        reader: Reader::new(
            &config.base_url,
            config.selector(),
            config.tenant(),
            config.basic_auth(),
            args.query_timeout,
        )?,
        suspended: AtomicBool::new(false),
    });
    let server = tokio::spawn(serve_http(
        listener,
        Arc::new(registry),
        shared.clone(),
        shutdown.clone(),
    ));

    // Lines of an earlier canary run with the same labels are not ours.
    let started = now_nanos();
    let (entries_tx, entries_rx) = mpsc::channel(10_000);
    let (received_tx, received_rx) = mpsc::channel(10_000);
    let sink = if args.push {
        Sink::Push(PushTarget {
            base_url: config.write_url.clone(),
            labels: format!(
                r#"{{{}="{}", {}="{}"}}"#,
                args.label_name, args.label_value, args.stream_name, args.stream_value
            ),
            tenant: config.tenant(),
            basic_auth: config.basic_auth(),
            timeout: args.write_timeout,
            min_backoff: args.write_min_backoff,
            max_backoff: args.write_max_backoff,
            max_retries: args.write_max_retries,
        })
    } else {
        Sink::Stdout
    };
    let mut tasks = vec![
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(err) = writer::run_sink(sink, entries_rx, metrics, shutdown).await {
                    eprintln!("canary: writer stopped: {err:#}");
                }
            }
        }),
        tokio::spawn(write_entries(
            shared.clone(),
            args.interval,
            args.size,
            entries_tx,
            shutdown.clone(),
        )),
        tokio::spawn(compare_received(
            shared.clone(),
            received_rx,
            shutdown.clone(),
        )),
        tokio::spawn(run_checks(shared.clone(), config.clone(), shutdown.clone())),
    ];
    if args.tail {
        let tail_config = TailConfig {
            base_url: config.base_url.replacen("http", "ws", 1),
            selector: config.selector(),
            tenant: config.tenant(),
            basic_auth: config.basic_auth(),
            interval: args.interval,
            reconnect_delay: config.tail_reconnect_delay,
            since: started,
        };
        tasks.push(tokio::spawn(tail::run_tail(
            tail_config,
            received_tx,
            shared.metrics.clone(),
            shutdown.clone(),
        )));
    } else {
        tasks.push(tokio::spawn(poll_queries(
            shared.clone(),
            args.wait,
            args.query_interval,
            started,
            received_tx,
            shutdown.clone(),
        )));
    }
    shutdown.cancelled().await;
    for task in tasks {
        let _ = task.await;
    }
    let _ = server.await;
    Ok(())
}

/// Serves `/metrics` and Loki canary's `/suspend` and `/resume`.
async fn serve_http(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let metrics_shared = shared.clone();
    let suspend_shared = shared.clone();
    let resume_shared = shared;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let registry = registry.clone();
                let shared = metrics_shared.clone();
                async move {
                    let outstanding = {
                        let comparator = shared.comparator();
                        comparator.pending() + comparator.confirming()
                    };
                    shared.metrics.outstanding.set(outstanding as i64);
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            text,
                        )
                            .into_response(),
                        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    }
                }
            }),
        )
        .route(
            "/suspend",
            axum::routing::any(move || async move {
                eprintln!("canary: suspending: no new lines until /resume");
                suspend_shared.suspended.store(true, Ordering::SeqCst);
                "suspended\n"
            }),
        )
        .route(
            "/resume",
            axum::routing::any(move || async move {
                eprintln!("canary: resuming");
                resume_shared.suspended.store(false, Ordering::SeqCst);
                "resumed\n"
            }),
        );
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(err) = result {
        eprintln!("canary: metrics server failed: {err}");
    }
}

/// Writes one line per `interval`, strictly increasing timestamps.
async fn write_entries(
    shared: Arc<Shared>,
    interval: Duration,
    size: usize,
    entries: mpsc::Sender<(i64, String)>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = 0i64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if shared.suspended.load(Ordering::SeqCst) {
            continue;
        }
        let ts = now_nanos().max(last + 1);
        last = ts;
        shared.comparator().sent(ts);
        shared.metrics.entries.inc();
        if entries
            .send((ts, writer::canary_line(ts, size)))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Classifies every received entry and updates the metrics.
async fn compare_received(
    shared: Arc<Shared>,
    mut received: mpsc::Receiver<i64>,
    shutdown: CancellationToken,
) {
    loop {
        let ts = tokio::select! {
            ts = received.recv() => match ts {
                Some(ts) => ts,
                None => return,
            },
            _ = shutdown.cancelled() => return,
        };
        let now = now_nanos();
        let outcome = shared.comparator().received(ts, now);
        let metrics = &shared.metrics;
        match outcome {
            Received::InOrder { latency_ns } => {
                metrics.response_latency.observe(latency_ns as f64 / 1e9);
            }
            Received::OutOfOrder { latency_ns, ahead } => {
                metrics.out_of_order.inc();
                metrics.response_latency.observe(latency_ns as f64 / 1e9);
                eprintln!(
                    "canary: out of order entry {ts} was received before {ahead} older entries"
                );
            }
            Received::Late { latency_ns } => {
                metrics.response_latency.observe(latency_ns as f64 / 1e9);
                eprintln!(
                    "canary: entry {ts} arrived {:.1}s after it was written, past -wait",
                    latency_ns as f64 / 1e9
                );
            }
            Received::Duplicate => {
                metrics.duplicate.inc();
                eprintln!("canary: received a duplicate entry for ts {ts}");
            }
            Received::Unexpected => {
                metrics.unexpected.inc();
                eprintln!("canary: received an unexpected entry with ts {ts}");
            }
        }
    }
}

/// The query-API receive path: every `every`, reads the last `wait` of
/// canary lines (since `started`, when this canary started) and hands
/// entries not seen before to the comparator.
async fn poll_queries(
    shared: Arc<Shared>,
    wait: Duration,
    every: Duration,
    started: i64,
    received: mpsc::Sender<i64>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deliveries = PollDeliveries::default();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now = now_nanos();
        let window_start = (now - nanos(wait)).max(started);
        let read = tokio::select! {
            read = shared.reader.entries(window_start, now + QUERY_MARGIN_NS) => read,
            _ = shutdown.cancelled() => return,
        };
        match read {
            Ok(entries) => {
                for err in entries.invalid {
                    eprintln!("canary: {err}");
                }
                for ts in deliveries.deliver(window_start, entries.timestamps) {
                    if received.send(ts).await.is_err() {
                        return;
                    }
                }
            }
            Err(err) => eprintln!("canary: error querying for new entries: {err:#}"),
        }
    }
}

/// Pruning with confirmation queries, spot checks and the metric test,
/// each on its own ticker.
async fn run_checks(shared: Arc<Shared>, config: CanaryConfig, shutdown: CancellationToken) {
    let args = &config.args;
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut prune = tokio::time::interval_at(start + args.prune_interval, args.prune_interval);
    let mut spot = tokio::time::interval_at(
        start + args.spot_check_query_rate,
        args.spot_check_query_rate,
    );
    let mut metric_test =
        tokio::time::interval_at(start + args.metric_test_interval, args.metric_test_interval);
    for ticker in [&mut prune, &mut spot, &mut metric_test] {
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = prune.tick() => prune_and_confirm(&shared, args.tail).await,
            _ = spot.tick() => spot_check(&shared, args.spot_check_initial_wait).await,
            _ = metric_test.tick() => {
                run_metric_test(&shared, started.elapsed(), args.metric_test_range, args.interval).await
            }
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn prune_and_confirm(shared: &Shared, tail: bool) {
    let moved = shared.comparator().prune(now_nanos());
    if moved > 0 {
        if tail {
            shared.metrics.websocket_missing.inc_by(moved as u64);
        }
        eprintln!("canary: {moved} entries not received within -wait, querying for them");
    }
    let Some((start, end)) = shared.comparator().confirm_window() else {
        return;
    };
    let found = match shared.reader.entries(start, end).await {
        Ok(entries) => entries.timestamps.into_iter().collect::<BTreeSet<i64>>(),
        Err(err) => {
            eprintln!("canary: error querying for missing entries: {err:#}");
            return;
        }
    };
    let confirmed = shared.comparator().confirm(&found, now_nanos());
    for ts in &confirmed.found {
        eprintln!("canary: entry {ts} not seen on the receive path was found by query");
    }
    for ts in &confirmed.missing {
        eprintln!("canary: failed to receive entry {ts} within -max-wait");
    }
    shared
        .metrics
        .missing
        .inc_by(confirmed.missing.len() as u64);
}

async fn spot_check(shared: &Shared, initial_wait: Duration) {
    let now = now_nanos();
    let due = shared
        .comparator()
        .spot_checks_due(now, nanos(initial_wait));
    for ts in due {
        shared.metrics.spot_check_entries.inc();
        let started = Instant::now();
        let result = shared
            .reader
            .entries(ts - QUERY_MARGIN_NS, ts + QUERY_MARGIN_NS)
            .await;
        shared
            .metrics
            .spot_check_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(entries) if entries.timestamps.contains(&ts) => {}
            Ok(_) => {
                shared.metrics.spot_check_missing.inc();
                eprintln!(
                    "canary: failed to find entry {ts} when spot check querying {:.0}s after it was written",
                    (now - ts) as f64 / 1e9
                );
            }
            Err(err) => {
                eprintln!("canary: error in spot check query: {err:#}");
                return;
            }
        }
    }
}

async fn run_metric_test(shared: &Shared, running: Duration, range: Duration, interval: Duration) {
    let range = range.min(running);
    let started = Instant::now();
    let result = shared.reader.count_over_time(range, now_nanos()).await;
    shared
        .metrics
        .metric_test_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(actual) => {
            let expected = range.as_millis() as f64 / interval.as_millis().max(1) as f64;
            shared.metrics.metric_test_expected.set(expected);
            shared.metrics.metric_test_actual.set(actual);
        }
        Err(err) => eprintln!("canary: error running metric query test: {err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CanaryArgs, clap::Error> {
        let argv = std::iter::once("sluice canary".to_owned())
            .chain(normalize_args(args.iter().map(|arg| (*arg).to_owned())));
        CanaryArgs::try_parse_from(argv)
    }

    #[test]
    fn loki_canary_flags_parse_with_one_or_two_dashes() {
        let args = parse(&[
            "-addr=loki:3100",
            "-tenant-id",
            "team-a",
            "--interval=500ms",
            "-wait=30s",
            "-max-wait",
            "2m",
            "-push=false",
            "-tail",
            "-spot-check-query-rate=1m",
        ])
        .expect("parses");
        assert_eq!(args.addr, "loki:3100");
        assert_eq!(args.tenant_id, "team-a");
        assert_eq!(args.interval, Duration::from_millis(500));
        assert_eq!(args.wait, Duration::from_secs(30));
        assert_eq!(args.max_wait, Duration::from_secs(120));
        assert!(!args.push);
        assert!(args.tail);
        assert_eq!(args.label_name, "name");
        assert_eq!(args.label_value, "loki-canary");
        assert_eq!(args.port, 3500);
        // Live tail is the receive path unless turned off, as in Loki.
        assert!(parse(&[]).expect("defaults").tail);
        assert!(!parse(&["-tail=false"]).expect("parses").tail);
    }

    #[test]
    fn bad_flags_are_errors_naming_the_flag() {
        let err = parse(&["-interval=soon"]).unwrap_err().to_string();
        assert!(err.contains("soon"), "{err}");
        let err = parse(&["-no-such-flag"]).unwrap_err().to_string();
        assert!(err.contains("no-such-flag"), "{err}");
    }

    #[test]
    fn config_resolves_the_address() {
        let args = parse(&[]).expect("defaults");
        let err = CanaryConfig::from_args(args.clone(), |_| None).unwrap_err();
        assert!(err.contains("LOKI_ADDRESS"), "{err}");
        let config =
            CanaryConfig::from_args(args.clone(), |_| Some("sluice:3100".to_owned())).expect("env");
        assert_eq!(config.base_url, "http://sluice:3100");
        assert_eq!(config.write_url, "http://sluice:3100");
        assert_eq!(config.selector(), r#"{stream="stdout",name="loki-canary"}"#);
        assert_eq!(config.tenant(), None);
        let tls = parse(&["-addr=x:1", "-tls"]).expect("parses");
        assert!(CanaryConfig::from_args(tls, |_| None)
            .unwrap_err()
            .contains("TLS"));
        let appended = parse(&[
            "-addr=http://x:1/",
            "-query-append=| json",
            "-write-addr=distributor:3100",
        ])
        .expect("parses");
        let config = CanaryConfig::from_args(appended, |_| None).expect("valid");
        assert_eq!(config.base_url, "http://x:1");
        assert_eq!(config.write_url, "http://distributor:3100");
        assert_eq!(
            config.selector(),
            r#"{stream="stdout",name="loki-canary"} | json"#
        );
    }
}
