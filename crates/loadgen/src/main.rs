//! `sluice-loadgen`: push and query load against Sluice or any
//! Loki-compatible server. See docs/performance.md.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sluice_loadgen::push::{run_push, PushConfig};
use sluice_loadgen::query::{parse_queries_file, run_queries, QueryConfig, DEFAULT_QUERIES};
use sluice_loadgen::streams::FormatChoice;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "sluice-loadgen",
    version,
    about = "Push and query load for Sluice (and any Loki-compatible server)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push generated service logs (protobuf + snappy) and report lines/s,
    /// MB/s, request latency percentiles and errors.
    Push(PushArgs),
    /// Run LogQL queries repeatedly and report latency percentiles.
    Query(QueryArgs),
}

#[derive(Args)]
struct CommonArgs {
    /// Base URL of the server.
    #[arg(long, default_value = "http://localhost:3100")]
    addr: String,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PushArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Tenants (X-Scope-OrgID `<tenant-prefix>-<n>`) the streams are spread over.
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Prefix of the tenant names.
    #[arg(long, default_value = "loadgen")]
    tenant_prefix: String,
    /// Number of streams (label sets).
    #[arg(long, default_value_t = 71)]
    streams: usize,
    /// Line format: mixed (a third each by application), json, logfmt or text.
    #[arg(long, default_value = "mixed", value_parser = FormatChoice::parse)]
    format: FormatChoice,
    /// Lines per push request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Push requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Lines per second over all workers (default: as fast as the server answers).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to push (e.g. 30s, 5m); default 30s unless --lines is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many lines.
    #[arg(long)]
    lines: Option<u64>,
    /// Seed of the generators (same seed, same lines).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timeout of one push request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// PID of the server, to report its CPU-seconds per million lines (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print progress to stderr this often (e.g. 5s).
    #[arg(long, value_parser = humantime::parse_duration)]
    progress: Option<Duration>,
    /// Stamp the --lines lines evenly over the past BACKFILL (e.g. 7d)
    /// instead of now, each stream in order; needs --concurrency <= --streams.
    #[arg(long, value_parser = humantime::parse_duration)]
    backfill: Option<Duration>,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// X-Scope-OrgID of the queries (`loadgen-0` is push's first tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// A LogQL query (repeatable); default: a built-in mix over push's streams.
    #[arg(long = "query")]
    queries: Vec<String>,
    /// File with one query per line (# comments).
    #[arg(long)]
    queries_file: Option<std::path::PathBuf>,
    /// Queries in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How long to run.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Each query covers the last RANGE.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    range: Duration,
    /// Step of metric queries (default: the server's).
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<Duration>,
    /// Entry limit of log queries.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Timeout of one query.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let result = runtime.block_on(async {
        let signal_shutdown = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted, reporting what ran so far");
                signal_shutdown.cancel();
            }
        });
        match cli.command {
            Command::Push(args) => push(args, shutdown).await,
            Command::Query(args) => query(args, shutdown).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn push(args: PushArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let duration = match (args.duration, args.lines) {
        (None, None) => Some(Duration::from_secs(30)),
        (duration, _) => duration,
    };
    let config = PushConfig {
        addr: args.common.addr,
        tenants: args.tenants,
        tenant_prefix: args.tenant_prefix,
        streams: args.streams,
        format: args.format,
        batch_size: args.batch_size,
        concurrency: args.concurrency,
        rate: args.rate,
        duration,
        total_lines: args.lines,
        seed: args.seed,
        timeout: args.timeout,
        server_pid: args.server_pid,
        progress: args.progress,
        backfill: args.backfill,
    };
    let report = run_push(config, shutdown).await?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

async fn query(args: QueryArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut queries = args.queries;
    if let Some(path) = &args.queries_file {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("reading {}: {err}", path.display()))?;
        queries.extend(parse_queries_file(&text));
    }
    if queries.is_empty() {
        queries = DEFAULT_QUERIES.iter().map(|q| (*q).to_owned()).collect();
    }
    let config = QueryConfig {
        addr: args.common.addr,
        tenant: args.tenant,
        queries,
        concurrency: args.concurrency,
        duration: args.duration,
        range: args.range,
        step: args.step,
        limit: args.limit,
        timeout: args.timeout,
    };
    let report = run_queries(config, shutdown).await?;
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
