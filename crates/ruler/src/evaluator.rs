//! Where rule queries run: in process on a [`Querier`] (Loki's local mode:
//! the querier reads the ingesters and the store with the tenant's limits
//! and the chunk cache), or over HTTP on a query frontend (remote mode:
//! the frontend's queue, limits and caches apply too).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use sluice_common::TenantId;
use sluice_logql::QueryValue;
use sluice_querier::Querier;

use crate::alerting::ResultSample;

/// Runs an instant query for a tenant.
pub trait QueryEvaluator: Send + Sync + std::fmt::Debug {
    /// Evaluates `query` at `time_ns` for `tenant`; the message says why it
    /// failed.
    fn instant_query<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        time_ns: i64,
    ) -> BoxFuture<'a, Result<Vec<ResultSample>, String>>;
}

/// Evaluates on an in-process querier.
#[derive(Debug)]
pub struct LocalEvaluator {
    querier: Arc<Querier>,
}

impl LocalEvaluator {
    /// Wraps a querier built like the querier target's.
    pub fn new(querier: Arc<Querier>) -> LocalEvaluator {
        LocalEvaluator { querier }
    }
}

impl QueryEvaluator for LocalEvaluator {
    fn instant_query<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        time_ns: i64,
    ) -> BoxFuture<'a, Result<Vec<ResultSample>, String>> {
        Box::pin(async move {
            let tenant = TenantId::new(tenant).map_err(|err| err.to_string())?;
            let value = self
                .querier
                .instant_query(tenant, query, time_ns)
                .await
                .map_err(|err| err.message)?;
            samples_of(value)
        })
    }
}

/// Turns a query result into samples; a scalar is one sample without
/// labels (as Prometheus' rule engine does).
fn samples_of(value: QueryValue) -> Result<Vec<ResultSample>, String> {
    match value {
        QueryValue::Vector(samples) => Ok(samples
            .into_iter()
            .map(|sample| ResultSample {
                labels: sample.labels.to_pairs(),
                value: sample.value,
            })
            .collect()),
        QueryValue::Scalar { value, .. } => Ok(vec![ResultSample {
            labels: Vec::new(),
            value,
        }]),
        QueryValue::Matrix(_) | QueryValue::Streams(_) => {
            Err("rule query did not return a vector or scalar".into())
        }
    }
}

/// Evaluates on a query frontend's `/loki/api/v1/query`.
#[derive(Debug)]
pub struct RemoteEvaluator {
    client: reqwest::Client,
    query_url: String,
}

impl RemoteEvaluator {
    /// A client for the frontend at `address` (an HTTP base URL).
    pub fn new(address: &str, timeout: Duration) -> Result<RemoteEvaluator, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|err| err.to_string())?;
        Ok(RemoteEvaluator {
            client,
            query_url: format!("{}/loki/api/v1/query", address.trim_end_matches('/')),
        })
    }
}

#[derive(Deserialize)]
struct QueryResponse {
    data: QueryData,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    Streams(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

impl QueryEvaluator for RemoteEvaluator {
    fn instant_query<'a>(
        &'a self,
        tenant: &'a str,
        query: &'a str,
        time_ns: i64,
    ) -> BoxFuture<'a, Result<Vec<ResultSample>, String>> {
        Box::pin(async move {
            let response = self
                .client
                .get(&self.query_url)
                .header("X-Scope-OrgID", tenant)
                .query(&[("query", query), ("time", &time_ns.to_string())])
                .send()
                .await
                .map_err(|err| format!("query frontend: {err}"))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|err| format!("query frontend: {err}"))?;
            if !status.is_success() {
                return Err(format!("query frontend answered {status}: {}", body.trim()));
            }
            let parsed: QueryResponse = serde_json::from_str(&body)
                .map_err(|err| format!("query frontend sent unreadable JSON: {err}"))?;
            let parse_value = |text: &str| -> Result<f64, String> {
                match text {
                    "+Inf" => Ok(f64::INFINITY),
                    "-Inf" => Ok(f64::NEG_INFINITY),
                    "NaN" => Ok(f64::NAN),
                    other => other
                        .parse()
                        .map_err(|_| format!("query frontend sent a bad sample value {text:?}")),
                }
            };
            match parsed.data {
                QueryData::Vector(samples) => samples
                    .into_iter()
                    .map(|sample| {
                        Ok(ResultSample {
                            labels: sample.metric.into_iter().collect(),
                            value: parse_value(&sample.value.1)?,
                        })
                    })
                    .collect(),
                QueryData::Scalar((_, value)) => Ok(vec![ResultSample {
                    labels: Vec::new(),
                    value: parse_value(&value)?,
                }]),
                QueryData::Matrix(_) | QueryData::Streams(_) => {
                    Err("rule query did not return a vector or scalar".into())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::RawQuery;
    use axum::http::HeaderMap;
    use axum::routing::get;

    use super::*;

    /// A stand-in frontend answering `/loki/api/v1/query` from the query.
    async fn frontend() -> String {
        let app = axum::Router::new().route(
            "/loki/api/v1/query",
            get(|headers: HeaderMap, RawQuery(query): RawQuery| async move {
                let tenant = headers
                    .get("X-Scope-OrgID")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let query = query.unwrap_or_default();
                if query.contains("broken") {
                    return (http::StatusCode::BAD_REQUEST, "parse error : broken".to_string());
                }
                if query.contains("scalar") {
                    return (
                        http::StatusCode::OK,
                        r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"+Inf"]}}"#
                            .to_string(),
                    );
                }
                (
                    http::StatusCode::OK,
                    format!(
                        r#"{{"status":"success","data":{{"result":[{{"metric":{{"tenant":"{tenant}"}},"value":[1.5,"42"]}}],"resultType":"vector","stats":{{}}}}}}"#
                    ),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn remote_mode_reads_the_frontend_answer() {
        let evaluator = RemoteEvaluator::new(&frontend().await, Duration::from_secs(5)).unwrap();
        let samples = evaluator
            .instant_query("team-a", "sum(rate({a=\"b\"}[1m]))", 1_500_000_000)
            .await
            .unwrap();
        assert_eq!(
            samples,
            vec![ResultSample {
                labels: vec![("tenant".into(), "team-a".into())],
                value: 42.0,
            }]
        );
        let scalar = evaluator.instant_query("t", "scalar", 0).await.unwrap();
        assert_eq!(scalar[0].value, f64::INFINITY);
        let err = evaluator.instant_query("t", "broken", 0).await.unwrap_err();
        assert!(
            err.contains("400") && err.contains("parse error : broken"),
            "{err}"
        );
    }
}
