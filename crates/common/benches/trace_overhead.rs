//! What tracing costs a request, off and on.
//!
//! One simulated request opens the spans a push does (a server span and
//! five stage spans with tenant and size attributes, nested as in the
//! distributor and ingester) and injects its trace context into gRPC
//! headers. Compared: no spans at all (baseline); tracing off, behind the
//! process's real log filter (`info,sluice::trace=off`) with no
//! OpenTelemetry layer, which is what a process without
//! `tracing.otlp_endpoint` runs; and tracing on, every span sampled into an
//! OpenTelemetry provider with no exporter (the bookkeeping, not the
//! export).
//!
//! Run: `cargo bench -p sluice-common --bench trace_overhead`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry::trace::TracerProvider as _;
use sluice_common::stage_span;
use sluice_common::telemetry::inject;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The spans of one push, as the services open them.
fn request(work: u64) -> u64 {
    let server = stage_span!("http.server", otel.kind = "server", tenant = "fake");
    let _server = server.enter();
    let mut total = 0;
    for stage in 0..5u64 {
        let span = stage_span!("stage", tenant = "fake", lines = stage, bytes = work);
        let _entered = span.enter();
        total += black_box(work + stage);
    }
    let mut headers = http::HeaderMap::new();
    inject(&tracing::Span::current(), &mut headers);
    total + headers.len() as u64
}

fn log_layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::sink)
        .with_filter(EnvFilter::new("info,sluice::trace=off"))
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("trace_overhead_per_request");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("baseline_no_spans", |b| {
        b.iter(|| {
            let mut total = 0;
            for stage in 0..5u64 {
                total += black_box(100 + stage);
            }
            total
        })
    });
    let off = tracing_subscriber::registry().with(log_layer());
    tracing::subscriber::with_default(off, || {
        group.bench_function("tracing_off", |b| b.iter(|| request(100)));
    });
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let on = tracing_subscriber::registry().with(log_layer()).with(
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("bench"))
            .with_filter(Targets::new().with_target("sluice::trace", tracing::Level::INFO)),
    );
    tracing::subscriber::with_default(on, || {
        group.bench_function("tracing_on_sampled", |b| b.iter(|| request(100)));
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
