//! Retention policy: how long each stream of a tenant is kept, from
//! `limits_config.retention_period`, `retention_stream` and the design
//! notes' `retention_overrides`.
//!
//! A stream takes the period of the matching rule with the highest
//! priority; among matching rules of equal priority the shortest period
//! wins (Loki's rule, so a `{tier="debug"}` rule beats a longer
//! `{service="agents"}` rule for debug streams of that service); a stream
//! no rule matches takes `retention_period`. A period of 0 keeps data
//! forever. A chunk expires when its newest entry is older than its
//! stream's period.

use std::time::Duration;

use sluice_common::duration::format_go_duration;
use sluice_common::LimitsConfig;
use sluice_logql::Matcher;

use crate::clock::nanos;

/// The shortest per-stream period Loki accepts.
const MIN_STREAM_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// One compiled per-stream rule.
#[derive(Debug, Clone)]
struct Rule {
    matchers: Vec<Matcher>,
    priority: i64,
    period_ns: i64,
}

/// A tenant's compiled retention rules.
#[derive(Debug, Clone)]
pub(crate) struct RetentionPolicy {
    default_ns: i64,
    rules: Vec<Rule>,
}

impl RetentionPolicy {
    /// Compiles a tenant's limits; errors name the offending key.
    pub(crate) fn compile(limits: &LimitsConfig) -> Result<RetentionPolicy, String> {
        let mut rules = Vec::new();
        let stream_rules = limits.retention_stream.iter().map(|rule| {
            (
                "retention_stream",
                "period",
                rule.selector.as_str(),
                rule.priority,
                rule.period,
            )
        });
        let override_rules = limits.retention_overrides.iter().map(|rule| {
            (
                "retention_overrides",
                "retention",
                rule.selector.as_str(),
                0,
                rule.retention,
            )
        });
        let mut positions = std::collections::HashMap::<&str, usize>::new();
        for (list, period_key, selector, priority, period) in stream_rules.chain(override_rules) {
            let position = positions.entry(list).or_default();
            let key = format!("limits_config.{list}[{position}]");
            *position += 1;
            let matchers = sluice_logql::parse_selector(selector)
                .map_err(|err| format!("{key}.selector: invalid labels matchers: {err}"))?;
            if period < MIN_STREAM_PERIOD {
                return Err(format!(
                    "{key}.{period_key}: retention period must be >= 24h was {}",
                    format_go_duration(nanos(period))
                ));
            }
            rules.push(Rule {
                matchers,
                priority,
                period_ns: nanos(period),
            });
        }
        Ok(RetentionPolicy {
            default_ns: nanos(limits.retention_period),
            rules,
        })
    }

    /// Returns the retention period of a stream in ns (0: forever).
    /// `label` returns a label's value, `None` when absent.
    pub(crate) fn period_for<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> i64 {
        let mut chosen: Option<&Rule> = None;
        for rule in &self.rules {
            let matches = rule
                .matchers
                .iter()
                .all(|matcher| matcher.matches(label(&matcher.name).unwrap_or("")));
            if !matches {
                continue;
            }
            let better = match chosen {
                None => true,
                Some(current) => {
                    rule.priority > current.priority
                        || (rule.priority == current.priority && rule.period_ns < current.period_ns)
                }
            };
            if better {
                chosen = Some(rule);
            }
        }
        chosen.map_or(self.default_ns, |rule| rule.period_ns)
    }

    /// Returns whether a chunk whose newest entry is at `through_ns` is
    /// past a retention period of `period_ns` at `now_ns`.
    pub(crate) fn is_expired(period_ns: i64, through_ns: i64, now_ns: i64) -> bool {
        period_ns > 0 && now_ns.saturating_sub(through_ns) > period_ns
    }

    /// Returns the shortest period any stream of the tenant can have, or
    /// `None` when everything is kept forever: data newer than
    /// `now - shortest` cannot have expired.
    pub(crate) fn shortest_period(&self) -> Option<i64> {
        self.rules
            .iter()
            .map(|rule| rule.period_ns)
            .chain(std::iter::once(self.default_ns))
            .filter(|period| *period > 0)
            .min()
    }
}

