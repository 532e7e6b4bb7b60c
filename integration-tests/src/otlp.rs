//! An in-process OTLP trace receiver for the tracing tests: OTLP/gRPC (the
//! collector's `TraceService`) and OTLP/HTTP (`POST /v1/traces`, protobuf)
//! on two loopback ports, both recording every span they are sent.
//!
//! Decoding uses the OpenTelemetry project's own protobuf types
//! (`opentelemetry-proto`), not Sluice's code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;

/// One span as a receiver got it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedSpan {
    /// `service.name` of the resource that sent it.
    pub service: String,
    /// Span name.
    pub name: String,
    /// Trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// Span id, 16 hex digits.
    pub span_id: String,
    /// Parent span id (empty for a root span).
    pub parent_span_id: String,
    /// OTLP span kind (1 internal, 2 server, 3 client).
    pub kind: i32,
    /// Attributes, values rendered as strings.
    pub attributes: BTreeMap<String, String>,
    /// Which receiver got it: `grpc` or `http`.
    pub via: &'static str,
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// The receiver; it stops when dropped.
pub struct OtlpReceiver {
    grpc_port: u16,
    http_port: u16,
    spans: Spans,
    // Dropping the runtime stops both servers.
    _runtime: tokio::runtime::Runtime,
}

impl OtlpReceiver {
    /// Starts both receivers on free loopback ports.
    pub fn start() -> OtlpReceiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("receiver runtime");
        let spans: Spans = Arc::default();
        let (grpc_listener, http_listener) = runtime.block_on(async {
            (
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind gRPC receiver"),
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind HTTP receiver"),
            )
        });
        let grpc_port = grpc_listener.local_addr().expect("addr").port();
        let http_port = http_listener.local_addr().expect("addr").port();
        let service = Receiver {
            spans: Arc::clone(&spans),
        };
        runtime.spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(service))
                .serve_with_incoming(incoming)
                .await;
        });
        let http_spans = Arc::clone(&spans);
        runtime.spawn(async move {
            let app = axum::Router::new().route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let spans = Arc::clone(&http_spans);
                    async move {
                        match ExportTraceServiceRequest::decode(body) {
                            Ok(request) => {
                                record(&spans, request, "http");
                                (
                                    axum::http::StatusCode::OK,
                                    [("content-type", "application/x-protobuf")],
                                    ExportTraceServiceResponse::default().encode_to_vec(),
                                )
                            }
                            Err(_) => (
                                axum::http::StatusCode::BAD_REQUEST,
                                [("content-type", "text/plain")],
                                b"bad OTLP body".to_vec(),
                            ),
                        }
                    }
                }),
            );
            let _ = axum::serve(http_listener, app).await;
        });
        OtlpReceiver {
            grpc_port,
            http_port,
            spans,
            _runtime: runtime,
        }
    }

    /// The OTLP/gRPC endpoint URL.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The OTLP/HTTP base URL (exporters append `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|span| span.trace_id == trace_id)
            .collect()
    }

    /// Waits (≤ `timeout`) until the spans of `trace_id` satisfy `done`;
    /// returns them either way.
    pub fn wait_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.trace(trace_id);
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[derive(Clone)]
struct Receiver {
    spans: Spans,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        record(&self.spans, request.into_inner(), "grpc");
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn record(spans: &Spans, request: ExportTraceServiceRequest, via: &'static str) {
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .map(|resource| attributes(&resource.attributes))
            .and_then(|attributes| attributes.get("service.name").cloned())
            .unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.push(ReceivedSpan {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    via,
                });
            }
        }
    }
    spans
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(received);
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|pair| {
            let value = match pair.value.as_ref().and_then(|value| value.value.as_ref()) {
                Some(AnyValue::StringValue(text)) => text.clone(),
                Some(AnyValue::IntValue(number)) => number.to_string(),
                Some(AnyValue::DoubleValue(number)) => number.to_string(),
                Some(AnyValue::BoolValue(flag)) => flag.to_string(),
                Some(other) => format!("{other:?}"),
                None => String::new(),
            };
            (pair.key.clone(), value)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
