//! Distributed tracing: a push through a distributor to an ingester, and a
//! query through a query frontend, a querier and an ingester (separate
//! processes on a memcached ring, sharing a filesystem store), each yield
//! one trace with spans from every process, correctly parented, exported
//! over OTLP/gRPC and OTLP/HTTP to an in-process receiver. Without an
//! endpoint nothing is traced and no trace id is returned.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use sluice_integration_tests::cluster::{wait_ring_active, Memcached};
use sluice_integration_tests::live_tail::TailClient;
use sluice_integration_tests::otlp::{OtlpReceiver, ReceivedSpan};
use sluice_integration_tests::{
    free_port, now_ns, proto_push_body, SluiceOptions, SluiceProcess, Stream, Value, SEC,
};

const TRACE_WAIT: Duration = Duration::from_secs(30);

/// A node of the traced cluster; `frontend` is the address a querier
/// pulls work from.
fn node(
    target: &str,
    memcached: &str,
    store: &Path,
    otlp: (&str, &str),
    frontend: Option<String>,
) -> SluiceProcess {
    let frontend_worker = frontend
        .map(|addr| format!("frontend_worker:\n  frontend_address: {addr}\n"))
        .unwrap_or_default();
    SluiceProcess::start(node_options(
        target,
        memcached,
        store,
        otlp,
        &frontend_worker,
    ))
}

/// The options of [`node`], with `extra` YAML of its own.
fn node_options(
    target: &str,
    memcached: &str,
    store: &Path,
    otlp: (&str, &str),
    extra: &str,
) -> SluiceOptions {
    let (endpoint, protocol) = otlp;
    let yaml = format!(
        "auth_enabled: false\n\
         server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: @HTTP_PORT@\n  \
         grpc_listen_address: 127.0.0.1\n  grpc_listen_port: @GRPC_PORT@\n  log_level: info\n\
         common:\n  path_prefix: @DATA_DIR@\n  ring:\n    kvstore:\n      store: memcached\n      \
         memcached:\n        addresses: [{memcached}]\n        timeout: 500ms\n    \
         heartbeat_period: 1s\n    heartbeat_timeout: 10s\n    replication_factor: 1\n    \
         instance_id: {target}-0\n\
         storage_config:\n  filesystem:\n    directory: {store}\n  index_shipper:\n    resync_interval: 1s\n\
         limits_config:\n  split_queries_by_interval: 0s\n\
         tracing:\n  otlp_endpoint: {endpoint}\n  otlp_protocol: {protocol}\n\
         {extra}",
        store = store.display(),
    );
    SluiceOptions::new()
        .yaml(yaml)
        .target(target)
        // Export every 100 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
}

/// Sends a request and returns status, body and the `X-Trace-Id` header.
fn send(
    p: &SluiceProcess,
    request: reqwest::blocking::RequestBuilder,
) -> (u16, String, Option<String>) {
    let response = request.send().unwrap_or_else(|err| {
        panic!(
            "request failed: {err}\n{}",
            sluice_integration_tests::tail(&p.stderr_text(), 4000)
        )
    });
    let status = response.status().as_u16();
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .map(|value| value.to_str().expect("ascii").to_string());
    (status, response.text().unwrap_or_default(), trace_id)
}

fn names(spans: &[ReceivedSpan]) -> BTreeSet<String> {
    spans.iter().map(|span| span.name.clone()).collect()
}

fn has_all(spans: &[ReceivedSpan], wanted: &[&str]) -> bool {
    let present = names(spans);
    wanted.iter().all(|name| present.contains(*name))
}

/// The one span called `name` (panics on none or several).
fn one<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "spans named {name}: {found:#?}");
    found[0]
}

/// Spans whose parent is not in the trace (its entry points).
fn roots(spans: &[ReceivedSpan]) -> Vec<&ReceivedSpan> {
    let ids: BTreeSet<&str> = spans.iter().map(|span| span.span_id.as_str()).collect();
    spans
        .iter()
        .filter(|span| !ids.contains(span.parent_span_id.as_str()))
        .collect()
}

/// Asserts `child`'s parent is a span named `parent` of the same trace.
fn assert_parent(spans: &[ReceivedSpan], child: &ReceivedSpan, parent: &str) {
    let by_id: BTreeMap<&str, &ReceivedSpan> = spans
        .iter()
        .map(|span| (span.span_id.as_str(), span))
        .collect();
    let actual = by_id
        .get(child.parent_span_id.as_str())
        .unwrap_or_else(|| panic!("{} has no parent in the trace", child.name));
    assert_eq!(
        actual.name, parent,
        "parent of {} ({})",
        child.name, child.service
    );
}

