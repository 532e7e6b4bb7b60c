//! Query load: a list of LogQL queries run repeatedly through
//! `/loki/api/v1/query_range`, with latency percentiles per query.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::latency::{Latencies, LatencySummary};

/// Queries run when none are given: a line filter, parsers with label
/// filters, and metric queries over the streams `push` writes.
pub const DEFAULT_QUERIES: [&str; 6] = [
    r#"{job="loadgen", app="checkout"} |= "error""#,
    r#"{job="loadgen", format="logfmt"} | logfmt | status >= 500"#,
    r#"{job="loadgen", format="json"} | json | level="warn" | line_format "{{.msg}}""#,
    r#"sum by (app) (rate({job="loadgen"}[1m]))"#,
    r#"sum by (level) (count_over_time({job="loadgen", format="json"} | json [1m]))"#,
    r#"topk(3, sum by (pod) (bytes_over_time({job="loadgen"} |~ "db query|Query on" [5m])))"#,
];

/// What a query run does.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Base URL of the server.
    pub addr: String,
    /// `X-Scope-OrgID` sent with every query.
    pub tenant: Option<String>,
    /// LogQL queries, run round-robin.
    pub queries: Vec<String>,
    /// Queries in flight at once.
    pub concurrency: usize,
    /// How long to run.
    pub duration: Duration,
    /// Each query covers `[now - range, now]`.
    pub range: Duration,
    /// Step of metric queries (`None`: the server's default).
    pub step: Option<Duration>,
    /// Entry limit of log queries.
    pub limit: u32,
    /// Timeout of one query.
    pub timeout: Duration,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            addr: "http://localhost:3100".to_owned(),
            tenant: None,
            queries: DEFAULT_QUERIES.iter().map(|q| (*q).to_owned()).collect(),
            concurrency: 4,
            duration: Duration::from_secs(30),
            range: Duration::from_secs(15 * 60),
            step: None,
            limit: 100,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Latency and outcome of one query over the run.
#[derive(Debug, Clone, Serialize)]
pub struct QueryStats {
    /// The LogQL text.
    pub query: String,
    /// Times it answered 200.
    pub ok: u64,
    /// Times it failed (any other status, or no answer).
    pub errors: u64,
    /// The last error's status and message, if any.
    pub last_error: Option<String>,
    /// Average response body size.
    pub average_response_bytes: f64,
    /// Latency of the successful runs.
    pub latency: LatencySummary,
}

/// The outcome of a query run.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    /// Wall-clock time of the run.
    pub duration_seconds: f64,
    /// Queries answered per second (all queries together).
    pub queries_per_second: f64,
    /// Latency of every successful query.
    pub latency: LatencySummary,
    /// Per query, in the order given.
    pub queries: Vec<QueryStats>,
}

impl std::fmt::Display for QueryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "query: {:.1} s, {:.1} queries/s, all queries: {}",
            self.duration_seconds, self.queries_per_second, self.latency
        )?;
        for stats in &self.queries {
            writeln!(f, "  {}", stats.query)?;
            writeln!(
                f,
                "    ok {}, errors {}, {:.0} B/response, {}",
                stats.ok, stats.errors, stats.average_response_bytes, stats.latency
            )?;
            if let Some(error) = &stats.last_error {
                writeln!(f, "    last error: {error}")?;
            }
        }
        Ok(())
    }
}

#[derive(Default, Clone)]
struct PerQuery {
    latencies: Latencies,
    ok: u64,
    errors: u64,
    last_error: Option<String>,
    response_bytes: u64,
}

/// Runs the queries round-robin from `concurrency` workers for the
/// configured duration (or until `shutdown`) and reports per-query latency.
pub async fn run_queries(
    config: QueryConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<QueryReport> {
    anyhow::ensure!(!config.queries.is_empty(), "no queries to run");
    anyhow::ensure!(config.concurrency > 0, "concurrency must be at least 1");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(config.timeout)
        .build()?;
    let url = format!(
        "{}/loki/api/v1/query_range",
        config.addr.trim_end_matches('/')
    );
    let config = Arc::new(config);
    let next_query = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + config.duration;
    let mut workers = Vec::new();
    for _ in 0..config.concurrency {
        let (client, url, config, next_query, shutdown) = (
            client.clone(),
            url.clone(),
            config.clone(),
            next_query.clone(),
            shutdown.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut stats = vec![PerQuery::default(); config.queries.len()];
            while Instant::now() < deadline && !shutdown.is_cancelled() {
                let index = next_query.fetch_add(1, Ordering::Relaxed) % config.queries.len();
                let request = query_request(&client, &url, &config, &config.queries[index]);
                let sent_at = Instant::now();
                let outcome = tokio::select! {
                    outcome = run_one(request) => outcome,
                    _ = shutdown.cancelled() => break,
                };
                let entry = &mut stats[index];
                match outcome {
                    Ok(bytes) => {
                        entry.latencies.record(sent_at.elapsed());
                        entry.ok += 1;
                        entry.response_bytes += bytes;
                    }
                    Err(error) => {
                        entry.errors += 1;
                        entry.last_error = Some(error);
                    }
                }
            }
            stats
        }));
    }
    let mut totals = vec![PerQuery::default(); config.queries.len()];
    for worker in workers {
        for (total, stats) in totals.iter_mut().zip(worker.await?) {
            total.latencies.merge(&stats.latencies);
            total.ok += stats.ok;
            total.errors += stats.errors;
            total.response_bytes += stats.response_bytes;
            if stats.last_error.is_some() {
                total.last_error = stats.last_error;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Latencies::new();
    for total in &totals {
        all.merge(&total.latencies);
    }
    Ok(QueryReport {
        duration_seconds: elapsed,
        queries_per_second: all.count() as f64 / elapsed,
        latency: all.summary(),
        queries: config
            .queries
            .iter()
            .zip(totals)
            .map(|(query, total)| QueryStats {
                query: query.clone(),
                ok: total.ok,
                errors: total.errors,
                last_error: total.last_error,
                average_response_bytes: total.response_bytes as f64 / total.ok.max(1) as f64,
                latency: total.latencies.summary(),
            })
            .collect(),
    })
}

fn query_request(
    client: &reqwest::Client,
    url: &str,
    config: &QueryConfig,
    query: &str,
) -> reqwest::RequestBuilder {
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let start = end.saturating_sub(config.range);
    let mut params = vec![
        ("query", query.to_owned()),
        ("start", start.as_nanos().to_string()),
        ("end", end.as_nanos().to_string()),
        ("limit", config.limit.to_string()),
    ];
    if let Some(step) = config.step {
        params.push(("step", format!("{}", step.as_secs_f64())));
    }
    let mut request = client.get(url).query(&params);
    if let Some(tenant) = &config.tenant {
        request = request.header("X-Scope-OrgID", tenant);
    }
    request
}

/// Sends one query; the body size on 200, else the status and message.
async fn run_one(request: reqwest::RequestBuilder) -> Result<u64, String> {
    let response = request.send().await.map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if status.is_success() {
        Ok(body.len() as u64)
    } else {
        let message = String::from_utf8_lossy(&body);
        Err(format!("{status}: {}", message.trim()))
    }
}

/// Reads queries from a file: one per line; blank lines and lines starting
/// with `#` are skipped.
pub fn parse_queries_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_file_skips_comments_and_blanks() {
        let text = "# ingest path\n{job=\"a\"}\n\n  sum(rate({job=\"a\"}[1m]))  \n#x\n";
        assert_eq!(
            parse_queries_file(text),
            ["{job=\"a\"}", "sum(rate({job=\"a\"}[1m]))"]
        );
    }
}
