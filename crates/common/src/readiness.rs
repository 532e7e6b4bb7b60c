//! Module readiness behind `/ready`: every module registers itself at start
//! and reports ready once it can serve.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

/// Shared readiness state of the modules of one process.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    modules: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    /// Registers a module as starting.
    pub fn register(&self, module: &str) {
        self.modules.lock().insert(module.to_string(), false);
    }

    /// Marks a module as able to serve.
    pub fn set_ready(&self, module: &str) {
        self.modules.lock().insert(module.to_string(), true);
    }

    /// Marks a module as no longer serving (shutting down).
    pub fn set_not_ready(&self, module: &str) {
        self.modules.lock().insert(module.to_string(), false);
    }

    /// Returns `Ok` when every module is ready, else the message `/ready`
    /// answers with, naming the modules still starting.
    pub fn check(&self) -> Result<(), String> {
        let modules = self.modules.lock();
        let waiting: Vec<&str> = modules
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| name.as_str())
            .collect();
        if modules.is_empty() {
            return Err("no modules started yet".to_string());
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "Some services are not Running: {}",
                waiting.join(", ")
            ))
        }
    }

    /// Returns each module with its state, for `/services`.
    pub fn states(&self) -> Vec<(String, bool)> {
        self.modules
            .lock()
            .iter()
            .map(|(name, ready)| (name.clone(), *ready))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_all_modules_are() {
        let readiness = Readiness::default();
        assert!(readiness.check().is_err());
        readiness.register("ingester");
        readiness.register("distributor");
        readiness.set_ready("ingester");
        assert_eq!(
            readiness.check(),
            Err("Some services are not Running: distributor".to_string())
        );
        readiness.set_ready("distributor");
        assert_eq!(readiness.check(), Ok(()));
        readiness.set_not_ready("ingester");
        assert!(readiness.check().is_err());
    }
}
