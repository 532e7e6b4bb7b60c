//! `schema_config`: which object store and index layout apply from which
//! day, as Loki's period configs. Reading a range that spans periods reads
//! each period with its own settings.

use serde::{Deserialize, Serialize};

use crate::error::StorageError;

const DAY_NANOS: i64 = 24 * 3600 * 1_000_000_000;

/// The list of schema periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemaConfig {
    /// Periods, oldest first.
    pub configs: Vec<PeriodEntry>,
}

/// One `schema_config.configs[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodEntry {
    /// First day (UTC, `YYYY-MM-DD`) this period applies to.
    pub from: String,
    /// Index kind. Loki's `tsdb` and `boltdb-shipper` are accepted and mean
    /// Sluice's own index format.
    pub store: String,
    /// Backend: `filesystem`, `s3` (or `aws`), `gcs`, `azure`.
    pub object_store: String,
    /// Schema version label (`v13` etc.; informational, Sluice's formats
    /// carry their own versions).
    pub schema: String,
    /// Index table settings.
    pub index: IndexConfig,
}

/// `schema_config.configs[].index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexConfig {
    /// Table name prefix (`index_`).
    pub prefix: String,
    /// Table period; Sluice supports `24h` (Loki's only supported value for
    /// shipper stores).
    #[serde(with = "sluice_common::server::humantime_serde_compat")]
    pub period: std::time::Duration,
}

impl Default for SchemaConfig {
    fn default() -> SchemaConfig {
        SchemaConfig {
            configs: vec![PeriodEntry::default()],
        }
    }
}

impl Default for PeriodEntry {
    fn default() -> PeriodEntry {
        PeriodEntry {
            from: "1970-01-01".to_string(),
            store: "tsdb".to_string(),
            object_store: "filesystem".to_string(),
            schema: "v13".to_string(),
            index: IndexConfig::default(),
        }
    }
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            prefix: "index_".to_string(),
            period: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

/// A validated period: start in ns, backend name, index prefix and period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedPeriod {
    pub(crate) from_ns: i64,
    pub(crate) object_store: String,
    pub(crate) prefix: String,
    pub(crate) period_ns: i64,
}

impl SchemaConfig {
    /// Checks every period; messages name the key.
    pub(crate) fn resolve(&self) -> Result<Vec<ResolvedPeriod>, StorageError> {
        if self.configs.is_empty() {
            return Err(StorageError::Config(
                "schema_config.configs: at least one period is required".to_string(),
            ));
        }
        let mut resolved: Vec<ResolvedPeriod> = Vec::with_capacity(self.configs.len());
        for (index, entry) in self.configs.iter().enumerate() {
            let key = format!("schema_config.configs[{index}]");
            let day = chrono::NaiveDate::parse_from_str(&entry.from, "%Y-%m-%d").map_err(|_| {
                StorageError::Config(format!(
                    "{key}.from: {:?} is not a YYYY-MM-DD date",
                    entry.from
                ))
            })?;
            let from_ns = day
                .and_hms_opt(0, 0, 0)
                .and_then(|time| time.and_utc().timestamp_nanos_opt())
                .ok_or_else(|| StorageError::Config(format!("{key}.from: out of range")))?;
            if let Some(previous) = resolved.last() {
                if from_ns <= previous.from_ns {
                    return Err(StorageError::Config(format!(
                        "{key}.from: periods must be in increasing order of `from`"
                    )));
                }
            }
            match entry.store.as_str() {
                "tsdb" | "boltdb-shipper" | "sluice" => {}
                other => {
                    return Err(StorageError::Config(format!(
                        "{key}.store: unsupported index store {other:?}; use tsdb"
                    )))
                }
            }
            let object_store = match entry.object_store.as_str() {
                "filesystem" => "filesystem",
                "s3" | "aws" => "s3",
                "gcs" => "gcs",
                "azure" => "azure",
                other => {
                    return Err(StorageError::Config(format!(
                        "{key}.object_store: unknown object store {other:?}; use filesystem, s3, gcs or azure"
                    )))
                }
            };
            let period_ns = i64::try_from(entry.index.period.as_nanos()).unwrap_or(i64::MAX);
            if period_ns != DAY_NANOS {
                return Err(StorageError::Config(format!(
                    "{key}.index.period: only 24h is supported"
                )));
            }
            resolved.push(ResolvedPeriod {
                from_ns,
                object_store: object_store.to_string(),
                prefix: entry.index.prefix.clone(),
                period_ns,
            });
        }
        Ok(resolved)
    }
}

/// Returns the periods (with their table numbers) that `[from, through)`
/// touches, oldest first.
pub(crate) fn tables_in_range(
    periods: &[ResolvedPeriod],
    from_ns: i64,
    through_ns: i64,
) -> Vec<(usize, i64)> {
    let mut tables = Vec::new();
    for (index, period) in periods.iter().enumerate() {
        let period_end = periods.get(index + 1).map_or(i64::MAX, |next| next.from_ns);
        let start = from_ns.max(period.from_ns);
        let end = through_ns.min(period_end);
        if start >= end {
            continue;
        }
        let first = start.div_euclid(period.period_ns);
        let last = (end - 1).div_euclid(period.period_ns);
        for table in first..=last {
            tables.push((index, table));
        }
    }
    tables
}

/// Returns the index of the period that covers `ts_ns`.
pub(crate) fn period_for(periods: &[ResolvedPeriod], ts_ns: i64) -> usize {
    periods
        .iter()
        .rposition(|period| period.from_ns <= ts_ns)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let periods = SchemaConfig::default().resolve().unwrap();
        assert_eq!(periods.len(), 1);
        assert_eq!(periods[0].object_store, "filesystem");
        assert_eq!(periods[0].period_ns, DAY_NANOS);
    }

    #[test]
    fn errors_name_the_key() {
        let mut config = SchemaConfig::default();
        config.configs[0].from = "yesterday".to_string();
        let err = config.resolve().unwrap_err().to_string();
        assert!(err.starts_with("schema_config.configs[0].from"), "{err}");
        let mut config = SchemaConfig::default();
        config.configs[0].object_store = "floppy".to_string();
        assert!(config
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("object_store"));
    }

    #[test]
    fn tables_cover_the_range_across_periods() {
        let config = SchemaConfig {
            configs: vec![
                PeriodEntry::default(),
                PeriodEntry {
                    from: "1970-01-03".to_string(),
                    object_store: "s3".to_string(),
                    ..PeriodEntry::default()
                },
            ],
        };
        let periods = config.resolve().unwrap();
        let tables = tables_in_range(&periods, DAY_NANOS / 2, 3 * DAY_NANOS + 1);
        assert_eq!(tables, vec![(0, 0), (0, 1), (1, 2), (1, 3)]);
        assert_eq!(period_for(&periods, DAY_NANOS), 0);
        assert_eq!(period_for(&periods, 2 * DAY_NANOS), 1);
    }
}
