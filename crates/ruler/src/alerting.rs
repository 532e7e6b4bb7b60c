//! The alert state machine of one alerting rule, with Prometheus'
//! semantics: each series of the query result is an alert, *pending* when
//! it first appears, *firing* once it has been there for the rule's `for`,
//! *inactive* (resolved) when it disappears (or `keep_firing_for` after
//! that); resolved alerts are kept, and sent, for 15 minutes. Which alerts
//! are (re)sent to Alertmanager after an evaluation is decided here too.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sluice_logql::template::{RuleData, RuleTemplate};

use crate::rulefmt::Rule;

/// How long resolved alerts are kept and re-sent (Prometheus' value).
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// A label or annotation of an alerting rule, parsed once per rule rather
/// than once per alert and evaluation.
#[derive(Debug, Clone)]
enum Expansion {
    /// Text without actions: itself.
    Plain(String),
    /// A template, or why it does not parse (rule files are validated when
    /// loaded, so only a rule built around that check gets here).
    Template(Result<RuleTemplate, String>),
}

impl Expansion {
    fn new(src: &str) -> Expansion {
        if src.contains("{{") {
            Expansion::Template(RuleTemplate::parse(src))
        } else {
            Expansion::Plain(src.to_string())
        }
    }

    /// The text for one alert; a failure is rendered into the text, as
    /// Prometheus does, so the alert still goes out.
    fn expand(&self, data: &RuleData<'_>) -> String {
        let result = match self {
            Expansion::Plain(text) => return text.clone(),
            Expansion::Template(Ok(template)) => template.execute(data),
            Expansion::Template(Err(err)) => Err(err.clone()),
        };
        result.unwrap_or_else(|err| format!("<error expanding template: {err}>"))
    }
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Resolved.
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// Prometheus' name: `inactive`, `pending`, `firing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Current state.
    pub state: AlertState,
    /// Labels, sorted by name, `alertname` included.
    pub labels: Vec<(String, String)>,
    /// Expanded annotations, sorted by name.
    pub annotations: Vec<(String, String)>,
    /// The last value of its series.
    pub value: f64,
    /// When it became pending.
    pub active_at_ms: i64,
    /// When it started firing.
    pub fired_at_ms: Option<i64>,
    /// When it was resolved.
    pub resolved_at_ms: Option<i64>,
    /// When it was last sent to Alertmanager.
    pub last_sent_at_ms: Option<i64>,
    /// `endsAt` while firing: the alert expires there unless re-sent.
    pub valid_until_ms: i64,
    /// Since when it is kept firing after its series disappeared.
    pub keep_firing_since_ms: Option<i64>,
}

impl Alert {
    fn needs_sending(&self, now_ms: i64, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last_sent = self.last_sent_at_ms.unwrap_or(i64::MIN);
        if self
            .resolved_at_ms
            .is_some_and(|resolved| resolved > last_sent)
        {
            return true;
        }
        self.last_sent_at_ms.is_none() || last_sent.saturating_add(millis(resend_delay)) < now_ms
    }

    /// `endsAt` for Alertmanager: the resolution time, or the validity end.
    pub fn ends_at_ms(&self) -> i64 {
        self.resolved_at_ms.unwrap_or(self.valid_until_ms)
    }

    /// `startsAt` for Alertmanager: when it started firing.
    pub fn starts_at_ms(&self) -> i64 {
        self.fired_at_ms.unwrap_or(self.active_at_ms)
    }
}

/// One series of a query result.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSample {
    /// Labels, any order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Label or annotation pairs, sorted by name.
type Labels = Vec<(String, String)>;

/// An alerting rule with its alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    name: String,
    hold: Duration,
    keep_firing_for: Duration,
    labels: BTreeMap<String, Expansion>,
    annotations: BTreeMap<String, Expansion>,
    limit: usize,
    active: HashMap<Vec<(String, String)>, Alert>,
}

fn expansions(templates: &BTreeMap<String, String>) -> BTreeMap<String, Expansion> {
    templates
        .iter()
        .map(|(name, src)| (name.clone(), Expansion::new(src)))
        .collect()
}

/// Why an evaluation failed after the query succeeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertEvalError {
    /// Two series became the same alert.
    #[error("vector contains metrics with the same labelset after applying alert labels")]
    DuplicateLabels,
    /// More alerts than the group's `limit`.
    #[error("exceeded limit of {limit} with {count} alerts")]
    Limit {
        /// The group's limit.
        limit: usize,
        /// Alerts the evaluation produced.
        count: usize,
    },
}

