//! Which modules a process runs (`-target`).

use std::fmt;

/// A module Sluice can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Module {
    Distributor,
    Ingester,
    Querier,
    Compactor,
}

impl Module {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Module::Distributor => "distributor",
            Module::Ingester => "ingester",
            Module::Querier => "querier",
            Module::Compactor => "compactor",
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
    /// querier and compactor. Until the ring exists the distributor reaches the
    /// ingester in process, so it needs it in the same process; a querier
    /// without an ingester reads the object store only.
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
                    Module::Compactor,
                ]),
                "distributor" => modules.push(Module::Distributor),
                "ingester" => modules.push(Module::Ingester),
                "querier" => modules.push(Module::Querier),
                "compactor" => modules.push(Module::Compactor),
                other => {
                    return Err(format!(
                        "unknown target {other:?}; available: all, distributor, ingester, querier, compactor"
                    ))
                }
            }
        }
        modules.sort();
        modules.dedup();
        if modules.is_empty() {
            return Err("no target given".to_string());
        }
        if modules.contains(&Module::Distributor) && !modules.contains(&Module::Ingester) {
            return Err(
                "the distributor currently reaches the ingester in process: run it with the ingester (e.g. -target=all)"
                    .to_string(),
            );
        }
        Ok(Targets { modules })
    }

    pub(crate) fn has(&self, module: Module) -> bool {
        self.modules.contains(&module)
    }

    pub(crate) fn modules(&self) -> &[Module] {
        &self.modules
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
                Module::Compactor
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
        assert!(Targets::parse("ruler")
            .unwrap_err()
            .contains("unknown target"));
        assert!(Targets::parse("").is_err());
        assert!(Targets::parse("distributor").is_err());
        assert!(Targets::parse("querier").unwrap().has(Module::Querier));
    }
}
