//! W3C trace context on every gRPC hop: clients put the current span's
//! context into the request headers (`traceparent`), servers start their
//! span as its child. When tracing is off (no OpenTelemetry layer, no
//! propagator installed) spans are disabled and both sides pass requests
//! through untouched.
//!
//! Spans of this crate and of every Sluice stage use the target
//! [`SPAN_TARGET`], which the process's OpenTelemetry layer exports and its
//! log layer ignores.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `tracing` target of every span meant for traces.
pub const SPAN_TARGET: &str = "sluice::trace";

/// Writes `span`'s trace context into `headers` (nothing when the span is
/// not part of a trace).
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// Returns the trace context `headers` carry (empty when none).
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

/// Makes `span` a child of the trace context in `headers`, if any.
pub fn set_parent_from(span: &tracing::Span, headers: &HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let parent = extract(headers);
    if parent.span().span_context().is_valid() {
        // Fails only when the span was already started, which a fresh span
        // is not.
        let _ = span.set_parent(parent);
    }
}

/// Returns the trace id of `span` as 32 hex digits when it belongs to a
/// sampled trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    (span_context.is_valid() && span_context.is_sampled())
        .then(|| span_context.trace_id().to_string())
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Client side: injects the caller's current span into each request.
#[derive(Debug, Clone)]
pub(crate) struct InjectContext<S> {
    inner: S,
}

impl<S> InjectContext<S> {
    pub(crate) fn new(inner: S) -> InjectContext<S> {
        InjectContext { inner }
    }
}

impl<S, B> Service<http::Request<B>> for InjectContext<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        inject(&tracing::Span::current(), request.headers_mut());
        self.inner.call(request)
    }
}

/// Server side: a `grpc.server` span per call, child of the caller's
/// context, alive until the response body (a stream, for queries) ends.
/// The frontend's long-lived worker streams and health checks get none.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> GrpcTrace<S> {
        GrpcTrace { inner }
    }
}

/// The service [`GrpcTraceLayer`] wraps around a gRPC server.
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> Service<http::Request<B>> for GrpcTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let untraced = path.starts_with("/grpc.health.") || path.starts_with("/frontend.");
        let span = if untraced {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                target: SPAN_TARGET,
                "grpc.server",
                otel.name = path,
                otel.kind = "server",
                rpc.system = "grpc",
                rpc.method = path,
            )
        };
        if span.is_disabled() {
            return Box::pin(self.inner.call(request));
        }
        set_parent_from(&span, request.headers());
        let response = self.inner.call(request).instrument(span.clone());
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| tonic::body::Body::new(SpannedBody { body, _span: span })))
        })
    }
}

/// A response body that keeps its call's span open until it is dropped.
struct SpannedBody {
    body: tonic::body::Body,
    _span: tracing::Span,
}

impl http_body::Body for SpannedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
