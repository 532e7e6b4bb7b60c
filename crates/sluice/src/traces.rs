//! The `tracing` block: where to export traces (OTLP over gRPC or HTTP),
//! how many to keep, and under which service name. With no endpoint (in
//! the config or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` variables) no
//! OpenTelemetry layer is installed and every trace span stays disabled.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use serde::{Deserialize, Serialize};

/// How traces leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OtlpProtocol {
    /// OTLP/gRPC (collectors listen on 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (collectors listen on 4318).
    Http,
}

/// Tracing settings (Loki's `tracing` block plus the OTLP exporter's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TracingConfig {
    /// Loki's switch: `false` exports nothing even with an endpoint.
    pub(crate) enabled: bool,
    /// Collector URL (`http://tempo:4317`, `http://collector:4318`); empty:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// when set, else tracing is off.
    pub(crate) otlp_endpoint: String,
    /// `grpc` or `http`.
    pub(crate) otlp_protocol: OtlpProtocol,
    /// Share of new traces kept (0 to 1); a caller's sampling decision in
    /// `traceparent` is followed.
    pub(crate) sampling_ratio: f64,
    /// `service.name` of the spans; empty: `OTEL_SERVICE_NAME`, else
    /// `sluice-<target>`.
    pub(crate) service_name: String,
}

impl Default for TracingConfig {
    fn default() -> TracingConfig {
        TracingConfig {
            enabled: true,
            otlp_endpoint: String::new(),
            otlp_protocol: OtlpProtocol::Grpc,
            sampling_ratio: 1.0,
            service_name: String::new(),
        }
    }
}

impl TracingConfig {
    /// Checks the values serde cannot; messages name the key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            return Err(format!(
                "tracing.sampling_ratio: must be between 0 and 1, got {}",
                self.sampling_ratio
            ));
        }
        let endpoint = self.otlp_endpoint.trim();
        if !endpoint.is_empty() {
            let uri: http::Uri = with_scheme(endpoint).parse().map_err(|err| {
                format!("tracing.otlp_endpoint: {endpoint:?} is not a URL: {err}")
            })?;
            if uri.host().is_none() {
                return Err(format!("tracing.otlp_endpoint: {endpoint:?} names no host"));
            }
        }
        Ok(())
    }
}

/// Adds `http://` to a bare `host:port`.
fn with_scheme(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// Where and how this process exports, once config and environment are
/// combined.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Export {
    pub(crate) endpoint: String,
    pub(crate) protocol: OtlpProtocol,
    pub(crate) sampling_ratio: f64,
    pub(crate) service_name: String,
}

/// Combines the `tracing` block with the standard OpenTelemetry variables
/// (read through `env`); `None` when nothing is to be exported.
pub(crate) fn resolve(
    config: &TracingConfig,
    target: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Option<Export> {
    if !config.enabled {
        return None;
    }
    let env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let env_protocol = || {
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .map(|protocol| {
                if protocol.trim().starts_with("http") {
                    OtlpProtocol::Http
                } else {
                    OtlpProtocol::Grpc
                }
            })
            .unwrap_or(config.otlp_protocol)
    };
    // A signal-specific URL is used as given; a base URL (the config's or
    // the generic variable) gets OTLP/HTTP's `/v1/traces` path.
    let (endpoint, protocol, is_base) = if !config.otlp_endpoint.trim().is_empty() {
        (
            config.otlp_endpoint.trim().to_string(),
            config.otlp_protocol,
            true,
        )
    } else if let Some(endpoint) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        (endpoint, env_protocol(), false)
    } else {
        (env("OTEL_EXPORTER_OTLP_ENDPOINT")?, env_protocol(), true)
    };
    let mut endpoint = with_scheme(endpoint.trim());
    if protocol == OtlpProtocol::Http && is_base && !endpoint.ends_with("/v1/traces") {
        endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    }
    let service_name = if !config.service_name.trim().is_empty() {
        config.service_name.trim().to_string()
    } else if let Some(name) = env("OTEL_SERVICE_NAME") {
        name
    } else {
        format!("sluice-{}", target.replace([',', ' '], "-"))
    };
    Some(Export {
        endpoint,
        protocol,
        sampling_ratio: config.sampling_ratio,
        service_name,
    })
}

