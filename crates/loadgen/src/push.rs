//! Push load: concurrent workers sending generated streams through the push
//! API as promtail does (protobuf + raw snappy, one request per batch).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cpu::process_cpu_seconds;
use crate::generator::ServiceLog;
use crate::latency::{Latencies, LatencySummary};
use crate::streams::{stream_specs, FormatChoice, StreamSpec};

/// What a push run does.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Base URL of the server, e.g. `http://localhost:3100`.
    pub addr: String,
    /// Number of tenants the streams are spread over.
    pub tenants: usize,
    /// Tenants are named `<tenant_prefix>-<n>`.
    pub tenant_prefix: String,
    /// Number of streams.
    pub streams: usize,
    /// Line format of the streams.
    pub format: FormatChoice,
    /// Lines per push request.
    pub batch_size: usize,
    /// Requests in flight at once (one worker each).
    pub concurrency: usize,
    /// Lines per second over all workers; `None` pushes as fast as the
    /// server answers.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many lines were sent.
    pub total_lines: Option<u64>,
    /// Seed of every generator.
    pub seed: u64,
    /// Timeout of one request.
    pub timeout: Duration,
    /// A server process whose CPU time is reported.
    pub server_pid: Option<u32>,
    /// Print a progress line to stderr this often.
    pub progress: Option<Duration>,
    /// Stamp the lines over the past instead of now: `total_lines` lines
    /// spread evenly over `[now - backfill, now)`, each stream in order
    /// (to build a history for dashboard queries).
    pub backfill: Option<Duration>,
}

impl Default for PushConfig {
    /// The shape of the Loki numbers this tool is compared with: 71 streams,
    /// batches of 1000 lines, 32 concurrent requests, 30 s.
    fn default() -> Self {
        PushConfig {
            addr: "http://localhost:3100".to_owned(),
            tenants: 1,
            tenant_prefix: "loadgen".to_owned(),
            streams: 71,
            format: FormatChoice::Mixed,
            batch_size: 1000,
            concurrency: 32,
            rate: None,
            duration: Some(Duration::from_secs(30)),
            total_lines: None,
            seed: 1,
            timeout: Duration::from_secs(30),
            server_pid: None,
            progress: None,
            backfill: None,
        }
    }
}

/// The outcome of a push run.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Wall-clock time from the first request to the last answer.
    pub duration_seconds: f64,
    /// Push requests sent.
    pub requests: u64,
    /// Lines in every request sent.
    pub lines_sent: u64,
    /// Lines in requests answered 2xx.
    pub lines_accepted: u64,
    /// Lines in requests that failed (status or transport error).
    pub lines_failed: u64,
    /// Failed requests by HTTP status or `transport`.
    pub errors: BTreeMap<String, u64>,
    /// Uncompressed line bytes accepted.
    pub line_bytes_accepted: u64,
    /// Request body bytes sent (protobuf + snappy).
    pub wire_bytes_sent: u64,
    /// Average line length.
    pub average_line_bytes: f64,
    /// Accepted lines per second.
    pub lines_per_second: f64,
    /// Accepted line bytes per second, in MB (10^6).
    pub megabytes_per_second: f64,
    /// Request body MB per second.
    pub wire_megabytes_per_second: f64,
    /// Push request latency (every answered request).
    pub latency: LatencySummary,
    /// CPU seconds the server process used during the run.
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU seconds per million accepted lines.
    pub server_cpu_seconds_per_million_lines: Option<f64>,
    /// CPU seconds this tool used (generation, encoding, HTTP).
    pub loadgen_cpu_seconds: Option<f64>,
}

impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "push: {:.1} s, {} requests, {} lines sent, {} accepted, {} failed",
            self.duration_seconds,
            self.requests,
            self.lines_sent,
            self.lines_accepted,
            self.lines_failed
        )?;
        writeln!(
            f,
            "  throughput: {:.0} lines/s, {:.1} MB/s of lines ({:.0} B/line), {:.1} MB/s on the wire",
            self.lines_per_second,
            self.megabytes_per_second,
            self.average_line_bytes,
            self.wire_megabytes_per_second
        )?;
        writeln!(f, "  latency: {}", self.latency)?;
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(kind, count)| format!("{kind}: {count}"))
                .collect();
            writeln!(f, "  errors: {}", errors.join(", "))?;
        }
        if let (Some(cpu), Some(per_million)) = (
            self.server_cpu_seconds,
            self.server_cpu_seconds_per_million_lines,
        ) {
            writeln!(
                f,
                "  server CPU: {cpu:.1} s ({per_million:.2} CPU-s per million lines, {:.2} cores busy)",
                cpu / self.duration_seconds.max(1e-9)
            )?;
        }
        if let Some(cpu) = self.loadgen_cpu_seconds {
            writeln!(f, "  loadgen CPU: {cpu:.1} s")?;
        }
        Ok(())
    }
}

