//! One rule group at run time: its rules evaluated in order every
//! `interval` through the [`QueryEvaluator`], alerts sent to the notifier,
//! recorded series appended to the sample WAL, and the state the rules API
//! shows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::alerting::{Alert, AlertingRule, ResultSample};
use crate::evaluator::QueryEvaluator;
use crate::metrics::{GroupLabels, RulerMetrics};
use crate::notifier::{Notifier, PostableAlert};
use crate::prompb::{Label, Sample, TimeSeries};
use crate::rulefmt::{Rule, RuleGroup};
use crate::sample_wal::SampleWal;

/// Identifies a group: tenant, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    /// The tenant.
    pub tenant: String,
    /// The namespace (a file name with local storage).
    pub namespace: String,
    /// The group name.
    pub name: String,
}

impl GroupKey {
    fn metric_labels(&self) -> GroupLabels {
        GroupLabels {
            user: self.tenant.clone(),
            rule_group: format!("{};{}", self.namespace, self.name),
        }
    }
}

/// What every group needs.
#[derive(Debug, Clone)]
pub struct GroupDeps {
    /// Runs the queries.
    pub evaluator: Arc<dyn QueryEvaluator>,
    /// Sends alerts (absent: no Alertmanager configured).
    pub notifier: Option<Arc<Notifier>>,
    /// Takes recorded samples (absent: remote write disabled).
    pub samples: Option<Arc<SampleWal>>,
    /// Metrics.
    pub metrics: RulerMetrics,
    /// `ruler.external_url`.
    pub external_url: String,
    /// `ruler.resend_delay`.
    pub resend_delay: Duration,
}

/// A rule's health, as Prometheus reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not evaluated yet.
    Unknown,
    /// The last evaluation succeeded.
    Ok,
    /// The last evaluation failed.
    Err,
}

#[derive(Debug)]
struct RuleRuntime {
    rule: Rule,
    query: String,
    alerting: Option<AlertingRule>,
    health: Health,
    last_error: String,
    last_evaluation_ms: Option<i64>,
    evaluation_seconds: f64,
}

/// A snapshot of one alert, as the APIs show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatus {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    /// Unix ms.
    pub active_at_ms: i64,
    /// The series' value.
    pub value: f64,
}

/// A snapshot of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    /// The rule as written.
    pub rule: Rule,
    /// The canonical query.
    pub query: String,
    /// `inactive`, `pending` or `firing` (alerting rules).
    pub state: Option<String>,
    /// Its alerts (alerting rules).
    pub alerts: Vec<AlertStatus>,
    /// Health of the last evaluation.
    pub health: Health,
    /// Error of the last evaluation, or "".
    pub last_error: String,
    /// Unix ms of the last evaluation.
    pub last_evaluation_ms: Option<i64>,
    /// Seconds the last evaluation took.
    pub evaluation_seconds: f64,
}

/// A snapshot of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Which group.
    pub key: GroupKey,
    /// Its interval.
    pub interval_seconds: f64,
    /// Its rules.
    pub rules: Vec<RuleStatus>,
    /// Unix ms of the last evaluation.
    pub last_evaluation_ms: Option<i64>,
    /// Seconds the last evaluation took.
    pub evaluation_seconds: f64,
}

#[derive(Debug)]
struct GroupRuntime {
    rules: Vec<RuleRuntime>,
    last_evaluation_ms: Option<i64>,
    evaluation_seconds: f64,
}

/// A running group.
#[derive(Debug)]
pub struct Group {
    key: GroupKey,
    definition: RuleGroup,
    interval: Duration,
    runtime: Mutex<GroupRuntime>,
}

impl Group {
    /// Builds a group; alerts of `previous` (the version it replaces) carry
    /// over to alerting rules of the same name.
    pub fn new(
        key: GroupKey,
        definition: RuleGroup,
        default_interval: Duration,
        previous: Option<&Group>,
    ) -> Group {
        let previous_alerts: BTreeMap<String, AlertingRule> = previous
            .map(|group| {
                group
                    .runtime
                    .lock()
                    .rules
                    .iter()
                    .filter_map(|rule| rule.alerting.clone())
                    .map(|rule| (rule.name().to_string(), rule))
                    .collect()
            })
            .unwrap_or_default();
        let rules = definition
            .rules
            .iter()
            .map(|rule| {
                let alerting = rule.alert.as_ref().map(|name| {
                    let mut alerting = AlertingRule::new(rule, definition.limit);
                    if let Some(old) = previous_alerts.get(name) {
                        alerting.inherit(old);
                    }
                    alerting
                });
                RuleRuntime {
                    rule: rule.clone(),
                    query: sluice_logql::parse_expr(&rule.expr)
                        .map(|expr| expr.to_string())
                        .unwrap_or_else(|_| rule.expr.trim().to_string()),
                    alerting,
                    health: Health::Unknown,
                    last_error: String::new(),
                    last_evaluation_ms: None,
                    evaluation_seconds: 0.0,
                }
            })
            .collect();
        Group {
            interval: definition.interval.unwrap_or(default_interval),
            key,
            definition,
            runtime: Mutex::new(GroupRuntime {
                rules,
                last_evaluation_ms: None,
                evaluation_seconds: 0.0,
            }),
        }
    }

