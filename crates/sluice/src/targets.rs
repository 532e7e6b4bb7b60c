//! Which modules a process runs (`-target`).

use std::fmt;

/// A module Sluice can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Module {
    Distributor,
    Ingester,
    Querier,
    QueryFrontend,
    Compactor,
    Ruler,
}

impl Module {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Module::Distributor => "distributor",
            Module::Ingester => "ingester",
            Module::Querier => "querier",
            Module::QueryFrontend => "query-frontend",
            Module::Compactor => "compactor",
            Module::Ruler => "ruler",
        }
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of modules of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Targets {
    modules: Vec<Module>,
}

impl Targets {
    /// Parses a comma-separated target list. `all` is distributor, ingester,
    /// querier, query-frontend, compactor and ruler; any module may run alone,
    /// finding the others through the ring.
    pub(crate) fn parse(text: &str) -> Result<Targets, String> {
        let mut modules = Vec::new();
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            match name {
                "all" => modules.extend([
                    Module::Distributor,
                    Module::Ingester,
                    Module::Querier,
                    Module::QueryFrontend,
                    Module::Compactor,
                    Module::Ruler,
                ]),
                "distributor" => modules.push(Module::Distributor),
                "ingester" => modules.push(Module::Ingester),
                "querier" => modules.push(Module::Querier),
                "query-frontend" => modules.push(Module::QueryFrontend),
                "compactor" => modules.push(Module::Compactor),
                "ruler" => modules.push(Module::Ruler),
                other => {
                    return Err(format!(
                        "unknown target {other:?}; available: all, distributor, ingester, querier, query-frontend, compactor, ruler"
                    ))
                }
            }
        }
        modules.sort();
        modules.dedup();
        if modules.is_empty() {
            return Err("no target given".to_string());
        }
        Ok(Targets { modules })
    }

    pub(crate) fn has(&self, module: Module) -> bool {
        self.modules.contains(&module)
    }

    pub(crate) fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// Returns whether a module of this process uses the ingester ring
    /// (the ruler evaluates on a querier of its own).
    pub(crate) fn uses_ring(&self) -> bool {
        self.modules.iter().any(|module| {
            matches!(
                module,
                Module::Distributor | Module::Ingester | Module::Querier | Module::Ruler
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands() {
        let targets = Targets::parse("all").unwrap();
        assert_eq!(
            targets.modules(),
            &[
                Module::Distributor,
                Module::Ingester,
                Module::Querier,
                Module::QueryFrontend,
                Module::Compactor,
                Module::Ruler
            ]
        );
        assert_eq!(
            Targets::parse("compactor").unwrap().modules(),
            &[Module::Compactor]
        );
        assert!(Targets::parse("ingester").unwrap().has(Module::Ingester));
        assert!(Targets::parse("ingester, querier")
            .unwrap()
            .has(Module::Querier));
    }

    #[test]
    fn refuses_unknown_and_unsatisfiable() {
        assert!(Targets::parse("index-gateway")
            .unwrap_err()
            .contains("unknown target"));
        assert!(Targets::parse("").is_err());
        assert!(Targets::parse("distributor")
            .unwrap()
            .has(Module::Distributor));
        assert!(Targets::parse("querier").unwrap().has(Module::Querier));
    }
}