/// What every traced cluster shares: a memcached ring, an OTLP receiver
/// and a filesystem store in a temporary directory.
struct Traced {
    memcached: Memcached,
    receiver: OtlpReceiver,
    _root: tempfile::TempDir,
    store: std::path::PathBuf,
}

impl Traced {
    fn start() -> Traced {
        let root = tempfile::tempdir().expect("tempdir");
        let store = root.path().join("store");
        std::fs::create_dir_all(&store).expect("store dir");
        Traced {
            memcached: Memcached::start(),
            receiver: OtlpReceiver::start(),
            _root: root,
            store,
        }
    }
}

#[test]
fn push_and_query_each_make_one_trace_across_processes() {
    let Traced {
        memcached,
        receiver,
        _root,
        store,
    } = Traced::start();
    let grpc = receiver.grpc_endpoint();
    let http = receiver.http_endpoint();
    let frontend = node(
        "query-frontend",
        &memcached.addr(),
        &store,
        (&grpc, "grpc"),
        None,
    );
    let ingester = node("ingester", &memcached.addr(), &store, (&grpc, "grpc"), None);
    let distributor = node(
        "distributor",
        &memcached.addr(),
        &store,
        (&grpc, "grpc"),
        None,
    );
    // The querier exports over OTLP/HTTP: both exporters are exercised.
    let querier = node(
        "querier",
        &memcached.addr(),
        &store,
        (&http, "http"),
        Some(frontend.grpc_addr()),
    );
    wait_ring_active(&distributor, &["ingester-0"], Duration::from_secs(30));
    wait_ring_active(&querier, &["ingester-0"], Duration::from_secs(30));

    // A push continuing the caller's trace.
    let push_trace = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let ts = now_ns();
    let body = proto_push_body(&[Stream::new(
        r#"{job="traced"}"#,
        [(ts, "hello trace"), (ts + 1, "second line")],
    )]);
    let (status, text, returned) = send(
        &distributor,
        distributor
            .client()
            .post(format!("{}/loki/api/v1/push", distributor.http_url()))
            .header("Content-Type", "application/x-protobuf")
            .header("traceparent", format!("00-{push_trace}-{caller_span}-01"))
            .body(body),
    );
    assert_eq!((status, text.as_str()), (204, ""));
    assert_eq!(returned.as_deref(), Some(push_trace));
    let push_spans = [
        "POST /loki/api/v1/push",
        "distributor.validate",
        "distributor.replicate",
        "distributor.ingester_push",
        "/logproto.Pusher/Push",
        "ingester.push",
        "ingester.wal_append",
    ];
    let spans = receiver.wait_trace(push_trace, TRACE_WAIT, |spans| has_all(spans, &push_spans));
    assert!(has_all(&spans, &push_spans), "push trace: {spans:#?}");
    let entry = roots(&spans);
    assert_eq!(entry.len(), 1, "one entry point: {entry:#?}");
    assert_eq!(entry[0].name, "POST /loki/api/v1/push");
    assert_eq!(entry[0].parent_span_id, caller_span);
    assert_eq!(entry[0].service, "sluice-distributor");
    assert_parent(
        &spans,
        one(&spans, "distributor.validate"),
        "POST /loki/api/v1/push",
    );
    assert_parent(
        &spans,
        one(&spans, "distributor.replicate"),
        "POST /loki/api/v1/push",
    );
    let hop = one(&spans, "distributor.ingester_push");
    assert_parent(&spans, hop, "distributor.replicate");
    let server = one(&spans, "/logproto.Pusher/Push");
    assert_eq!(server.service, "sluice-ingester");
    assert_parent(&spans, server, "distributor.ingester_push");
    let push = one(&spans, "ingester.push");
    assert_parent(&spans, push, "/logproto.Pusher/Push");
    assert_eq!(
        push.attributes.get("tenant").map(String::as_str),
        Some("fake")
    );
    assert_eq!(
        push.attributes.get("entries").map(String::as_str),
        Some("2")
    );
    assert_parent(&spans, one(&spans, "ingester.wal_append"), "ingester.push");
    let validate = one(&spans, "distributor.validate");
    assert_eq!(
        validate.attributes.get("lines").map(String::as_str),
        Some("2")
    );

    // Flush so the query reads the store as well as the ingester.
    let flushed = ingester.send(
        ingester
            .client()
            .post(format!("{}/flush", ingester.http_url())),
    );
    assert_eq!(flushed.status, 204, "{}", flushed.body);
    let (start, end) = ((ts - 60 * SEC).to_string(), (ts + 60 * SEC).to_string());
    let params = [
        ("query", r#"{job="traced"} |= "hello""#),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    let query = || {
        send(
            &frontend,
            frontend
                .client()
                .get(format!("{}/loki/api/v1/query_range", frontend.http_url()))
                .query(&params),
        )
    };
    // Wait until the flushed chunk is in the index the querier reads.
    let deadline = Instant::now() + Duration::from_secs(30);
    let chunk_fetch = |trace: &str| {
        receiver
            .wait_trace(trace, Duration::from_secs(5), |spans| {
                has_all(spans, &["store.chunk_decompress"])
            })
            .iter()
            .any(|span| span.name == "store.chunk_decompress")
    };
    let (body, trace_id) = loop {
        let (status, body, trace_id) = query();
        assert_eq!(status, 200, "{body}");
        let trace_id = trace_id.expect("a traced query returns X-Trace-Id");
        if body.contains("hello trace") && chunk_fetch(&trace_id) {
            break (body, trace_id);
        }
        assert!(
            Instant::now() < deadline,
            "the querier never read the flushed chunk: {body}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let json: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["data"]["result"][0]["values"][0][1], "hello trace");
    assert_eq!(trace_id.len(), 32);

    let query_spans = [
        "GET /loki/api/v1/query_range",
        "frontend.split",
        "frontend.subquery",
        "frontend.merge",
        "querier.request",
        "querier.ingesters",
        "querier.ingester_call",
        "/logproto.Querier/Query",
        "ingester.query",
        "querier.store",
        "store.index_lookup",
        "store.chunk_fetch",
        "store.chunk_decompress",
        "querier.merge",
    ];
    let spans = receiver.wait_trace(&trace_id, TRACE_WAIT, |spans| has_all(spans, &query_spans));
    assert!(has_all(&spans, &query_spans), "query trace: {spans:#?}");
    let entry = roots(&spans);
    assert_eq!(entry.len(), 1, "one root: {entry:#?}");
    assert_eq!(entry[0].name, "GET /loki/api/v1/query_range");
    assert!(entry[0].parent_span_id.is_empty());
    let services: BTreeSet<&str> = spans.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["sluice-query-frontend", "sluice-querier", "sluice-ingester"])
    );
    for span in &spans {
        let expected = if span.service == "sluice-querier" {
            "http"
        } else {
            "grpc"
        };
        assert_eq!(span.via, expected, "{span:?}");
    }
    assert_parent(
        &spans,
        one(&spans, "frontend.split"),
        "GET /loki/api/v1/query_range",
    );
    let subquery = one(&spans, "frontend.subquery");
    assert_parent(&spans, subquery, "frontend.split");
    let request = one(&spans, "querier.request");
    assert_eq!(request.service, "sluice-querier");
    assert_eq!(request.parent_span_id, subquery.span_id);
    assert_parent(&spans, one(&spans, "querier.ingesters"), "querier.request");
    assert_parent(
        &spans,
        one(&spans, "querier.ingester_call"),
        "querier.ingesters",
    );
    let ingester_server = one(&spans, "/logproto.Querier/Query");
    assert_eq!(ingester_server.service, "sluice-ingester");
    assert_parent(&spans, ingester_server, "querier.ingester_call");
    assert_parent(
        &spans,
        one(&spans, "ingester.query"),
        "/logproto.Querier/Query",
    );
    assert_parent(&spans, one(&spans, "querier.store"), "querier.request");
    assert_parent(&spans, one(&spans, "store.index_lookup"), "querier.store");
    let lookup = one(&spans, "store.index_lookup");
    assert_eq!(
        lookup.attributes.get("chunks").map(String::as_str),
        Some("1")
    );
    assert_parent(&spans, one(&spans, "store.chunk_fetch"), "querier.store");
    let decompress = one(&spans, "store.chunk_decompress");
    assert_eq!(
        decompress.attributes.get("entries").map(String::as_str),
        Some("1")
    );
    assert_parent(&spans, one(&spans, "querier.merge"), "querier.request");
    assert_parent(&spans, one(&spans, "frontend.merge"), "frontend.split");
    assert_eq!(
        one(&spans, "frontend.split")
            .attributes
            .get("tenant")
            .map(String::as_str),
        Some("fake")
    );
    drop((querier, distributor, ingester, frontend));
}

#[test]
fn untraced_without_endpoint_and_sampling_follows_the_caller() {
    // No endpoint: nothing traced, the caller's context is not echoed.
    let plain = SluiceProcess::start_default();
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, _, trace_id) = send(
        &plain,
        plain
            .client()
            .get(format!("{}/loki/api/v1/labels", plain.http_url()))
            .header("traceparent", caller),
    );
    assert_eq!((status, trace_id), (200, None));

    // Ratio 0: new traces are dropped, a sampled caller's trace is kept.
    let receiver = OtlpReceiver::start();
    let sampled = SluiceProcess::start(
        SluiceOptions::new()
            .extra_yaml(&format!(
                "tracing:\n  otlp_endpoint: {}\n  sampling_ratio: 0\n",
                receiver.grpc_endpoint()
            ))
            .env("OTEL_BSP_SCHEDULE_DELAY", "100"),
    );
    let labels = || {
        sampled
            .client()
            .get(format!("{}/loki/api/v1/labels", sampled.http_url()))
    };
    let (status, _, trace_id) = send(&sampled, labels());
    assert_eq!((status, trace_id), (200, None));
    let (status, _, trace_id) = send(&sampled, labels().header("traceparent", caller));
    assert_eq!(status, 200);
    assert_eq!(
        trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let spans = receiver.wait_trace("4bf92f3577b34da6a3ce929d0e0e4736", TRACE_WAIT, |spans| {
        !spans.is_empty()
    });
    assert!(
        spans
            .iter()
            .any(|span| span.name == "GET /loki/api/v1/labels"),
        "{spans:#?}"
    );
    // Only the caller's trace reached the receiver.
    let traces: BTreeSet<String> = receiver
        .spans()
        .into_iter()
        .map(|span| span.trace_id)
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
}

/// A live tail opened on a query frontend that proxies it to a querier
/// (`frontend.tail_proxy_url`) is one trace: the querier's span for the
/// tail continues the frontend's, which continues the caller's.
#[test]
fn a_tail_proxied_by_the_frontend_is_one_trace() {
    let Traced {
        memcached,
        receiver,
        _root,
        store,
    } = Traced::start();
    let grpc = receiver.grpc_endpoint();
    let _ingester = node("ingester", &memcached.addr(), &store, (&grpc, "grpc"), None);
    let querier_http = free_port();
    let frontend = SluiceProcess::start(node_options(
        "query-frontend",
        &memcached.addr(),
        &store,
        (&grpc, "grpc"),
        &format!("frontend:\n  tail_proxy_url: http://127.0.0.1:{querier_http}\n"),
    ));
    let querier = SluiceProcess::start(
        node_options(
            "querier",
            &memcached.addr(),
            &store,
            (&grpc, "grpc"),
            &format!(
                "frontend_worker:\n  frontend_address: {}\n",
                frontend.grpc_addr()
            ),
        )
        .arg(format!("-server.http-listen-port={querier_http}"))
        .expect_http_port(querier_http),
    );
    wait_ring_active(&querier, &["ingester-0"], Duration::from_secs(30));

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{caller_span}-01");
    let tail = TailClient::connect_with_headers(
        &frontend,
        &[("traceparent", traceparent.as_str())],
        &[("query", r#"{job="traced"}"#)],
    );
    // Each process exports its spans in its own batches: wait for both.
    let spans = receiver.wait_trace(trace, TRACE_WAIT, |spans| {
        ["sluice-querier", "sluice-query-frontend"]
            .iter()
            .all(|service| spans.iter().any(|span| span.service == *service))
    });
    tail.close();
    let from = |service: &str| -> Vec<&ReceivedSpan> {
        spans
            .iter()
            .filter(|span| span.service == service)
            .collect()
    };
    let frontend_spans = from("sluice-query-frontend");
    let querier_spans = from("sluice-querier");
    assert!(
        frontend_spans
            .iter()
            .any(|span| span.parent_span_id == caller_span),
        "the frontend's span continues the caller's: {spans:#?}"
    );
    assert!(
        !querier_spans.is_empty()
            && querier_spans.iter().any(|span| frontend_spans
                .iter()
                .any(|parent| parent.span_id == span.parent_span_id)),
        "the querier's span continues the frontend's: {spans:#?}"
    );
}
