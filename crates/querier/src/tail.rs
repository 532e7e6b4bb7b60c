//! `GET /loki/api/v1/tail`: Loki's live tail over a WebSocket.
//!
//! The querier opens a gRPC `Tail` stream to every ingester of the read
//! set (each stream lives on several of them), then backfills the newest
//! `limit` entries since `start` with a normal query. Entries from the
//! backfill and all streams go through one buffer ordered by timestamp;
//! an entry leaves it `delay_for` seconds after its timestamp (at once
//! with the default 0), so late replicas and slightly late entries still
//! come out in order. An entry already sent — the same stream, timestamp
//! and line within [`DEDUPE_WINDOW`] — is dropped, so each line reaches
//! the client once although up to three replicas send it.
//!
//! Frames are Loki's: `{"streams":[…],"dropped_entries":[…]}` (the latter
//! only when entries were dropped), at most 100 entries each. When the
//! client reads too slowly and [`MAX_BUFFERED_FRAMES`] frames wait, new
//! entries are dropped and reported (up to 1000) in the next frame sent.
//! A ping goes out every second; the ring is re-read every 5 s to reach
//! ingesters that joined or came back. Errors after the upgrade close the
//! socket with code 1011 and Loki's message.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{FutureExt, SinkExt, StreamExt};
use sluice_chunk::Labels;
use sluice_common::time::{now_nanos, parse_timestamp};
use sluice_common::{ErrorCode, HttpError, TenantId};
use sluice_logql::{Expr, LogExpr, QueryParams, QueryValue};
use sluice_proto::logproto::{TailRequest, TailResponse, TailersCountRequest};
use sluice_proto::{timestamp_from_nanos, timestamp_to_nanos};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::http::Call;
use crate::ingesters::ask_all;
use crate::json::{write_labels, write_string};
use crate::metrics::TailMetrics;
use crate::params::{Direction, Params, TimeRange};
use crate::querier::Querier;
use crate::tenants::Tenants;

/// Loki's `maxDelayForInTailing`, in seconds.
const MAX_DELAY_FOR: u32 = 5;
/// Entries per frame (Loki's `maxEntriesPerTailResponse`).
const MAX_ENTRIES_PER_FRAME: usize = 100;
/// Frames waiting for a slow client (Loki's `maxBufferedTailResponses`).
const MAX_BUFFERED_FRAMES: usize = 10;
/// Dropped entries reported per frame (Loki's
/// `maxDroppedEntriesPerTailResponse`).
const MAX_DROPPED_ENTRIES: usize = 1000;
/// How often a ping frame is sent (Loki's `wsPingPeriod`).
const PING_PERIOD: Duration = Duration::from_secs(1);
/// How often the ring is re-read for ingesters to connect to (Loki's
/// `checkConnectionsWithIngestersPeriod`).
const RING_CHECK_PERIOD: Duration = Duration::from_secs(5);
/// How long a sent entry is remembered to drop its copies from other
/// replicas (which arrive within the ingester client's timeout, 5 s by
/// default) and from the backfill.
const DEDUPE_WINDOW: Duration = Duration::from_secs(60);
/// Most entries remembered for deduplication; beyond, the oldest go.
const MAX_REMEMBERED: usize = 1_000_000;
/// Most entries waiting for `delay_for` or the backfill; beyond, new ones
/// are dropped and reported.
const MAX_PENDING: usize = 100_000;
/// How often entries held back by `delay_for` are checked.
const RELEASE_PERIOD: Duration = Duration::from_millis(100);
/// Ticks without any connected ingester before the tail gives up.
const MAX_DISCONNECTED_CHECKS: u32 = 3;
/// WebSocket close code for server errors (Loki's `CloseInternalServerErr`).
const CLOSE_INTERNAL_ERROR: u16 = 1011;
/// Events buffered from the ingester streams.
const EVENT_BUFFER: usize = 256;

/// Parameters of a tail request.
#[derive(Debug, Clone)]
struct TailParams {
    query: String,
    log: LogExpr,
    limit: u32,
    start: i64,
    delay_for: u32,
}