/// The running trace pipeline; [`Tracer::shutdown`] flushes what is
/// buffered.
pub(crate) struct Tracer {
    provider: SdkTracerProvider,
}

impl Tracer {
    /// Builds the exporter and provider and installs the W3C propagator.
    /// Must run inside the Tokio runtime (the exporters' connections live
    /// there).
    pub(crate) fn start(export: &Export) -> Result<(Tracer, SdkTracer), String> {
        let exporter = match export.protocol {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(export.endpoint.clone())
                .with_protocol(Protocol::Grpc)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            OtlpProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(OnRuntime {
                    client: Arc::new(
                        opentelemetry_http::hyper::HyperClient::with_default_connector(
                            EXPORT_TIMEOUT,
                            None,
                        ),
                    ),
                    runtime: tokio::runtime::Handle::current(),
                })
                .with_endpoint(export.endpoint.clone())
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        }
        .map_err(|err| format!("tracing: cannot build the OTLP exporter: {err}"))?;
        let resource = Resource::builder()
            .with_service_name(export.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                export.sampling_ratio,
            ))))
            .with_resource(resource)
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let tracer = provider.tracer("sluice");
        Ok((Tracer { provider }, tracer))
    }

    /// Exports what is buffered and stops the pipeline.
    pub(crate) fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("tracing: flushing spans at shutdown: {err}");
        }
    }
}

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The OTLP/HTTP client: hyper, whose connections need the Tokio runtime,
/// driven from the SDK's own export thread by running each request as a
/// task on the runtime.
#[derive(Debug)]
struct OnRuntime {
    client: Arc<opentelemetry_http::hyper::HyperClient>,
    runtime: tokio::runtime::Handle,
}

#[tonic::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = Arc::clone(&self.client);
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn off_without_endpoint_or_when_disabled() {
        let config = TracingConfig::default();
        assert_eq!(resolve(&config, "all", env_of(&[])), None);
        let disabled = TracingConfig {
            enabled: false,
            otlp_endpoint: "http://tempo:4317".into(),
            ..TracingConfig::default()
        };
        assert_eq!(resolve(&disabled, "all", env_of(&[])), None);
    }

    #[test]
    fn config_endpoint_and_names() {
        let config = TracingConfig {
            otlp_endpoint: "tempo:4317".into(),
            ..TracingConfig::default()
        };
        let export = resolve(&config, "querier", env_of(&[])).unwrap();
        assert_eq!(export.endpoint, "http://tempo:4317");
        assert_eq!(export.protocol, OtlpProtocol::Grpc);
        assert_eq!(export.service_name, "sluice-querier");
        let http = TracingConfig {
            otlp_endpoint: "http://collector:4318/".into(),
            otlp_protocol: OtlpProtocol::Http,
            service_name: "logs".into(),
            ..TracingConfig::default()
        };
        let export = resolve(&http, "all", env_of(&[("OTEL_SERVICE_NAME", "x")])).unwrap();
        assert_eq!(export.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(export.service_name, "logs");
    }

    #[test]
    fn standard_variables() {
        let config = TracingConfig::default();
        let export = resolve(
            &config,
            "distributor,ingester",
            env_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_SERVICE_NAME", "edge"),
            ]),
        )
        .unwrap();
        assert_eq!(export.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(export.protocol, OtlpProtocol::Http);
        assert_eq!(export.service_name, "edge");
        let export = resolve(
            &config,
            "distributor,ingester",
            env_of(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:4317",
            )]),
        )
        .unwrap();
        assert_eq!(export.endpoint, "http://collector:4317");
        assert_eq!(export.protocol, OtlpProtocol::Grpc);
        assert_eq!(export.service_name, "sluice-distributor-ingester");
    }

    #[test]
    fn bad_values_name_the_key() {
        let ratio = TracingConfig {
            sampling_ratio: 1.5,
            ..TracingConfig::default()
        };
        assert!(ratio
            .validate()
            .unwrap_err()
            .contains("tracing.sampling_ratio"));
        let endpoint = TracingConfig {
            otlp_endpoint: "http://".into(),
            ..TracingConfig::default()
        };
        assert!(endpoint
            .validate()
            .unwrap_err()
            .contains("tracing.otlp_endpoint"));
    }
}