/// One stream as a worker drives it.
struct WorkerStream {
    labels: String,
    log: ServiceLog,
    last_ts: i64,
    /// Backfilling: nanoseconds between the stream's lines (0: stamp
    /// lines with the current time).
    step_ns: i64,
}

/// Streams of one tenant that a worker owns.
struct TenantGroup {
    tenant: String,
    streams: Vec<WorkerStream>,
    /// The stream the next line goes to (round-robin across batches).
    next_slot: usize,
    /// Encoding buffers kept from one batch to the next.
    scratch: Vec<Vec<u8>>,
    /// Kept for its hash table, which every compression reuses.
    snappy: snap::raw::Encoder,
}

/// Counters the workers share (progress and the final report).
#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    lines_sent: AtomicU64,
    lines_accepted: AtomicU64,
    line_bytes_accepted: AtomicU64,
    wire_bytes: AtomicU64,
    /// Lines still allowed by `total_lines`.
    lines_left: AtomicU64,
}

/// What one worker observed.
#[derive(Default)]
struct WorkerResult {
    latencies: Latencies,
    errors: BTreeMap<String, u64>,
    lines_failed: u64,
}

/// Runs a push load until the duration or line budget is used up or
/// `shutdown` fires, and reports what happened.
pub async fn run_push(
    config: PushConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<PushReport> {
    anyhow::ensure!(config.batch_size > 0, "batch size must be at least 1");
    anyhow::ensure!(config.concurrency > 0, "concurrency must be at least 1");
    anyhow::ensure!(config.streams > 0, "at least one stream is needed");
    anyhow::ensure!(
        config.duration.is_some() || config.total_lines.is_some(),
        "give a duration or a number of lines, or the run never ends"
    );
    if let Some(rate) = config.rate {
        anyhow::ensure!(rate > 0.0, "rate must be positive");
    }
    let backfill = match config.backfill {
        None => None,
        Some(span) => {
            let Some(lines) = config.total_lines.filter(|lines| *lines > 0) else {
                anyhow::bail!("--backfill needs --lines: the lines spread over the span");
            };
            anyhow::ensure!(
                config.concurrency <= config.streams,
                "--backfill needs --concurrency at most --streams, so each stream has one writer and stays in order"
            );
            let span_ns = i64::try_from(span.as_nanos()).unwrap_or(i64::MAX);
            let per_stream = (lines / config.streams as u64).max(1);
            let step_ns = (span_ns / i64::try_from(per_stream).unwrap_or(i64::MAX)).max(1);
            Some((now_nanos() - span_ns, step_ns, per_stream))
        }
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(config.timeout)
        .pool_max_idle_per_host(config.concurrency)
        .build()?;
    let url = format!("{}/loki/api/v1/push", config.addr.trim_end_matches('/'));
    let specs = stream_specs(
        config.streams,
        config.tenants,
        &config.tenant_prefix,
        config.format,
        config.seed,
    );
    let shared = Arc::new(Shared {
        lines_left: AtomicU64::new(config.total_lines.unwrap_or(u64::MAX)),
        ..Shared::default()
    });
    let server_cpu_before = config
        .server_pid
        .and_then(|pid| process_cpu_seconds(Some(pid)));
    let own_cpu_before = process_cpu_seconds(None);
    let started = Instant::now();
    let deadline = config.duration.map(|duration| started + duration);
    let stop = shutdown.child_token();

    let progress = config.progress.map(|every| {
        tokio::spawn(report_progress(
            shared.clone(),
            every,
            started,
            stop.clone(),
        ))
    });
    let mut workers = Vec::with_capacity(config.concurrency);
    for worker in 0..config.concurrency {
        let mut groups = worker_groups(&specs, worker, config.concurrency, config.seed);
        // Backfilling, each worker writes its streams' share of the lines,
        // so every stream's lines end where the span ends (now).
        let mut budget = None;
        if let Some((start_ns, step_ns, per_stream)) = backfill {
            let mut owned = 0;
            for stream in groups.iter_mut().flat_map(|group| group.streams.iter_mut()) {
                stream.last_ts = start_ns - step_ns;
                stream.step_ns = step_ns;
                owned += 1;
            }
            budget = Some(AtomicU64::new(per_stream * owned));
        }
        let context = WorkerContext {
            client: client.clone(),
            url: url.clone(),
            batch_size: config.batch_size,
            batch_interval: config.rate.map(|rate| {
                Duration::from_secs_f64(config.batch_size as f64 * config.concurrency as f64 / rate)
            }),
            deadline,
            shared: shared.clone(),
            budget,
            stop: stop.clone(),
        };
        workers.push(tokio::spawn(run_worker(context, groups)));
    }
    let mut total = WorkerResult::default();
    for worker in workers {
        let result = worker.await?;
        total.latencies.merge(&result.latencies);
        total.lines_failed += result.lines_failed;
        for (kind, count) in result.errors {
            *total.errors.entry(kind).or_insert(0) += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.cancel();
    if let Some(progress) = progress {
        let _ = progress.await;
    }

    let server_cpu = match (
        server_cpu_before,
        config
            .server_pid
            .and_then(|pid| process_cpu_seconds(Some(pid))),
    ) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let own_cpu = match (own_cpu_before, process_cpu_seconds(None)) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let lines_accepted = shared.lines_accepted.load(Ordering::Relaxed);
    let line_bytes = shared.line_bytes_accepted.load(Ordering::Relaxed);
    let wire_bytes = shared.wire_bytes.load(Ordering::Relaxed);
    Ok(PushReport {
        duration_seconds: elapsed,
        requests: shared.requests.load(Ordering::Relaxed),
        lines_sent: shared.lines_sent.load(Ordering::Relaxed),
        lines_accepted,
        lines_failed: total.lines_failed,
        errors: total.errors,
        line_bytes_accepted: line_bytes,
        wire_bytes_sent: wire_bytes,
        average_line_bytes: line_bytes as f64 / lines_accepted.max(1) as f64,
        lines_per_second: lines_accepted as f64 / elapsed,
        megabytes_per_second: line_bytes as f64 / elapsed / 1e6,
        wire_megabytes_per_second: wire_bytes as f64 / elapsed / 1e6,
        latency: total.latencies.summary(),
        server_cpu_seconds: server_cpu,
        server_cpu_seconds_per_million_lines: server_cpu
            .filter(|_| lines_accepted > 0)
            .map(|cpu| cpu / (lines_accepted as f64 / 1e6)),
        loadgen_cpu_seconds: own_cpu,
    })
}

/// The streams worker `worker` owns, grouped by tenant: every
/// `concurrency`-th stream, or when there are more workers than streams,
/// one stream shared with other workers (its own generator seed, so the
/// lines differ).
fn worker_groups(
    specs: &[StreamSpec],
    worker: usize,
    concurrency: usize,
    seed: u64,
) -> Vec<TenantGroup> {
    let mut owned: Vec<(StreamSpec, u64)> = specs
        .iter()
        .skip(worker)
        .step_by(concurrency)
        .map(|spec| (spec.clone(), spec.seed))
        .collect();
    if owned.is_empty() {
        let spec = specs[worker % specs.len()].clone();
        let stream_seed = spec.seed ^ seed.wrapping_add(worker as u64).rotate_left(32);
        owned.push((spec, stream_seed));
    }
    let mut groups: Vec<TenantGroup> = Vec::new();
    for (spec, stream_seed) in owned {
        let stream = WorkerStream {
            log: ServiceLog::new(spec.format, stream_seed).with_context(spec.app, &spec.pod),
            labels: spec.labels,
            last_ts: 0,
            step_ns: 0,
        };
        match groups.iter_mut().find(|group| group.tenant == spec.tenant) {
            Some(group) => group.streams.push(stream),
            None => groups.push(TenantGroup {
                tenant: spec.tenant,
                streams: vec![stream],
                next_slot: 0,
                scratch: Vec::new(),
                snappy: snap::raw::Encoder::new(),
            }),
        }
    }
    groups
}

struct WorkerContext {
    client: reqwest::Client,
    url: String,
    batch_size: usize,
    /// Time between this worker's batches when the rate is limited.
    batch_interval: Option<Duration>,
    deadline: Option<Instant>,
    shared: Arc<Shared>,
    /// The worker's own line budget (backfilling), instead of the shared one.
    budget: Option<AtomicU64>,
    stop: CancellationToken,
}

/// An encoded push request ready to send.
struct Batch {
    body: Vec<u8>,
    lines: u64,
    line_bytes: u64,
}

async fn run_worker(context: WorkerContext, mut groups: Vec<TenantGroup>) -> WorkerResult {
    let mut result = WorkerResult::default();
    let mut next_due = tokio::time::Instant::now();
    let mut turn = 0usize;
    loop {
        if context.stop.is_cancelled()
            || context
                .deadline
                .is_some_and(|deadline| Instant::now() >= deadline)
        {
            break;
        }
        let left = context
            .budget
            .as_ref()
            .unwrap_or(&context.shared.lines_left);
        let lines = reserve(left, context.batch_size as u64);
        if lines == 0 {
            break;
        }
        if let Some(interval) = context.batch_interval {
            tokio::select! {
                _ = tokio::time::sleep_until(next_due) => {}
                _ = context.stop.cancelled() => break,
            }
            let now = tokio::time::Instant::now();
            next_due = (next_due + interval).max(now.checked_sub(interval).unwrap_or(now));
        }
        let group_index = turn % groups.len();
        turn += 1;
        // Generating and compressing ~1000 lines takes a millisecond or
        // more: keep it off the threads that poll the other requests.
        let mut group = groups.swap_remove(group_index);
        let (group_back, batch) = tokio::task::spawn_blocking(move || {
            let batch = build_batch(&mut group, lines as usize);
            (group, batch)
        })
        .await
        .expect("batch building does not panic");
        let tenant = group_back.tenant.clone();
        groups.push(group_back);

        context.shared.requests.fetch_add(1, Ordering::Relaxed);
        context
            .shared
            .lines_sent
            .fetch_add(batch.lines, Ordering::Relaxed);
        context
            .shared
            .wire_bytes
            .fetch_add(batch.body.len() as u64, Ordering::Relaxed);
        let sent_at = Instant::now();
        let response = context
            .client
            .post(&context.url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
            .header("X-Scope-OrgID", &tenant)
            .body(batch.body)
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status();
                // Read the body so the connection goes back to the pool.
                let _ = response.bytes().await;
                result.latencies.record(sent_at.elapsed());
                if status.is_success() {
                    context
                        .shared
                        .lines_accepted
                        .fetch_add(batch.lines, Ordering::Relaxed);
                    context
                        .shared
                        .line_bytes_accepted
                        .fetch_add(batch.line_bytes, Ordering::Relaxed);
                } else {
                    result.lines_failed += batch.lines;
                    *result
                        .errors
                        .entry(status.as_u16().to_string())
                        .or_insert(0) += 1;
                }
            }
            Err(err) => {
                result.lines_failed += batch.lines;
                let kind = if err.is_timeout() {
                    "timeout"
                } else {
                    "transport"
                };
                *result.errors.entry(kind.to_owned()).or_insert(0) += 1;
                // A refused connection fails at once: do not spin on it.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = context.stop.cancelled() => {}
                }
            }
        }
    }
    result
}

/// Takes up to `want` lines from the shared budget; 0 when it is used up.
fn reserve(lines_left: &AtomicU64, want: u64) -> u64 {
    let mut taken = 0;
    let _ = lines_left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
        taken = left.min(want);
        Some(left - taken)
    });
    taken
}

