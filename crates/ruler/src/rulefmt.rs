//! Rule files in Prometheus' rule-group format with LogQL expressions:
//! parsing, validation (every message names the file, group and rule), and
//! printing back as YAML.
//!
//! ```yaml
//! groups:
//!   - name: loki_alerts
//!     interval: 1m
//!     rules:
//!       - alert: HighErrorRate
//!         expr: rate({level="error"}[5m]) > 10
//!         for: 5m
//!         labels: {severity: page}
//!         annotations:
//!           summary: "High error rate in {{ $labels.service }}"
//!       - record: loki:error_rate:5m
//!         expr: rate({level="error"}[5m])
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sluice_logql::template::RuleTemplate;

/// A rule file: a list of groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The groups, evaluated independently.
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

/// A rule group: rules evaluated in order at one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// Unique within its namespace.
    pub name: String,
    /// Evaluation interval; the ruler's `evaluation_interval` when absent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "prom_duration_opt"
    )]
    pub interval: Option<Duration>,
    /// Most alerts or series a rule may produce (0: no limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: usize,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// One alerting (`alert`) or recording (`record`) rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Name of the recorded series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// Name of the alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// A LogQL metric query.
    #[serde(default)]
    pub expr: String,
    /// How long the condition must hold before the alert fires.
    #[serde(
        default,
        rename = "for",
        skip_serializing_if = "Option::is_none",
        with = "prom_duration_opt"
    )]
    pub for_duration: Option<Duration>,
    /// How long an alert keeps firing after its condition cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "prom_duration_opt"
    )]
    pub keep_firing_for: Option<Duration>,
    /// Labels added to the alert or series (templated for alerts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations of the alert (templated).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The alert or record name.
    pub fn name(&self) -> &str {
        self.alert
            .as_deref()
            .or(self.record.as_deref())
            .unwrap_or_default()
    }

    /// Whether this is an alerting rule.
    pub fn is_alert(&self) -> bool {
        self.alert.is_some()
    }

    fn describe(&self, index: usize) -> String {
        match (&self.alert, &self.record) {
            (Some(alert), _) => format!("rule {} (alert {alert:?})", index + 1),
            (None, Some(record)) => format!("rule {} (record {record:?})", index + 1),
            (None, None) => format!("rule {}", index + 1),
        }
    }
}

fn is_zero(value: &usize) -> bool {
    *value == 0
}

/// Why a rule file or group is refused; the message names where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

/// Parses and validates a rule file. `source` names it in messages (the
/// file path, or `<tenant>/<namespace>`).
pub fn parse_file(source: &str, text: &str) -> Result<RuleFile, RuleError> {
    let file: RuleFile = if text.trim().is_empty() {
        RuleFile::default()
    } else {
        serde_norway::from_str(text).map_err(|err| RuleError(format!("{source}: {err}")))?
    };
    let mut names = BTreeSet::new();
    for group in &file.groups {
        if !names.insert(group.name.as_str()) {
            return Err(RuleError(format!(
                "{source}: group {:?}: the group name is repeated in the same file",
                group.name
            )));
        }
        validate_group(source, group)?;
    }
    Ok(file)
}

/// Parses and validates one group, as the rules API receives it.
pub fn parse_group(source: &str, text: &str) -> Result<RuleGroup, RuleError> {
    let group: RuleGroup =
        serde_norway::from_str(text).map_err(|err| RuleError(format!("{source}: {err}")))?;
    validate_group(source, &group)?;
    Ok(group)
}

/// Checks a group and each of its rules.
pub fn validate_group(source: &str, group: &RuleGroup) -> Result<(), RuleError> {
    if group.name.trim().is_empty() {
        return Err(RuleError(format!("{source}: group name must not be empty")));
    }
    if group.interval == Some(Duration::ZERO) {
        return Err(RuleError(format!(
            "{source}: group {:?}: interval must be positive",
            group.name
        )));
    }
    for (index, rule) in group.rules.iter().enumerate() {
        validate_rule(rule).map_err(|reason| {
            RuleError(format!(
                "{source}: group {:?}, {}: {reason}",
                group.name,
                rule.describe(index)
            ))
        })?;
    }
    Ok(())
}