    /// The group's definition.
    pub fn definition(&self) -> &RuleGroup {
        &self.definition
    }

    /// Evaluates every `interval` until `stop`.
    pub async fn run(self: Arc<Self>, deps: Arc<GroupDeps>, stop: CancellationToken) {
        let labels = self.key.metric_labels();
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let started = Instant::now();
            // Set every time: a replaced group's stopping task may have
            // just removed the series.
            deps.metrics
                .group_rules
                .get_or_create(&labels)
                .set(self.definition.rules.len() as i64);
            deps.metrics
                .group_interval
                .get_or_create(&labels)
                .set(self.interval.as_secs_f64());
            deps.metrics.iterations.get_or_create(&labels).inc();
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.evaluate(&deps, sluice_ring::now_ms()) => {}
            }
            let elapsed = started.elapsed();
            let missed = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64;
            if missed > 0 {
                deps.metrics
                    .iterations_missed
                    .get_or_create(&labels)
                    .inc_by(missed);
                deps.metrics
                    .iterations
                    .get_or_create(&labels)
                    .inc_by(missed);
            }
        }
        deps.metrics.forget_group(&labels);
    }

    /// Evaluates each rule once at `now_ms`.
    pub async fn evaluate(&self, deps: &GroupDeps, now_ms: i64) {
        let labels = self.key.metric_labels();
        let started = Instant::now();
        let rule_count = self.runtime.lock().rules.len();
        let mut samples_total = 0;
        for index in 0..rule_count {
            let (query, rule) = {
                let runtime = self.runtime.lock();
                (
                    runtime.rules[index].query.clone(),
                    runtime.rules[index].rule.clone(),
                )
            };
            let rule_started = Instant::now();
            deps.metrics.evaluations.get_or_create(&labels).inc();
            let result = deps
                .evaluator
                .instant_query(&self.key.tenant, &query, now_ms.saturating_mul(1_000_000))
                .await;
            let outcome = match result {
                Ok(samples) => {
                    samples_total += samples.len();
                    if rule.is_alert() {
                        self.apply_alerts(deps, index, now_ms, samples, &query)
                    } else {
                        self.record(deps, &rule, now_ms, samples).await
                    }
                }
                Err(error) => Err(error),
            };
            let mut runtime = self.runtime.lock();
            let state = &mut runtime.rules[index];
            state.last_evaluation_ms = Some(now_ms);
            state.evaluation_seconds = rule_started.elapsed().as_secs_f64();
            match outcome {
                Ok(()) => {
                    state.health = Health::Ok;
                    state.last_error.clear();
                }
                Err(error) => {
                    tracing::warn!(
                        tenant = %self.key.tenant,
                        namespace = %self.key.namespace,
                        group = %self.key.name,
                        rule = %rule.name(),
                        %error,
                        "rule evaluation failed"
                    );
                    deps.metrics
                        .evaluation_failures
                        .get_or_create(&labels)
                        .inc();
                    state.health = Health::Err;
                    state.last_error = error;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        {
            let mut runtime = self.runtime.lock();
            runtime.last_evaluation_ms = Some(now_ms);
            runtime.evaluation_seconds = elapsed;
        }
        deps.metrics
            .last_evaluation
            .get_or_create(&labels)
            .set(now_ms as f64 / 1000.0);
        deps.metrics
            .last_duration
            .get_or_create(&labels)
            .set(elapsed);
        deps.metrics
            .last_evaluation_samples
            .get_or_create(&labels)
            .set(samples_total as i64);
    }

    fn apply_alerts(
        &self,
        deps: &GroupDeps,
        index: usize,
        now_ms: i64,
        samples: Vec<ResultSample>,
        query: &str,
    ) -> Result<(), String> {
        let to_send: Vec<Alert> = {
            let mut runtime = self.runtime.lock();
            let Some(alerting) = runtime.rules[index].alerting.as_mut() else {
                return Ok(());
            };
            alerting
                .eval(now_ms, samples, &deps.external_url)
                .map_err(|err| err.to_string())?;
            alerting.alerts_to_send(now_ms, deps.resend_delay, self.interval)
        };
        if let Some(notifier) = &deps.notifier {
            let alerts = to_send
                .iter()
                .map(|alert| PostableAlert::from_alert(alert, &deps.external_url, query))
                .collect();
            notifier.send(&self.key.tenant, alerts);
        }
        Ok(())
    }

    async fn record(
        &self,
        deps: &GroupDeps,
        rule: &Rule,
        now_ms: i64,
        samples: Vec<ResultSample>,
    ) -> Result<(), String> {
        let series = recorded_series(rule, now_ms, samples, self.definition.limit)?;
        if let Some(wal) = &deps.samples {
            wal.append(&self.key.tenant, series, now_ms)
                .await
                .map_err(|err| format!("writing samples to the ruler WAL: {err}"))?;
        }
        Ok(())
    }

    /// A snapshot for the APIs.
    pub fn status(&self) -> GroupStatus {
        let runtime = self.runtime.lock();
        GroupStatus {
            key: self.key.clone(),
            interval_seconds: self.interval.as_secs_f64(),
            last_evaluation_ms: runtime.last_evaluation_ms,
            evaluation_seconds: runtime.evaluation_seconds,
            rules: runtime
                .rules
                .iter()
                .map(|rule| RuleStatus {
                    rule: rule.rule.clone(),
                    query: rule.query.clone(),
                    state: rule
                        .alerting
                        .as_ref()
                        .map(|alerting| alerting.state().as_str().to_string()),
                    alerts: rule
                        .alerting
                        .as_ref()
                        .map(|alerting| {
                            alerting
                                .active_alerts()
                                .into_iter()
                                .map(|alert| AlertStatus {
                                    labels: alert.labels.into_iter().collect(),
                                    annotations: alert.annotations.into_iter().collect(),
                                    state: alert.state.as_str().to_string(),
                                    active_at_ms: alert.active_at_ms,
                                    value: alert.value,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    health: rule.health,
                    last_error: rule.last_error.clone(),
                    last_evaluation_ms: rule.last_evaluation_ms,
                    evaluation_seconds: rule.evaluation_seconds,
                })
                .collect(),
        }
    }
}

/// The series a recording rule writes: each result's labels without
/// `__name__`, the rule's labels over them, `__name__` set to the record
/// name, sorted by name; one sample at `now_ms` each.
pub fn recorded_series(
    rule: &Rule,
    now_ms: i64,
    samples: Vec<ResultSample>,
    limit: usize,
) -> Result<Vec<TimeSeries>, String> {
    if limit > 0 && samples.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            samples.len()
        ));
    }
    let record = rule.record.clone().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(samples.len());
    for sample in samples {
        let mut labels: BTreeMap<String, String> = sample
            .labels
            .into_iter()
            .filter(|(name, _)| name != "__name__")
            .collect();
        for (name, value) in &rule.labels {
            if value.is_empty() {
                labels.remove(name);
            } else {
                labels.insert(name.clone(), value.clone());
            }
        }
        labels.insert("__name__".to_string(), record.clone());
        let labels: Vec<Label> = labels
            .into_iter()
            .map(|(name, value)| Label { name, value })
            .collect();
        if !seen.insert(labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push(TimeSeries {
            labels,
            samples: vec![Sample {
                value: sample.value,
                timestamp: now_ms,
            }],
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_series_labels() {
        let rule = Rule {
            record: Some("loki:error_rate:5m".into()),
            expr: "vector(1)".into(),
            labels: BTreeMap::from([
                ("team".into(), "ops".into()),
                ("drop".into(), String::new()),
            ]),
            ..Rule::default()
        };
        let series = recorded_series(
            &rule,
            5_000,
            vec![ResultSample {
                labels: vec![
                    ("service".into(), "ryot".into()),
                    ("drop".into(), "x".into()),
                ],
                value: 0.5,
            }],
            0,
        )
        .unwrap();
        let names: Vec<(&str, &str)> = series[0]
            .labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("__name__", "loki:error_rate:5m"),
                ("service", "ryot"),
                ("team", "ops")
            ]
        );
        assert_eq!(
            series[0].samples,
            vec![Sample {
                value: 0.5,
                timestamp: 5_000
            }]
        );
        let clash = recorded_series(
            &Rule {
                labels: BTreeMap::from([("service".into(), "one".into())]),
                ..rule.clone()
            },
            0,
            vec![
                ResultSample {
                    labels: vec![("service".into(), "a".into())],
                    value: 1.0,
                },
                ResultSample {
                    labels: vec![("service".into(), "b".into())],
                    value: 1.0,
                },
            ],
            0,
        );
        assert!(clash.unwrap_err().contains("same labelset"));
        assert!(recorded_series(
            &rule,
            0,
            vec![
                ResultSample {
                    labels: vec![],
                    value: 1.0
                };
                3
            ],
            2
        )
        .unwrap_err()
        .contains("exceeded limit of 2"));
    }
}