/// Generates `lines` lines round-robin over the group's streams, stamped
/// with the current time (strictly increasing per stream) or, backfilling,
/// each a step after the stream's last, and encodes them
/// as a snappy-compressed `PushRequest`.
fn build_batch(group: &mut TenantGroup, lines: usize) -> Batch {
    let now = now_nanos();
    let stream_count = group.streams.len();
    let mut encoder = RequestEncoder::new(std::mem::take(&mut group.scratch), stream_count, lines);
    let mut line = String::new();
    let mut line_bytes = 0u64;
    for index in 0..lines {
        let slot = (group.next_slot + index) % stream_count;
        let stream = &mut group.streams[slot];
        let ts = if stream.step_ns > 0 {
            stream.last_ts + stream.step_ns
        } else {
            (now + index as i64).max(stream.last_ts + 1)
        };
        stream.last_ts = ts;
        stream.log.line_at(ts, &mut line);
        line_bytes += line.len() as u64;
        encoder.entry(slot, ts, &line);
    }
    group.next_slot = (group.next_slot + lines) % stream_count;
    let encoded = encoder.finish(|slot| group.streams[slot].labels.as_str());
    let body = group
        .snappy
        .compress_vec(&encoded.request)
        .expect("snappy accepts any input below 4 GiB");
    group.scratch = encoded.scratch;
    Batch {
        body,
        lines: lines as u64,
        line_bytes,
    }
}