fn validate_rule(rule: &Rule) -> Result<(), String> {
    match (&rule.record, &rule.alert) {
        (Some(_), Some(_)) => return Err("only one of 'record' and 'alert' must be set".into()),
        (None, None) => return Err("one of 'record' or 'alert' must be set".into()),
        _ => {}
    }
    if rule.expr.trim().is_empty() {
        return Err("field 'expr' must be set in rule".into());
    }
    let expr = sluice_logql::parse_expr(&rule.expr)
        .map_err(|err| format!("could not parse expression: {err}"))?;
    if !expr.is_metric() {
        return Err(
            "invalid expression: a rule needs a metric query (e.g. rate({…}[5m])), not a log query"
                .into(),
        );
    }
    if let Some(record) = &rule.record {
        if !is_metric_name(record) {
            return Err(format!("invalid recording rule name: {record}"));
        }
        if rule.for_duration.is_some() {
            return Err("invalid field 'for' in recording rule".into());
        }
        if rule.keep_firing_for.is_some() {
            return Err("invalid field 'keep_firing_for' in recording rule".into());
        }
        if !rule.annotations.is_empty() {
            return Err("invalid field 'annotations' in recording rule".into());
        }
    }
    if let Some(alert) = &rule.alert {
        if alert.trim().is_empty() {
            return Err("alert name must not be empty".into());
        }
    }
    for (name, value) in &rule.labels {
        if !is_label_name(name) || name == "__name__" {
            return Err(format!("invalid label name: {name}"));
        }
        if rule.alert.is_some() {
            RuleTemplate::parse(value)
                .map_err(|err| format!("label {name:?}: invalid template: {err}"))?;
        }
    }
    for (name, value) in &rule.annotations {
        if !is_label_name(name) {
            return Err(format!("invalid annotation name: {name}"));
        }
        RuleTemplate::parse(value)
            .map_err(|err| format!("annotation {name:?}: invalid template: {err}"))?;
    }
    Ok(())
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Formats a duration as Prometheus does (`1h30m`, `5m`, `10s`, `1d`,
/// `500ms`, `0s`).
pub fn format_prom_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 24 * 3_600_000u128),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        let count = ms / size;
        if count > 0 {
            let _ = write!(out, "{count}{unit}");
            ms %= size;
        }
    }
    out
}

/// Parses a duration in Prometheus' syntax, falling back to Go's.
pub fn parse_prom_duration(text: &str) -> Result<Duration, String> {
    let nanos =
        sluice_common::duration::parse_duration(text.trim()).map_err(|err| err.to_string())?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("negative duration {text:?}"))
}