impl TailParams {
    fn parse(params: &Params) -> Result<TailParams, HttpError> {
        let query = params.query()?.to_string();
        let log = match sluice_logql::parse_expr(&query) {
            Ok(Expr::Log(log)) => log,
            Ok(_) => {
                return Err(HttpError::bad_request(
                    "tail queries must be log queries, not metric queries",
                ))
            }
            Err(err) => return Err(HttpError::bad_request(err.to_string())),
        };
        let limit = params.limit(0)?;
        // Loki takes `start` as is (even in the future); only its default
        // comes from `since` (one hour).
        let start = match params.get("start") {
            Some(text) => parse_timestamp(text).map_err(|err| {
                HttpError::bad_request(format!("could not parse 'start' parameter: {err}"))
            })?,
            None => params.range()?.start,
        };
        let delay_for = match params.get("delay_for") {
            None => 0,
            Some(text) => text.parse::<u32>().map_err(|_| {
                HttpError::bad_request(format!(
                    "strconv.ParseUint: parsing {text:?}: invalid syntax"
                ))
            })?,
        };
        if delay_for > MAX_DELAY_FOR {
            return Err(HttpError::bad_request(format!(
                "delay_for can't be greater than {MAX_DELAY_FOR}"
            )));
        }
        Ok(TailParams {
            query,
            log,
            limit,
            start,
            delay_for,
        })
    }
}

/// The handler: validates, then upgrades; the session runs on the socket.
pub(crate) async fn tail(
    State(querier): State<Arc<Querier>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    call: Call,
) -> Response {
    let Call { tenants, params } = call;
    let tenant = match tenants.single() {
        Ok(tenant) => tenant.clone(),
        Err(err) => return err.into_response(),
    };
    let request = match TailParams::parse(&params) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade.on_upgrade(move |socket| async move {
        tracing::info!(%tenant, query = %request.query, "starting to tail logs");
        Session::run(querier, tenant, request, socket).await;
        tracing::info!("ended tailing logs");
    })
}

/// One entry on its way to the client.
#[derive(Debug, Clone)]
struct TailEntry {
    labels: Arc<Vec<(String, String)>>,
    timestamp: i64,
    line: String,
}

impl TailEntry {
    fn key(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.labels.hash(&mut hasher);
        self.timestamp.hash(&mut hasher);
        self.line.hash(&mut hasher);
        hasher.finish()
    }
}

/// What the ingester readers and the backfill report.
enum Event {
    Connected(String),
    Entries(Vec<TailEntry>),
    Disconnected(String, Option<String>),
    Backfill(Result<Vec<TailEntry>, HttpError>),
}

/// What the writer sends on the socket.
enum Outgoing {
    Frame(String),
    Ping,
    Close(String),
}

/// Remembers sent entries for [`DEDUPE_WINDOW`].
#[derive(Default)]
struct Dedupe {
    seen: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

impl Dedupe {
    /// Returns true the first time a key is offered within the window.
    fn first(&mut self, key: u64, now: Instant) -> bool {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < DEDUPE_WINDOW && self.order.len() < MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back((now, key));
        true
    }
}

/// Entries waiting to be sent, oldest first; each entry once.
struct Buffer {
    pending: BTreeMap<(i64, u64), TailEntry>,
    next_seq: u64,
    dedupe: Dedupe,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            pending: BTreeMap::new(),
            next_seq: 0,
            dedupe: Dedupe::default(),
        }
    }

    /// Queues an entry unless a copy was already queued or sent; returns
    /// the entry back when the buffer is full.
    fn push(&mut self, entry: TailEntry, now: Instant) -> Result<(), TailEntry> {
        if !self.dedupe.first(entry.key(), now) {
            return Ok(());
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(entry);
        }
        self.pending.insert((entry.timestamp, self.next_seq), entry);
        self.next_seq += 1;
        Ok(())
    }

    /// Takes up to `max` entries whose timestamp is `delay` older than `now_ns`.
    fn take_ready(&mut self, now_ns: i64, delay_ns: i64, max: usize) -> Vec<TailEntry> {
        let mut ready = Vec::new();
        while ready.len() < max {
            let Some(entry) = self.pending.first_entry() else {
                break;
            };
            if entry.key().0.saturating_add(delay_ns) > now_ns {
                break;
            }
            ready.push(entry.remove());
        }
        ready
    }
}