/// Writes a `PushRequest` as its lines are generated, byte for byte what
/// prost writes for the same request, without building an `EntryAdapter`
/// (and a copy of the line) per line: each stream's entries go to their
/// own buffer, and [`RequestEncoder::finish`] frames the streams that
/// have any, in stream order.
struct RequestEncoder {
    /// Encoded entries (field 2 of `StreamAdapter`) per stream.
    entries: Vec<Vec<u8>>,
}

/// A finished request, and the buffers to reuse for the next one.
struct EncodedRequest {
    request: Vec<u8>,
    scratch: Vec<Vec<u8>>,
}

impl RequestEncoder {
    /// Starts a request over `streams` streams and about `lines` lines,
    /// reusing `scratch`'s buffers.
    fn new(mut scratch: Vec<Vec<u8>>, streams: usize, lines: usize) -> RequestEncoder {
        scratch.resize_with(streams, Vec::new);
        let expected = (lines / streams.max(1) + 1) * 320;
        for buffer in &mut scratch {
            buffer.clear();
            buffer.reserve(expected);
        }
        RequestEncoder { entries: scratch }
    }

    /// Adds an entry to stream `slot`.
    fn entry(&mut self, slot: usize, ts: i64, line: &str) {
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
        let timestamp = sluice_proto::timestamp_from_nanos(ts);
        let timestamp_len = timestamp.encoded_len();
        let mut entry_len = 1 + encoded_len_varint(timestamp_len as u64) + timestamp_len;
        if !line.is_empty() {
            entry_len += 1 + encoded_len_varint(line.len() as u64) + line.len();
        }
        let out = &mut self.entries[slot];
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(entry_len as u64, out);
        prost::encoding::message::encode(1, &timestamp, out);
        if !line.is_empty() {
            encode_key(2, WireType::LengthDelimited, out);
            encode_varint(line.len() as u64, out);
            out.extend_from_slice(line.as_bytes());
        }
    }