mod prom_duration_opt {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&format_prom_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|text| parse_prom_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Prints groups as YAML in the rule-file layout.
pub fn groups_to_yaml(groups: &[RuleGroup]) -> String {
    serde_norway::to_string(&RuleFile {
        groups: groups.to_vec(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_NOTES: &str = r#"
groups:
  - name: loki_alerts
    rules:
      - alert: HighErrorRate
        expr: |
          rate({level="error"}[5m]) > 10
        for: 5m
        annotations:
          summary: "High error rate in {{ $labels.service }}"
          dashboard: "http://grafana:3000/d/logs-dashboard"
  - name: recordings
    interval: 30s
    rules:
      - record: loki:error_rate:5m
        expr: rate({level="error"}[5m])
        labels:
          team: ops
"#;

    #[test]
    fn parses_the_design_notes_rules() {
        let file = parse_file("fake/rules.yaml", DESIGN_NOTES).unwrap();
        assert_eq!(file.groups.len(), 2);
        let alert = &file.groups[0].rules[0];
        assert_eq!(alert.alert.as_deref(), Some("HighErrorRate"));
        assert_eq!(alert.for_duration, Some(Duration::from_secs(300)));
        assert_eq!(file.groups[1].interval, Some(Duration::from_secs(30)));
        assert_eq!(file.groups[1].rules[0].labels["team"], "ops");
        let yaml = groups_to_yaml(&file.groups);
        assert!(yaml.contains("for: 5m"), "{yaml}");
        assert!(yaml.contains("interval: 30s"), "{yaml}");
        assert_eq!(parse_file("again", &yaml).unwrap(), file);
    }

    fn error(text: &str) -> String {
        parse_file("fake/bad.yaml", text).unwrap_err().0
    }

    #[test]
    fn messages_name_file_group_and_rule() {
        let message = error(
            "groups:\n  - name: g1\n    rules:\n      - alert: Ok\n        expr: rate({a=\"b\"}[1m]) > 1\n      - alert: Broken\n        expr: rate({a=\"b\"}[1m] > 1\n",
        );
        assert!(message.starts_with("fake/bad.yaml: group \"g1\", rule 2 (alert \"Broken\"): could not parse expression: parse error"), "{message}");
        let message = error("groups:\n  - name: g\n    rules:\n      - record: x\n        alert: y\n        expr: vector(1)\n");
        assert!(
            message.contains("only one of 'record' and 'alert'"),
            "{message}"
        );
        let message = error("groups:\n  - name: g\n    rules:\n      - expr: vector(1)\n");
        assert!(
            message.contains("one of 'record' or 'alert' must be set"),
            "{message}"
        );
        let message = error("groups:\n  - name: g\n    rules:\n      - record: 'bad name'\n        expr: vector(1)\n");
        assert!(message.contains("invalid recording rule name"), "{message}");
        let message = error("groups:\n  - name: g\n    rules:\n      - record: ok\n        expr: vector(1)\n        for: 1m\n");
        assert!(
            message.contains("invalid field 'for' in recording rule"),
            "{message}"
        );
        let message = error(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: '{a=\"b\"}'\n",
        );
        assert!(message.contains("metric query"), "{message}");
        let message = error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(1)\n        annotations:\n          s: '{{ $value '\n");
        assert!(
            message.contains("annotation \"s\": invalid template"),
            "{message}"
        );
        let message = error("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n");
        assert!(message.contains("repeated"), "{message}");
        let message = error("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(1)\n        fo: 1m\n");
        assert!(message.starts_with("fake/bad.yaml: "), "{message}");
        assert!(message.contains("fo"), "{message}");
        let message = error("groups:\n  - name: ''\n    rules: []\n");
        assert!(
            message.contains("group name must not be empty"),
            "{message}"
        );
    }

    fn alert_with(field: &str, name: &str, template: &str) -> Result<RuleFile, RuleError> {
        let text = format!(
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(1)\n        \
             {field}:\n          {name}: {template:?}\n"
        );
        parse_file("fake/t.yaml", &text)
    }

    #[test]
    fn templates_are_checked_when_the_file_is_loaded() {
        for template in [
            "{{ if gt $value 1.0 }}high{{ else }}low{{ end }}",
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
            "{{ with .Labels.service }}{{ . | toUpper }}{{ end }}",
            "{{ $v := humanize $value }}{{ $v }}",
            "{{ printf \"%.2f\" $value }} at {{ $externalURL }}",
        ] {
            alert_with("annotations", "a", template)
                .unwrap_or_else(|err| panic!("{template}: {err}"));
            alert_with("labels", "l", template).unwrap_or_else(|err| panic!("{template}: {err}"));
        }
        let cases = [
            ("annotations", "{{ if $value }}x", "unexpected EOF"),
            ("annotations", "{{ end }}", "unexpected {{end}}"),
            (
                "annotations",
                "{{ nope $value }}",
                "function \"nope\" not defined",
            ),
            (
                "annotations",
                "{{ __line__ }}",
                "function \"__line__\" not defined",
            ),
            (
                "annotations",
                "{{ $other }}",
                "undefined variable \"$other\"",
            ),
            ("annotations", "{{ template \"x\" }}", "is not supported"),
            ("labels", "{{ $value ", "unclosed action"),
        ];
        for (field, template, want) in cases {
            let message = alert_with(field, "s", template).unwrap_err().0;
            let kind = &field[..field.len() - 1];
            assert!(
                message.starts_with(&format!(
                    "fake/t.yaml: group \"g\", rule 1 (alert \"A\"): {kind} \"s\": invalid template: template: __alert:1"
                )) && message.contains(want),
                "{template}: {message}"
            );
        }
    }

    #[test]
    fn durations_print_like_prometheus() {
        assert_eq!(format_prom_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_prom_duration(Duration::from_secs(86400)), "1d");
        assert_eq!(format_prom_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_prom_duration(Duration::ZERO), "0s");
        assert_eq!(
            parse_prom_duration("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(parse_prom_duration("soon").is_err());
    }
}
