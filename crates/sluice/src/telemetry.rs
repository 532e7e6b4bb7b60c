//! Sluice's own logs (and the trace layer beside them) and the metrics
//! registry behind `/metrics`.

use std::sync::Arc;

use opentelemetry_sdk::trace::SdkTracer;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sluice_common::server::{LogFormat, LogLevel};
use sluice_common::telemetry::SPAN_TARGET;
use tracing::Level;
use tracing_subscriber::filter::{Directive, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry as SpanRegistry};

/// Installs the global subscriber: the logger on stderr (as Loki logs),
/// logfmt (its default) or JSON, filtered by level (`RUST_LOG` may refine
/// it); and, when `tracer` is given, the OpenTelemetry layer exporting
/// the trace spans (target [`SPAN_TARGET`]), which the logger never shows.
/// Without a tracer no layer wants those spans, so they stay disabled.
pub(crate) fn init_logging(level: LogLevel, format: LogFormat, tracer: Option<SdkTracer>) {
    let trace_spans_off: Directive = format!("{SPAN_TARGET}=off")
        .parse()
        .expect("a valid filter directive");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.as_str()))
        .add_directive(trace_spans_off);
    let logger: Box<dyn Layer<SpanRegistry> + Send + Sync> = match format {
        LogFormat::Logfmt => tracing_logfmt::builder()
            .layer()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let traces = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target(SPAN_TARGET, Level::INFO))
    });
    let result = tracing_subscriber::registry()
        .with(logger)
        .with(traces)
        .try_init();
    if let Err(err) = result {
        eprintln!("logging was already initialised: {err}");
    }
}

/// The frozen registry, shared with the `/metrics` handler.
#[derive(Clone)]
pub(crate) struct RegistryHandle(Arc<Registry>);

impl RegistryHandle {
    pub(crate) fn new(registry: Registry) -> RegistryHandle {
        RegistryHandle(Arc::new(registry))
    }

    /// Renders the registry in the Prometheus/OpenMetrics text format.
    pub(crate) fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.0)?;
        Ok(out)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    branch: String,
    goversion: String,
    goos: String,
    goarch: String,
}

/// Registers `loki_build_info`, constant 1 with the build's labels.
pub(crate) fn register_build_info(registry: &mut Registry) {
    let family = Family::<BuildLabels, Gauge>::default();
    family
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: env!("SLUICE_REVISION").to_string(),
            branch: env!("SLUICE_BRANCH").to_string(),
            goversion: env!("SLUICE_RUSTC_VERSION").to_string(),
            goos: std::env::consts::OS.to_string(),
            goarch: std::env::consts::ARCH.to_string(),
        })
        .set(1);
    registry.register(
        "loki_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, and the toolchain from which Sluice was built.",
        family,
    );
}