impl AlertingRule {
    /// Builds the rule; `limit` is the group's (0: none).
    pub fn new(rule: &Rule, limit: usize) -> AlertingRule {
        AlertingRule {
            name: rule.alert.clone().unwrap_or_default(),
            hold: rule.for_duration.unwrap_or_default(),
            keep_firing_for: rule.keep_firing_for.unwrap_or_default(),
            labels: expansions(&rule.labels),
            annotations: expansions(&rule.annotations),
            limit,
            active: HashMap::new(),
        }
    }

    /// Takes over the alerts of the rule this one replaces (a reload of an
    /// unchanged or edited rule keeps its pending and firing alerts).
    pub fn inherit(&mut self, previous: &AlertingRule) {
        self.active = previous.active.clone();
    }

    /// The alert name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Applies one evaluation at `now_ms` of the rule's query.
    pub fn eval(
        &mut self,
        now_ms: i64,
        samples: Vec<ResultSample>,
        external_url: &str,
    ) -> Result<(), AlertEvalError> {
        let mut current: HashMap<Labels, (f64, Labels)> = HashMap::with_capacity(samples.len());
        for sample in samples {
            let mut labels: BTreeMap<String, String> = sample
                .labels
                .into_iter()
                .filter(|(name, _)| name != "__name__")
                .collect();
            let data_labels = labels.clone();
            let data = RuleData {
                labels: &data_labels,
                value: sample.value,
                external_url,
            };
            for (name, template) in &self.labels {
                let value = template.expand(&data);
                if value.is_empty() {
                    labels.remove(name);
                } else {
                    labels.insert(name.clone(), value);
                }
            }
            labels.insert("alertname".to_string(), self.name.clone());
            let annotations: Vec<(String, String)> = self
                .annotations
                .iter()
                .map(|(name, template)| (name.clone(), template.expand(&data)))
                .collect();
            let key: Vec<(String, String)> = labels.into_iter().collect();
            if current.insert(key, (sample.value, annotations)).is_some() {
                return Err(AlertEvalError::DuplicateLabels);
            }
        }

        let keep_firing_ms = millis(self.keep_firing_for);
        self.active.retain(|key, alert| {
            if current.contains_key(key) {
                return true;
            }
            if keep_firing_ms > 0 && alert.state == AlertState::Firing {
                let since = *alert.keep_firing_since_ms.get_or_insert(now_ms);
                if now_ms - since < keep_firing_ms {
                    return true;
                }
            }
            if alert.state == AlertState::Pending
                || alert
                    .resolved_at_ms
                    .is_some_and(|resolved| now_ms - resolved > millis(RESOLVED_RETENTION))
            {
                return false;
            }
            if alert.state != AlertState::Inactive {
                alert.state = AlertState::Inactive;
                alert.resolved_at_ms = Some(now_ms);
            }
            true
        });

        for (key, (value, annotations)) in current {
            match self.active.get_mut(&key) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = value;
                    alert.annotations = annotations;
                    alert.keep_firing_since_ms = None;
                }
                _ => {
                    self.active.insert(
                        key.clone(),
                        Alert {
                            state: AlertState::Pending,
                            labels: key,
                            annotations,
                            value,
                            active_at_ms: now_ms,
                            fired_at_ms: None,
                            resolved_at_ms: None,
                            last_sent_at_ms: None,
                            valid_until_ms: 0,
                            keep_firing_since_ms: None,
                        },
                    );
                }
            }
        }

        let hold_ms = millis(self.hold);
        let mut active_count = 0;
        for alert in self.active.values_mut() {
            if alert.state == AlertState::Pending && now_ms - alert.active_at_ms >= hold_ms {
                alert.state = AlertState::Firing;
                alert.fired_at_ms = Some(now_ms);
            }
            if alert.state != AlertState::Inactive {
                active_count += 1;
            }
        }
        if self.limit > 0 && active_count > self.limit {
            self.active.clear();
            return Err(AlertEvalError::Limit {
                limit: self.limit,
                count: active_count,
            });
        }
        Ok(())
    }

    /// Returns the alerts to send now (firing ones due for a resend, and
    /// resolved ones not yet sent since they resolved), marking them sent.
    pub fn alerts_to_send(
        &mut self,
        now_ms: i64,
        resend_delay: Duration,
        interval: Duration,
    ) -> Vec<Alert> {
        let validity = millis(resend_delay.max(interval)) * 4;
        let mut out = Vec::new();
        for alert in self.active.values_mut() {
            if alert.needs_sending(now_ms, resend_delay) {
                alert.last_sent_at_ms = Some(now_ms);
                alert.valid_until_ms = now_ms + validity;
                out.push(alert.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The pending and firing alerts, sorted by labels.
    pub fn active_alerts(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .active
            .values()
            .filter(|alert| alert.state != AlertState::Inactive)
            .cloned()
            .collect();
        alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        alerts
    }

    /// The rule's state: the most severe of its alerts'.
    pub fn state(&self) -> AlertState {
        let mut state = AlertState::Inactive;
        for alert in self.active.values() {
            match alert.state {
                AlertState::Firing => return AlertState::Firing,
                AlertState::Pending => state = AlertState::Pending,
                AlertState::Inactive => {}
            }
        }
        state
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hold_secs: u64, keep_secs: u64) -> AlertingRule {
        let rule = Rule {
            alert: Some("HighErrorRate".into()),
            expr: "vector(1)".into(),
            for_duration: (hold_secs > 0).then(|| Duration::from_secs(hold_secs)),
            keep_firing_for: (keep_secs > 0).then(|| Duration::from_secs(keep_secs)),
            labels: BTreeMap::from([("severity".into(), "page".into())]),
            annotations: BTreeMap::from([(
                "summary".into(),
                "errors in {{ $labels.service }}: {{ $value }}".into(),
            )]),
            ..Rule::default()
        };
        AlertingRule::new(&rule, 0)
    }

    fn sample(service: &str, value: f64) -> ResultSample {
        ResultSample {
            labels: vec![("service".into(), service.into())],
            value,
        }
    }

    const RESEND: Duration = Duration::from_secs(60);
    const INTERVAL: Duration = Duration::from_secs(10);

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut rule = rule(30, 0);
        rule.eval(0, vec![sample("ryot", 12.0)], "").unwrap();
        assert_eq!(rule.state(), AlertState::Pending);
        assert!(rule.alerts_to_send(0, RESEND, INTERVAL).is_empty());
        rule.eval(20_000, vec![sample("ryot", 13.0)], "").unwrap();
        assert_eq!(rule.state(), AlertState::Pending);
        rule.eval(30_000, vec![sample("ryot", 14.0)], "").unwrap();
        assert_eq!(rule.state(), AlertState::Firing);
        let sent = rule.alerts_to_send(30_000, RESEND, INTERVAL);
        assert_eq!(sent.len(), 1);
        let alert = &sent[0];
        assert_eq!(alert.starts_at_ms(), 30_000);
        assert_eq!(alert.active_at_ms, 0);
        assert_eq!(alert.ends_at_ms(), 30_000 + 4 * 60_000);
        assert_eq!(
            alert.labels,
            vec![
                ("alertname".to_string(), "HighErrorRate".to_string()),
                ("service".to_string(), "ryot".to_string()),
                ("severity".to_string(), "page".to_string()),
            ]
        );
        assert_eq!(alert.annotations[0].1, "errors in ryot: 14");
        // Not re-sent before resend_delay.
        rule.eval(40_000, vec![sample("ryot", 14.0)], "").unwrap();
        assert!(rule.alerts_to_send(40_000, RESEND, INTERVAL).is_empty());
        rule.eval(95_000, vec![sample("ryot", 14.0)], "").unwrap();
        assert_eq!(rule.alerts_to_send(95_000, RESEND, INTERVAL).len(), 1);
        // The series disappears: resolved, sent once with endsAt = now.
        rule.eval(100_000, vec![], "").unwrap();
        assert_eq!(rule.state(), AlertState::Inactive);
        let sent = rule.alerts_to_send(100_000, RESEND, INTERVAL);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].state, AlertState::Inactive);
        assert_eq!(sent[0].ends_at_ms(), 100_000);
        assert!(rule.alerts_to_send(110_000, RESEND, INTERVAL).is_empty());
        assert!(rule.active_alerts().is_empty());
        // Forgotten after the retention.
        rule.eval(100_000 + 15 * 60_000 + 1, vec![], "").unwrap();
        assert!(rule.active.is_empty());
    }

    #[test]
    fn pending_alert_that_disappears_is_dropped_and_zero_for_fires_at_once() {
        let mut rule_with_hold = rule(30, 0);
        rule_with_hold.eval(0, vec![sample("a", 1.0)], "").unwrap();
        rule_with_hold.eval(10_000, vec![], "").unwrap();
        assert!(rule_with_hold.active.is_empty());
        let mut immediate = rule(0, 0);
        immediate.eval(0, vec![sample("a", 1.0)], "").unwrap();
        assert_eq!(immediate.state(), AlertState::Firing);
        // It comes back after resolving: a new alert, pending again.
        let mut again = rule(30, 0);
        again.eval(0, vec![sample("a", 1.0)], "").unwrap();
        again.eval(30_000, vec![sample("a", 1.0)], "").unwrap();
        again.eval(40_000, vec![], "").unwrap();
        again.eval(50_000, vec![sample("a", 1.0)], "").unwrap();
        assert_eq!(again.state(), AlertState::Pending);
        assert_eq!(again.active_alerts()[0].active_at_ms, 50_000);
    }

    #[test]
    fn keep_firing_for_holds_a_cleared_alert() {
        let mut rule = rule(0, 30);
        rule.eval(0, vec![sample("a", 1.0)], "").unwrap();
        rule.eval(10_000, vec![], "").unwrap();
        assert_eq!(rule.state(), AlertState::Firing);
        rule.eval(39_000, vec![], "").unwrap();
        assert_eq!(rule.state(), AlertState::Firing);
        rule.eval(40_000, vec![], "").unwrap();
        assert_eq!(rule.state(), AlertState::Inactive);
    }

    #[test]
    fn duplicates_and_limits_fail() {
        let mut clash = rule(0, 0);
        let err = clash
            .eval(
                0,
                vec![
                    ResultSample {
                        labels: vec![
                            ("service".into(), "a".into()),
                            ("__name__".into(), "x".into()),
                        ],
                        value: 1.0,
                    },
                    sample("a", 2.0),
                ],
                "",
            )
            .unwrap_err();
        assert_eq!(err, AlertEvalError::DuplicateLabels);
        let mut limited = AlertingRule {
            limit: 1,
            ..rule(0, 0)
        };
        let err = limited
            .eval(0, vec![sample("a", 1.0), sample("b", 1.0)], "")
            .unwrap_err();
        assert_eq!(err, AlertEvalError::Limit { limit: 1, count: 2 });
        assert!(limited.active_alerts().is_empty());
    }

    fn annotated(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> AlertingRule {
        let rule = Rule {
            alert: Some("Templated".into()),
            expr: "vector(1)".into(),
            labels: labels
                .iter()
                .map(|(name, src)| (name.to_string(), src.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(name, src)| (name.to_string(), src.to_string()))
                .collect(),
            ..Rule::default()
        };
        AlertingRule::new(&rule, 0)
    }

    fn fired(rule: &mut AlertingRule, samples: Vec<ResultSample>) -> Vec<Alert> {
        rule.eval(0, samples, "http://sluice").unwrap();
        let mut sent = rule.alerts_to_send(0, RESEND, INTERVAL);
        sent.sort_by(|a, b| a.labels.cmp(&b.labels));
        sent
    }

    #[test]
    fn annotations_use_if_and_range() {
        let mut rule = annotated(
            &[(
                "severity",
                "{{ if gt $value 1.0 }}page{{ else }}ticket{{ end }}",
            )],
            &[
                ("level", "{{ if gt $value 1.0 }}high{{ else }}low{{ end }}"),
                (
                    "all",
                    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
                ),
                (
                    "svc",
                    "{{ with .Labels.service }}{{ . | toUpper }}{{ end }} at {{ $externalURL }}",
                ),
            ],
        );
        let sent = fired(&mut rule, vec![sample("a", 2.5), sample("b", 0.5)]);
        assert_eq!(sent.len(), 2);
        let annotation = |alert: &Alert, name: &str| {
            alert
                .annotations
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(annotation(&sent[0], "level"), "high");
        assert_eq!(annotation(&sent[1], "level"), "low");
        assert_eq!(annotation(&sent[0], "all"), "service=a ");
        assert_eq!(annotation(&sent[1], "svc"), "B at http://sluice");
        assert!(sent[0]
            .labels
            .contains(&("severity".to_string(), "page".to_string())));
        assert!(sent[1]
            .labels
            .contains(&("severity".to_string(), "ticket".to_string())));
    }

    #[test]
    fn run_time_template_errors_are_rendered_into_the_annotation() {
        let mut rule = annotated(&[], &[("s", "{{ printf }}"), ("plain", "no template")]);
        let sent = fired(&mut rule, vec![sample("a", 1.0)]);
        let (_, plain) = &sent[0].annotations[0];
        assert_eq!(plain, "no template");
        let (_, text) = &sent[0].annotations[1];
        assert_eq!(
            text,
            "<error expanding template: template: __alert:1:3: executing \"__alert\" at \
             <printf>: wrong number of args for printf: want at least 1 got 0>"
        );
        // Rule files are validated when loaded; a rule built around that
        // renders the parse error the same way.
        let mut rule = annotated(&[], &[("s", "{{ nope }}")]);
        let sent = fired(&mut rule, vec![sample("a", 1.0)]);
        assert_eq!(
            sent[0].annotations[0].1,
            "<error expanding template: template: __alert:1: function \"nope\" not defined>"
        );
    }
}
