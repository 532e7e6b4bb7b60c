//! Multi-tenant reads (`X-Scope-OrgID: a|b`, with
//! `querier.multi_tenant_queries_enabled`), as Loki answers them: every
//! result stream and series carries a `__tenant_id__` label naming its
//! tenant; matchers on `__tenant_id__` in a selector pick the tenants and
//! are removed before the data is read; label names include
//! `__tenant_id__`, whose values are the tenants. A request naming one
//! tenant is answered exactly as a single-tenant one.

use sluice_common::{HttpError, TenantId};
use sluice_logql::{LogExpr, Matcher};

/// The label naming a result's tenant.
pub(crate) const TENANT_LABEL: &str = "__tenant_id__";

/// The tenants a request reads.
#[derive(Debug, Clone)]
pub(crate) struct Tenants(Vec<TenantId>);

impl Tenants {
    /// `tenants` is non-empty, sorted and free of duplicates.
    pub(crate) fn new(tenants: Vec<TenantId>) -> Tenants {
        debug_assert!(!tenants.is_empty());
        Tenants(tenants)
    }

    /// Returns whether results must be labelled with their tenant.
    pub(crate) fn is_multi(&self) -> bool {
        self.0.len() > 1
    }

    /// Returns the one tenant of an endpoint that reads a single tenant
    /// (live tail, volume), or Loki's error when several were named.
    pub(crate) fn single(&self) -> Result<&TenantId, HttpError> {
        match self.0.as_slice() {
            [tenant] => Ok(tenant),
            _ => Err(sluice_common::TenantError::Multiple.into()),
        }
    }

    /// Returns every tenant.
    pub(crate) fn all(&self) -> &[TenantId] {
        &self.0
    }

    /// Splits a selector into the tenants its `__tenant_id__` matchers
    /// pick and its other matchers. With one tenant nothing is split (the
    /// label does not exist there, as in Loki).
    pub(crate) fn select<'a>(&'a self, matchers: &[Matcher]) -> (Vec<&'a TenantId>, Vec<Matcher>) {
        if !self.is_multi() {
            return (self.0.iter().collect(), matchers.to_vec());
        }
        let (on_tenant, rest): (Vec<Matcher>, Vec<Matcher>) = matchers
            .iter()
            .cloned()
            .partition(|matcher| matcher.name == TENANT_LABEL);
        let picked = self
            .0
            .iter()
            .filter(|tenant| {
                on_tenant
                    .iter()
                    .all(|matcher| matcher.matches(tenant.as_str()))
            })
            .collect();
        (picked, rest)
    }

    /// [`Tenants::select`] for a log expression: the expression without
    /// its `__tenant_id__` matchers, which must leave a selector.
    pub(crate) fn select_log<'a>(
        &'a self,
        log: &LogExpr,
    ) -> Result<(Vec<&'a TenantId>, LogExpr), HttpError> {
        let (picked, matchers) = self.select(&log.matchers);
        if matchers.is_empty() {
            return Err(HttpError::bad_request(format!(
                "parse error : queries require at least one matcher besides {TENANT_LABEL}"
            )));
        }
        Ok((
            picked,
            LogExpr {
                matchers,
                pipeline: log.pipeline.clone(),
            },
        ))
    }
}

/// Adds `__tenant_id__` to sorted label pairs, keeping them sorted.
pub(crate) fn add_tenant_label(pairs: &mut Vec<(String, String)>, tenant: &TenantId) {
    let position = pairs
        .binary_search_by(|(name, _)| name.as_str().cmp(TENANT_LABEL))
        .unwrap_or_else(|position| position);
    if pairs
        .get(position)
        .is_some_and(|(name, _)| name == TENANT_LABEL)
    {
        pairs[position].1 = tenant.to_string();
    } else {
        pairs.insert(position, (TENANT_LABEL.to_string(), tenant.to_string()));
    }
}

/// Renders matchers back into a selector string.
pub(crate) fn selector_text(matchers: &[Matcher]) -> String {
    LogExpr {
        matchers: matchers.to_vec(),
        pipeline: Vec::new(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(ids: &[&str]) -> Tenants {
        Tenants::new(ids.iter().map(|id| TenantId::new(id).unwrap()).collect())
    }

    #[test]
    fn tenant_matchers_pick_tenants_and_disappear() {
        let all = tenants(&["a", "b", "c"]);
        let selector = sluice_logql::parse_selector(r#"{job="x", __tenant_id__=~"a|c"}"#).unwrap();
        let (picked, rest) = all.select(&selector);
        assert_eq!(
            picked
                .iter()
                .map(|tenant| tenant.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert_eq!(selector_text(&rest), r#"{job="x"}"#);
        let only = tenants(&["a"]);
        let (picked, rest) = only.select(&selector);
        assert_eq!(picked.len(), 1);
        assert_eq!(rest.len(), 2, "one tenant: nothing is special");
    }

    #[test]
    fn tenant_label_is_inserted_in_order() {
        let mut pairs = vec![
            ("a".to_string(), "1".to_string()),
            ("job".to_string(), "x".to_string()),
        ];
        add_tenant_label(&mut pairs, &TenantId::new("t1").unwrap());
        assert_eq!(
            pairs
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>(),
            ["__tenant_id__", "a", "job"]
        );
        add_tenant_label(&mut pairs, &TenantId::new("t2").unwrap());
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[0].1, "t2");
    }
}