    /// Frames every stream with entries (labels from `labels`) into a
    /// `PushRequest`.
    fn finish<'a>(self, labels: impl Fn(usize) -> &'a str) -> EncodedRequest {
        use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
        let size: usize = self.entries.iter().map(|entries| entries.len() + 128).sum();
        let mut request = Vec::with_capacity(size);
        for (slot, entries) in self.entries.iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let labels = labels(slot);
            let mut stream_len = entries.len();
            if !labels.is_empty() {
                stream_len += 1 + encoded_len_varint(labels.len() as u64) + labels.len();
            }
            encode_key(1, WireType::LengthDelimited, &mut request);
            encode_varint(stream_len as u64, &mut request);
            if !labels.is_empty() {
                encode_key(1, WireType::LengthDelimited, &mut request);
                encode_varint(labels.len() as u64, &mut request);
                request.extend_from_slice(labels.as_bytes());
            }
            request.extend_from_slice(entries);
        }
        EncodedRequest {
            request,
            scratch: self.entries,
        }
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos() as i64)
        .unwrap_or(0)
}

async fn report_progress(
    shared: Arc<Shared>,
    every: Duration,
    started: Instant,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last = (0u64, Instant::now());
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.cancelled() => return,
        }
        let accepted = shared.lines_accepted.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (accepted - last.0) as f64 / now.duration_since(last.1).as_secs_f64();
        eprintln!(
            "[{:>5.1}s] {accepted} lines accepted, {rate:.0} lines/s over the last {every:?}",
            started.elapsed().as_secs_f64()
        );
        last = (accepted, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Format;
    use sluice_proto::logproto::{EntryAdapter, PushRequest, StreamAdapter};

    fn decode(batch: &Batch) -> PushRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&batch.body)
            .expect("snappy");
        PushRequest::decode(raw.as_slice()).expect("protobuf")
    }

    fn timestamps(stream: &StreamAdapter) -> Vec<i64> {
        stream
            .entries
            .iter()
            .map(|e| sluice_proto::timestamp_to_nanos(e.timestamp.as_ref()))
            .collect()
    }

    #[test]
    fn batches_decode_to_the_lines_generated() {
        let specs = stream_specs(5, 1, "t", FormatChoice::Only(Format::Json), 3);
        let mut groups = worker_groups(&specs, 0, 2, 3);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].streams.len(), 3, "streams 0, 2 and 4");
        let batch = build_batch(&mut groups[0], 10);
        let request = decode(&batch);
        let counts: Vec<usize> = request.streams.iter().map(|s| s.entries.len()).collect();
        assert_eq!(counts, [4, 3, 3]);
        assert_eq!(request.streams[1].labels, specs[2].labels);
        let total_bytes: usize = request
            .streams
            .iter()
            .flat_map(|s| &s.entries)
            .map(|e| e.line.len())
            .sum();
        assert_eq!(total_bytes as u64, batch.line_bytes);
        for stream in &request.streams {
            let stamps = timestamps(stream);
            assert!(
                stamps.windows(2).all(|pair| pair[0] < pair[1]),
                "{stamps:?}"
            );
        }
    }

    #[test]
    fn the_encoder_writes_what_prost_writes() {
        let entries = [
            (0usize, 1_715_904_000_123_456_789i64, "first line"),
            (2, 1_715_904_000_123_456_790, "other stream"),
            (0, 1_715_904_001_000_000_000, ""),
            (0, 0, "at the epoch"),
            (2, -1_500_000_000, "before the epoch"),
        ];
        let labels = ["{app=\"a\"}", "{app=\"b\"}", ""];
        // Dirty scratch buffers must not leak into the request.
        let mut encoder = RequestEncoder::new(vec![vec![1, 2, 3]], labels.len(), entries.len());
        let mut expected = PushRequest {
            streams: labels
                .iter()
                .map(|labels| StreamAdapter {
                    labels: labels.to_string(),
                    entries: Vec::new(),
                    hash: 0,
                })
                .collect(),
        };
        for (slot, ts, line) in entries {
            encoder.entry(slot, ts, line);
            expected.streams[slot].entries.push(EntryAdapter {
                timestamp: Some(sluice_proto::timestamp_from_nanos(ts)),
                line: line.to_string(),
                structured_metadata: Vec::new(),
            });
        }
        expected.streams.retain(|stream| !stream.entries.is_empty());
        let encoded = encoder.finish(|slot| labels[slot]);
        assert_eq!(encoded.request, expected.encode_to_vec());
        assert_eq!(encoded.scratch.len(), labels.len());
    }

    #[test]
    fn backfilled_streams_step_through_the_past() {
        let specs = stream_specs(2, 1, "t", FormatChoice::Mixed, 1);
        let mut groups = worker_groups(&specs, 0, 1, 1);
        for stream in &mut groups[0].streams {
            stream.last_ts = 1_000;
            stream.step_ns = 500;
        }
        let request = decode(&build_batch(&mut groups[0], 6));
        for stream in &request.streams {
            assert_eq!(timestamps(stream), [1_500, 2_000, 2_500]);
        }
    }

    #[test]
    fn more_workers_than_streams_share_streams() {
        let specs = stream_specs(2, 2, "t", FormatChoice::Mixed, 1);
        let groups = worker_groups(&specs, 3, 4, 1);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].tenant, "t-1");
        assert_eq!(groups[0].streams[0].labels, specs[1].labels);
    }

    #[test]
    fn the_line_budget_is_handed_out_exactly() {
        let left = AtomicU64::new(2500);
        assert_eq!(reserve(&left, 1000), 1000);
        assert_eq!(reserve(&left, 1000), 1000);
        assert_eq!(reserve(&left, 1000), 500);
        assert_eq!(reserve(&left, 1000), 0);
    }
}