/// Checks the retention rules of a `limits_config` (selectors parse,
/// per-stream periods are at least 24h), for startup validation. Messages
/// name the key.
pub fn validate_limits(limits: &LimitsConfig) -> Result<(), String> {
    RetentionPolicy::compile(limits).map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use sluice_common::{RetentionOverride, StreamRetention};

    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

    fn period(policy: &RetentionPolicy, labels: &[(&str, &str)]) -> i64 {
        let map: HashMap<&str, &str> = labels.iter().copied().collect();
        policy.period_for(|name| map.get(name).copied())
    }

    /// The design notes' table, written in both accepted forms.
    fn design_notes_limits() -> LimitsConfig {
        LimitsConfig {
            retention_period: 720 * HOUR,
            retention_overrides: vec![
                RetentionOverride {
                    selector: r#"{tier="debug"}"#.into(),
                    retention: 72 * HOUR,
                },
                RetentionOverride {
                    selector: r#"{tier="prod"}"#.into(),
                    retention: 720 * HOUR,
                },
                RetentionOverride {
                    selector: r#"{service="agents"}"#.into(),
                    retention: 1440 * HOUR,
                },
            ],
            retention_stream: vec![
                StreamRetention {
                    selector: r#"{service="sigmavault"}"#.into(),
                    priority: 0,
                    period: 60 * 24 * HOUR,
                },
                StreamRetention {
                    selector: r#"{service="sigmalang"}"#.into(),
                    priority: 0,
                    period: 14 * 24 * HOUR,
                },
                StreamRetention {
                    selector: r#"{service="ryot"}"#.into(),
                    priority: 0,
                    period: 30 * 24 * HOUR,
                },
            ],
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn design_notes_table() {
        let policy = RetentionPolicy::compile(&design_notes_limits()).unwrap();
        assert_eq!(period(&policy, &[("tier", "debug")]), 3 * DAY_NS);
        assert_eq!(period(&policy, &[("tier", "prod")]), 30 * DAY_NS);
        assert_eq!(period(&policy, &[("service", "agents")]), 60 * DAY_NS);
        assert_eq!(period(&policy, &[("service", "sigmavault")]), 60 * DAY_NS);
        assert_eq!(period(&policy, &[("service", "sigmalang")]), 14 * DAY_NS);
        assert_eq!(period(&policy, &[("service", "ryot")]), 30 * DAY_NS);
        assert_eq!(period(&policy, &[("service", "other")]), 30 * DAY_NS);
        // Two priority-0 rules match: the shorter period wins.
        assert_eq!(
            period(&policy, &[("service", "agents"), ("tier", "debug")]),
            3 * DAY_NS
        );
        assert_eq!(policy.shortest_period(), Some(3 * DAY_NS));
    }

    #[test]
    fn priority_then_shortest() {
        let limits = LimitsConfig {
            retention_period: 744 * HOUR,
            retention_stream: vec![
                StreamRetention {
                    selector: r#"{namespace="prod"}"#.into(),
                    priority: 2,
                    period: 336 * HOUR,
                },
                StreamRetention {
                    selector: r#"{container="loki"}"#.into(),
                    priority: 1,
                    period: 72 * HOUR,
                },
                StreamRetention {
                    selector: r#"{container=~"lo.*"}"#.into(),
                    priority: 1,
                    period: 48 * HOUR,
                },
            ],
            ..LimitsConfig::default()
        };
        let policy = RetentionPolicy::compile(&limits).unwrap();
        assert_eq!(
            period(&policy, &[("namespace", "prod"), ("container", "loki")]),
            14 * DAY_NS
        );
        assert_eq!(period(&policy, &[("container", "loki")]), 2 * DAY_NS);
        assert_eq!(period(&policy, &[("namespace", "dev")]), 31 * DAY_NS);
    }

    #[test]
    fn forever_and_expiry() {
        let policy = RetentionPolicy::compile(&LimitsConfig::default()).unwrap();
        assert_eq!(period(&policy, &[("a", "b")]), 0);
        assert_eq!(policy.shortest_period(), None);
        assert!(!RetentionPolicy::is_expired(0, 0, i64::MAX));
        assert!(!RetentionPolicy::is_expired(10, 100, 110));
        assert!(RetentionPolicy::is_expired(10, 100, 111));
    }

    #[test]
    fn invalid_rules_name_the_key() {
        let mut limits = design_notes_limits();
        limits.retention_overrides[1].selector = "{tier=prod}".into();
        let err = validate_limits(&limits).unwrap_err();
        assert!(
            err.starts_with(
                "limits_config.retention_overrides[1].selector: invalid labels matchers"
            ),
            "{err}"
        );
        let mut limits = design_notes_limits();
        limits.retention_stream[2].period = 5 * HOUR;
        let err = validate_limits(&limits).unwrap_err();
        assert_eq!(
            err,
            "limits_config.retention_stream[2].period: retention period must be >= 24h was 5h0m0s"
        );
    }
}