/// An entry a slow client missed.
struct DroppedEntry {
    timestamp: i64,
    labels: Arc<Vec<(String, String)>>,
}

/// Writes a frame: one stream per entry (as Loki), then dropped entries.
fn frame_json(entries: &[TailEntry], dropped: &[DroppedEntry]) -> String {
    let mut out = String::from("{\"streams\":[");
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str("{\"stream\":");
        write_labels(
            &mut out,
            entry.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let _ = write!(out, ",\"values\":[[\"{}\",", entry.timestamp);
        write_string(&mut out, &entry.line);
        out.push_str("]]}");
    }
    out.push(']');
    if !dropped.is_empty() {
        out.push_str(",\"dropped_entries\":[");
        for (index, entry) in dropped.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"timestamp\":\"{}\",\"labels\":", entry.timestamp);
            write_labels(
                &mut out,
                entry.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            );
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// Counts the tail in `loki_querier_tail_active` while it lives.
struct ActiveTail {
    metrics: TailMetrics,
    streams: HashSet<u64>,
}

impl ActiveTail {
    fn new(metrics: TailMetrics) -> ActiveTail {
        metrics.active.inc();
        ActiveTail {
            metrics,
            streams: HashSet::new(),
        }
    }

    fn saw_stream(&mut self, labels: &[(String, String)]) {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        labels.hash(&mut hasher);
        if self.streams.insert(hasher.finish()) {
            self.metrics.active_streams.inc();
        }
    }
}

impl Drop for ActiveTail {
    fn drop(&mut self) {
        self.metrics.active.dec();
        self.metrics
            .active_streams
            .dec_by(i64::try_from(self.streams.len()).unwrap_or(i64::MAX));
    }
}

/// Why a session ended.
enum End {
    /// The client closed or the socket failed: nothing more to send.
    Client,
    /// A server-side reason, sent as the close frame's text.
    Error(String),
}

struct Session {
    querier: Arc<Querier>,
    tenant: TenantId,
    request: TailParams,
    events: mpsc::Sender<Event>,
    /// Reader task per ingester address (connecting or connected).
    readers: HashMap<String, JoinHandle<()>>,
    connected: HashSet<String>,
    buffer: Buffer,
    backfill_done: bool,
    frames: mpsc::Sender<Outgoing>,
    dropped: Vec<DroppedEntry>,
    active: ActiveTail,
}

impl Session {
    async fn run(querier: Arc<Querier>, tenant: TenantId, request: TailParams, socket: WebSocket) {
        let (sink, stream) = socket.split();
        let (frames, outgoing) = mpsc::channel(MAX_BUFFERED_FRAMES);
        let writer = tokio::spawn(write_loop(sink, outgoing));
        let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
        let mut session = Session {
            active: ActiveTail::new(querier.tail_metrics.clone()),
            querier,
            tenant,
            request,
            events,
            readers: HashMap::new(),
            connected: HashSet::new(),
            buffer: Buffer::new(),
            backfill_done: false,
            frames,
            dropped: Vec::new(),
        };
        let end = match session.start().await {
            Ok(()) => session.serve(events_rx, stream).await,
            Err(err) => End::Error(err.message),
        };
        for (_, reader) in session.readers.drain() {
            reader.abort();
        }
        if let End::Error(message) = end {
            tracing::warn!(tenant = %session.tenant, error = %message, "tail ended");
            let close = session.frames.send(Outgoing::Close(message));
            let _ = tokio::time::timeout(Duration::from_secs(5), close).await;
        }
        drop(session);
        // A client that stopped reading must not keep the writer forever.
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }

    /// Checks the tenant's tail limit, connects to the ingesters and starts
    /// the backfill.
    async fn start(&mut self) -> Result<(), HttpError> {
        let Some(ingesters) = self.querier.ingesters.clone() else {
            return Err(HttpError::new(
                ErrorCode::Internal,
                "this querier reaches no ingesters to tail",
            ));
        };
        let tenant = self.tenant.clone();
        let counts = ask_all(&ingesters, |mut client| {
            let call = Querier::request(&tenant, TailersCountRequest {});
            Box::pin(async move {
                let call = call.map_err(|err| err.to_status())?;
                Ok(client.tailers_count(call).boxed().await?.into_inner().count)
            })
        })
        .boxed()
        .await?;
        let busiest = counts.into_iter().max().unwrap_or(0);
        let limit = self
            .querier
            .overrides
            .limits(tenant.as_str())
            .max_concurrent_tail_requests;
        if busiest >= limit {
            return Err(HttpError::bad_request(format!(
                "max concurrent tail requests limit exceeded, count > limit ({} > {limit})",
                busiest + 1
            )));
        }
        let set = ingesters
            .read_set()
            .map_err(|err| HttpError::new(ErrorCode::Internal, err.to_string()))?;
        let (querier, tenant, request) = (&self.querier, &self.tenant, &self.request);
        let attempts = set.members.iter().map(|member| {
            let addr = member.addr.clone();
            async move {
                let opened = open_tail(querier, tenant, request, &addr).await;
                (addr, opened)
            }
        });
        let opened_all = futures::future::join_all(attempts).await;
        let mut failures = 0;
        for (addr, opened) in opened_all {
            match opened {
                Ok(stream) => {
                    self.connected.insert(addr.clone());
                    let reader = tokio::spawn(read_tail(addr.clone(), stream, self.events.clone()));
                    self.readers.insert(addr, reader);
                }
                Err(err) => {
                    if err.code == ErrorCode::BadRequest {
                        return Err(err);
                    }
                    failures += 1;
                    tracing::warn!(ingester = %addr, error = %err, "cannot open tail");
                    if failures > set.max_errors {
                        return Err(HttpError::new(
                            err.code,
                            format!("failed to connect with one or more ingester(s) during tailing: ingester {addr}: {err}"),
                        ));
                    }
                }
            }
        }
        let querier = Arc::clone(&self.querier);
        let tenant = self.tenant.clone();
        let request = self.request.clone();
        let events = self.events.clone();
        let backfill = tokio::spawn(async move {
            let result = backfill(&querier, &tenant, &request).await;
            let _ = events.send(Event::Backfill(result)).await;
        });
        self.readers.insert(String::new(), backfill);
        Ok(())
    }

    async fn serve(
        &mut self,
        mut events: mpsc::Receiver<Event>,
        mut client: SplitStream<WebSocket>,
    ) -> End {
        let deadline = tokio::time::sleep(self.querier.config.tail_max_duration);
        tokio::pin!(deadline);
        let mut ping = tokio::time::interval(PING_PERIOD);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ring_check = tokio::time::interval(RING_CHECK_PERIOD);
        ring_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ring_check.tick().await;
        let mut release = tokio::time::interval(RELEASE_PERIOD);
        release.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut disconnected_checks = 0;
        loop {
            tokio::select! {
                () = &mut deadline => {
                    return End::Error("reached tail max duration limit".to_string());
                }
                event = events.recv() => {
                    let Some(event) = event else {
                        return End::Error("tail event channel closed".to_string());
                    };
                    if let Err(end) = self.handle(event) {
                        return end;
                    }
                    if let Err(end) = self.release() {
                        return end;
                    }
                }
                _ = release.tick() => {
                    if let Err(end) = self.release() {
                        return end;
                    }
                }
                _ = ping.tick() => {
                    match self.frames.try_send(Outgoing::Ping) {
                        Err(mpsc::error::TrySendError::Closed(_)) => return End::Client,
                        // A full queue means frames are flowing anyway.
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    }
                }
                _ = ring_check.tick() => {
                    if self.connected.is_empty() {
                        disconnected_checks += 1;
                        if disconnected_checks >= MAX_DISCONNECTED_CHECKS {
                            return End::Error("all ingesters closed the connection".to_string());
                        }
                    } else {
                        disconnected_checks = 0;
                    }
                    self.connect_new_ingesters();
                }
                message = client.next() => {
                    match message {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::Client,
                        Some(Ok(_)) => {}
                    }
                }
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), End> {
        let now = Instant::now();
        match event {
            Event::Connected(addr) => {
                tracing::debug!(ingester = %addr, "tail connected");
                self.connected.insert(addr);
            }
            Event::Disconnected(addr, reason) => {
                let was_connected = self.connected.remove(&addr);
                match reason {
                    Some(reason) if was_connected => {
                        tracing::warn!(ingester = %addr, %reason, "tail stream from ingester ended");
                    }
                    // Retried every ring check while the ingester is in the ring.
                    Some(reason) => {
                        tracing::debug!(ingester = %addr, %reason, "cannot open tail");
                    }
                    None => {}
                }
                self.readers.remove(&addr);
            }
            Event::Entries(entries) => {
                for entry in entries {
                    if let Err(entry) = self.buffer.push(entry, now) {
                        self.note_dropped(&entry);
                    }
                }
            }
            Event::Backfill(result) => {
                self.readers.remove("");
                let entries = result.map_err(|err| End::Error(err.message))?;
                for entry in entries {
                    if let Err(entry) = self.buffer.push(entry, now) {
                        self.note_dropped(&entry);
                    }
                }
                self.backfill_done = true;
            }
        }
        Ok(())
    }

    fn note_dropped(&mut self, entry: &TailEntry) {
        if self.dropped.len() < MAX_DROPPED_ENTRIES {
            self.dropped.push(DroppedEntry {
                timestamp: entry.timestamp,
                labels: Arc::clone(&entry.labels),
            });
        }
    }

    /// Sends every entry whose delay has passed, in frames.
    fn release(&mut self) -> Result<(), End> {
        if !self.backfill_done {
            return Ok(());
        }
        let delay_ns = i64::from(self.request.delay_for) * 1_000_000_000;
        loop {
            let ready = self
                .buffer
                .take_ready(now_nanos(), delay_ns, MAX_ENTRIES_PER_FRAME);
            if ready.is_empty() {
                return Ok(());
            }
            if self.frames.capacity() == 0 {
                for entry in &ready {
                    self.note_dropped(entry);
                }
                continue;
            }
            let bytes: usize = ready.iter().map(|entry| entry.line.len()).sum();
            let frame = frame_json(&ready, &self.dropped);
            match self.frames.try_send(Outgoing::Frame(frame)) {
                Ok(()) => {
                    self.dropped.clear();
                    self.active.metrics.bytes.inc_by(bytes as u64);
                    for entry in &ready {
                        self.active.saw_stream(&entry.labels);
                    }
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    for entry in &ready {
                        self.note_dropped(entry);
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(End::Client),
            }
        }
    }

    /// Opens tails to read-set members not connected (joined or back).
    fn connect_new_ingesters(&mut self) {
        let Some(ingesters) = &self.querier.ingesters else {
            return;
        };
        let Ok(set) = ingesters.read_set() else {
            return;
        };
        for member in &set.members {
            if self.readers.contains_key(&member.addr) {
                continue;
            }
            let addr = member.addr.clone();
            let querier = Arc::clone(&self.querier);
            let tenant = self.tenant.clone();
            let request = self.request.clone();
            let events = self.events.clone();
            let reader = tokio::spawn(async move {
                match open_tail(&querier, &tenant, &request, &addr).await {
                    Ok(stream) => {
                        if events.send(Event::Connected(addr.clone())).await.is_ok() {
                            read_tail(addr, stream, events).await;
                        }
                    }
                    Err(err) => {
                        let _ = events
                            .send(Event::Disconnected(addr, Some(err.message)))
                            .await;
                    }
                }
            });
            self.readers.insert(member.addr.clone(), reader);
        }
    }
}

/// Opens a gRPC tail to one ingester.
async fn open_tail(
    querier: &Querier,
    tenant: &TenantId,
    request: &TailParams,
    addr: &str,
) -> Result<tonic::Streaming<TailResponse>, HttpError> {
    let ingesters = querier
        .ingesters
        .as_ref()
        .ok_or_else(|| HttpError::new(ErrorCode::Internal, "no ingesters"))?;
    let mut client = ingesters
        .querier(addr)
        .map_err(|status| HttpError::from_status(&status))?;
    let call = Querier::request(
        tenant,
        TailRequest {
            query: request.query.clone(),
            delay_for: request.delay_for,
            limit: request.limit,
            start: Some(timestamp_from_nanos(request.start)),
        },
    )?;
    let opened = tokio::time::timeout(ingesters.remote_timeout(), client.tail(call).boxed())
        .await
        .map_err(|_| HttpError::new(ErrorCode::Timeout, "opening the tail timed out"))?;
    opened
        .map(tonic::Response::into_inner)
        .map_err(|status| HttpError::from_status(&status))
}

/// Forwards one ingester's tail responses as events until it ends.
async fn read_tail(
    addr: String,
    mut stream: tonic::Streaming<TailResponse>,
    events: mpsc::Sender<Event>,
) {
    let reason = loop {
        match stream.message().await {
            Ok(Some(response)) => {
                if !response.dropped_streams.is_empty() {
                    // Another replica usually sent what this one dropped.
                    tracing::debug!(ingester = %addr, dropped = response.dropped_streams.len(), "ingester dropped tail streams");
                }
                let Some(stream) = response.stream else {
                    continue;
                };
                let labels = match Labels::parse_pairs(&stream.labels) {
                    Ok(pairs) => Arc::new(
                        pairs
                            .into_iter()
                            .map(|label| (label.name, label.value))
                            .collect::<Vec<_>>(),
                    ),
                    Err(err) => {
                        break Some(format!("unparsable labels {:?}: {err}", stream.labels))
                    }
                };
                let entries = stream
                    .entries
                    .into_iter()
                    .map(|entry| TailEntry {
                        labels: Arc::clone(&labels),
                        timestamp: timestamp_to_nanos(entry.timestamp.as_ref()),
                        line: entry.line,
                    })
                    .collect();
                if events.send(Event::Entries(entries)).await.is_err() {
                    return;
                }
            }
            Ok(None) => break None,
            Err(status) => break Some(status.message().to_string()),
        }
    };
    let _ = events.send(Event::Disconnected(addr, reason)).await;
}

/// The newest `limit` entries since `start`, oldest first.
async fn backfill(
    querier: &Querier,
    tenant: &TenantId,
    request: &TailParams,
) -> Result<Vec<TailEntry>, HttpError> {
    let range = TimeRange {
        start: request.start,
        end: now_nanos(),
    };
    if range.end <= range.start {
        return Ok(Vec::new());
    }
    let tenants = Tenants::new(vec![tenant.clone()]);
    let mut entries = Vec::new();
    if request.log.has_only_line_filters() {
        let streams = querier
            .select_logs(
                &tenants,
                &request.query,
                range,
                request.limit,
                Direction::Backward,
            )
            .await?;
        for stream in streams {
            let labels = Arc::new(stream.labels);
            entries.extend(
                stream
                    .entries
                    .into_iter()
                    .map(|(timestamp, line)| TailEntry {
                        labels: Arc::clone(&labels),
                        timestamp,
                        line,
                    }),
            );
        }
    } else {
        let params = QueryParams {
            start_ns: range.start,
            end_ns: range.end,
            step_ns: 0,
            interval_ns: 0,
            limit: request.limit,
            direction: sluice_logql::Direction::Backward,
            kind: sluice_logql::QueryKind::Range,
        };
        let value = querier
            .evaluate(&tenants, Expr::Log(request.log.clone()), params, None)
            .await?;
        if let QueryValue::Streams(streams) = value {
            for stream in streams {
                let labels = Arc::new(stream.labels.to_pairs());
                entries.extend(
                    stream
                        .entries
                        .into_iter()
                        .map(|(timestamp, line)| TailEntry {
                            labels: Arc::clone(&labels),
                            timestamp,
                            line,
                        }),
                );
            }
        }
    }
    entries.sort_by_key(|entry| entry.timestamp);
    Ok(entries)
}

/// Sends frames, pings and the final close frame.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(message) = outgoing.recv().await {
        let result = match message {
            Outgoing::Frame(text) => sink.send(Message::Text(text.into())).await,
            Outgoing::Ping => sink.send(Message::Ping(Default::default())).await,
            Outgoing::Close(reason) => {
                let frame = CloseFrame {
                    code: CLOSE_INTERNAL_ERROR,
                    reason: truncate_reason(reason).into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
        };
        if result.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}

/// A close frame's reason must fit in 123 bytes.
fn truncate_reason(mut reason: String) -> String {
    const MAX: usize = 123;
    if reason.len() > MAX {
        let mut cut = MAX;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(job: &str, timestamp: i64, line: &str) -> TailEntry {
        TailEntry {
            labels: Arc::new(vec![("job".to_string(), job.to_string())]),
            timestamp,
            line: line.to_string(),
        }
    }

    #[test]
    fn replicas_copies_are_sent_once_in_time_order() {
        let mut buffer = Buffer::new();
        let now = Instant::now();
        // Three replicas deliver the same two entries, out of order.
        for _ in 0..3 {
            buffer.push(entry("a", 20, "second"), now).unwrap();
            buffer.push(entry("a", 10, "first"), now).unwrap();
        }
        // Same timestamp, other line or other stream: distinct entries.
        buffer.push(entry("a", 10, "other"), now).unwrap();
        buffer.push(entry("b", 10, "first"), now).unwrap();
        let ready = buffer.take_ready(1_000, 0, 100);
        let got: Vec<(&str, i64, &str)> = ready
            .iter()
            .map(|e| (e.labels[0].1.as_str(), e.timestamp, e.line.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", 10, "first"),
                ("a", 10, "other"),
                ("b", 10, "first"),
                ("a", 20, "second")
            ]
        );
        // A late copy of a sent entry is still recognised.
        buffer.push(entry("a", 10, "first"), now).unwrap();
        assert!(buffer.take_ready(1_000, 0, 100).is_empty());
    }

    #[test]
    fn delay_holds_entries_back_and_frames_are_bounded() {
        let mut buffer = Buffer::new();
        let now = Instant::now();
        for timestamp in 0..250 {
            buffer.push(entry("a", timestamp, "x"), now).unwrap();
        }
        assert!(buffer.take_ready(100, 500, 100).is_empty(), "too recent");
        assert_eq!(buffer.take_ready(600, 500, 100).len(), 100);
        assert_eq!(
            buffer.take_ready(600, 500, 100).len(),
            1,
            "only ts 100 is old enough"
        );
        assert_eq!(buffer.take_ready(10_000, 500, 1_000).len(), 149);
    }

    #[test]
    fn dedupe_forgets_after_the_window() {
        let mut dedupe = Dedupe::default();
        let start = Instant::now();
        assert!(dedupe.first(1, start));
        assert!(!dedupe.first(1, start + Duration::from_secs(1)));
        assert!(dedupe.first(1, start + DEDUPE_WINDOW + Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_slow_client_gets_dropped_entries_reported_in_the_next_frame() {
        let querier = Querier::new(
            crate::QuerierConfig::default(),
            sluice_common::Overrides::new(sluice_common::LimitsConfig::default()),
            false,
            None,
            None,
        );
        let (frames, mut outgoing) = mpsc::channel(1);
        let (events, _events_rx) = mpsc::channel(1);
        let params = Params::parse(Some("query=%7Bjob%3D%22a%22%7D"), None);
        let mut session = Session {
            active: ActiveTail::new(querier.tail_metrics.clone()),
            querier,
            tenant: TenantId::fake(),
            request: TailParams::parse(&params).unwrap(),
            events,
            readers: HashMap::new(),
            connected: HashSet::new(),
            buffer: Buffer::new(),
            backfill_done: false,
            frames,
            dropped: Vec::new(),
        };
        let now = Instant::now();
        for timestamp in 0..250 {
            session
                .buffer
                .push(entry("a", timestamp, "x"), now)
                .unwrap();
        }
        assert!(session.release().is_ok());
        assert!(outgoing.try_recv().is_err(), "nothing before the backfill");
        session.backfill_done = true;
        assert!(session.release().is_ok());
        // One frame fits; the other 150 entries are dropped.
        let Some(Outgoing::Frame(first)) = outgoing.recv().await else {
            panic!("a frame");
        };
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["streams"].as_array().unwrap().len(), 100);
        assert!(first.get("dropped_entries").is_none());
        session.buffer.push(entry("a", 300, "y"), now).unwrap();
        assert!(session.release().is_ok());
        let Some(Outgoing::Frame(next)) = outgoing.recv().await else {
            panic!("a frame");
        };
        let next: serde_json::Value = serde_json::from_str(&next).unwrap();
        assert_eq!(next["streams"][0]["values"][0][1], "y");
        let dropped = next["dropped_entries"].as_array().unwrap();
        assert_eq!(dropped.len(), 150);
        assert_eq!(
            dropped[0],
            serde_json::json!({"timestamp":"100","labels":{"job":"a"}})
        );
        assert_eq!(session.active.metrics.active.get(), 1);
        drop(session);
    }

    #[test]
    fn frames_are_lokis() {
        let entries = vec![entry("a", 5, "l <1>"), entry("a", 6, "l2")];
        let dropped = vec![DroppedEntry {
            timestamp: 7,
            labels: Arc::new(vec![("job".to_string(), "b".to_string())]),
        }];
        assert_eq!(
            frame_json(&entries, &[]),
            r#"{"streams":[{"stream":{"job":"a"},"values":[["5","l \u003c1\u003e"]]},{"stream":{"job":"a"},"values":[["6","l2"]]}]}"#
        );
        let with_dropped: serde_json::Value =
            serde_json::from_str(&frame_json(&entries, &dropped)).unwrap();
        assert_eq!(
            with_dropped["dropped_entries"],
            serde_json::json!([{"timestamp":"7","labels":{"job":"b"}}])
        );
    }

    #[test]
    fn parameters_follow_loki() {
        let parse = |query: &str| TailParams::parse(&Params::parse(Some(query), None));
        let ok = parse("query=%7Bjob%3D%22a%22%7D").unwrap();
        assert_eq!((ok.limit, ok.delay_for), (100, 0));
        assert!(
            now_nanos() - ok.start >= 3_599_000_000_000,
            "start defaults to 1h ago"
        );
        assert_eq!(
            parse("query=%7Bjob%3D%22a%22%7D&delay_for=6")
                .unwrap_err()
                .message,
            "delay_for can't be greater than 5"
        );
        assert_eq!(
            parse("query=%7Bjob%3D%22a%22%7D&limit=0")
                .unwrap_err()
                .message,
            "limit must be a positive value"
        );
        assert!(parse("query=%7Bjob%3D%22a%22%7D&delay_for=x").is_err());
        assert!(parse("query=count_over_time(%7Bjob%3D%22a%22%7D%5B1m%5D)").is_err());
        assert!(parse("query=%7Bjob%3D").is_err());
        let future = parse("query=%7Bjob%3D%22a%22%7D&start=4000000000").unwrap();
        assert_eq!(future.start, 4_000_000_000 * 1_000_000_000);
        assert_eq!(
            parse("query=%7Bjob%3D%22a%22%7D&start=x")
                .unwrap_err()
                .message,
            "could not parse 'start' parameter: strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(truncate_reason("é".repeat(100)).len(), 122);
    }
}
