//! Query-time filtering of deleted lines (Loki's `filter-only` and
//! `filter-and-delete` modes): lines a delete request covers disappear from
//! query results as soon as the request is stored, before (or instead of)
//! the compactor removing them from storage, and whether they come from an
//! ingester or the store.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use sluice_chunk::Labels;
use sluice_common::HttpError;
use sluice_logql::{Expr, LineFilterChain, Matcher, Stage};

/// One delete request as queriers apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFilter {
    /// A stream selector with optional line filters.
    pub query: String,
    /// First covered timestamp, ns.
    pub start_ns: i64,
    /// Last covered timestamp, ns (inclusive).
    pub end_ns: i64,
}

/// Where a querier finds the delete requests of a tenant.
pub trait DeleteFilterSource: Send + Sync + fmt::Debug + 'static {
    /// Returns the requests whose lines must be hidden from the tenant's
    /// queries (none when deletion is disabled for the tenant).
    fn delete_filters<'a>(
        &'a self,
        tenant: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeleteFilter>, HttpError>>;
}

/// A delete filter ready to test streams and lines.
pub(crate) struct CompiledFilter {
    matchers: Vec<Matcher>,
    lines: LineFilterChain,
    start_ns: i64,
    end_ns: i64,
}

impl CompiledFilter {
    /// Compiles a filter; one whose query does not parse is skipped (the
    /// delete API validated it when it was stored).
    pub(crate) fn compile(filter: &DeleteFilter) -> Option<CompiledFilter> {
        match sluice_logql::parse_expr(&filter.query) {
            Ok(Expr::Log(log))
                if log
                    .pipeline
                    .iter()
                    .all(|stage| matches!(stage, Stage::LineFilter(_))) =>
            {
                Some(CompiledFilter {
                    lines: log.line_filters(),
                    matchers: log.matchers,
                    start_ns: filter.start_ns,
                    end_ns: filter.end_ns,
                })
            }
            _ => {
                tracing::warn!(query = %filter.query, "ignoring a delete request that does not parse");
                None
            }
        }
    }

    /// Returns whether the filter covers part of `[start, end)`.
    pub(crate) fn overlaps(&self, start_ns: i64, end_ns: i64) -> bool {
        self.start_ns < end_ns && self.end_ns >= start_ns
    }

    fn matches_stream(&self, labels: &Labels) -> bool {
        self.matchers
            .iter()
            .all(|matcher| matcher.matches(labels.get(&matcher.name).unwrap_or("")))
    }

    fn hides(&self, ts_ns: i64, line: &str) -> bool {
        ts_ns >= self.start_ns && ts_ns <= self.end_ns && self.lines.matches(line.as_bytes())
    }
}

/// Drops from one stream's entries the lines any filter hides.
pub(crate) fn apply(filters: &[CompiledFilter], labels: &Labels, entries: &mut Vec<(i64, String)>) {
    let applicable: Vec<&CompiledFilter> = filters
        .iter()
        .filter(|filter| filter.matches_stream(labels))
        .collect();
    if applicable.is_empty() {
        return;
    }
    entries.retain(|(ts_ns, line)| !applicable.iter().any(|filter| filter.hides(*ts_ns, line)));
}

/// A shared source of delete filters.
pub(crate) type SharedSource = Arc<dyn DeleteFilterSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_exactly_the_covered_lines() {
        let filter = CompiledFilter::compile(&DeleteFilter {
            query: r#"{job="app"} |= "secret""#.to_string(),
            start_ns: 10,
            end_ns: 20,
        })
        .unwrap();
        let app = Labels::parse(r#"{job="app"}"#).unwrap();
        let other = Labels::parse(r#"{job="other"}"#).unwrap();
        let entries = vec![
            (9, "secret".to_string()),
            (10, "secret".to_string()),
            (15, "public".to_string()),
            (20, "a secret".to_string()),
            (21, "secret".to_string()),
        ];
        let mut hidden = entries.clone();
        apply(std::slice::from_ref(&filter), &app, &mut hidden);
        assert_eq!(
            hidden,
            vec![
                (9, "secret".to_string()),
                (15, "public".to_string()),
                (21, "secret".to_string())
            ]
        );
        let mut untouched = entries.clone();
        apply(&[filter], &other, &mut untouched);
        assert_eq!(untouched, entries);
        assert!(CompiledFilter::compile(&DeleteFilter {
            query: "{job=".to_string(),
            start_ns: 0,
            end_ns: 1,
        })
        .is_none());
    }
}
