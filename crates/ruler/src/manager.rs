//! The set of groups this ruler evaluates: started, replaced (keeping
//! alert state) and stopped as the wanted set changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::group::{Group, GroupDeps, GroupKey, GroupStatus};
use crate::rulefmt::RuleGroup;

struct Running {
    group: Arc<Group>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs groups.
pub struct Manager {
    deps: Arc<GroupDeps>,
    default_interval: Duration,
    running: Mutex<BTreeMap<GroupKey, Running>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("groups", &self.running.lock().len())
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager with no groups.
    pub fn new(deps: Arc<GroupDeps>, default_interval: Duration) -> Manager {
        Manager {
            deps,
            default_interval,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Makes the running groups exactly `wanted`: new ones start, changed
    /// ones restart with their alerts, missing ones stop.
    pub fn sync(&self, wanted: BTreeMap<GroupKey, RuleGroup>) {
        let mut running = self.running.lock();
        let gone: Vec<GroupKey> = running
            .keys()
            .filter(|key| !wanted.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(old) = running.remove(&key) {
                tracing::info!(tenant = %key.tenant, namespace = %key.namespace, group = %key.name, "rule group stopped");
                old.stop.cancel();
            }
        }
        for (key, definition) in wanted {
            if let Some(current) = running.get(&key) {
                if current.group.definition() == &definition {
                    continue;
                }
            }
            let previous = running.remove(&key);
            let group = Arc::new(Group::new(
                key.clone(),
                definition,
                self.default_interval,
                previous.as_ref().map(|old| old.group.as_ref()),
            ));
            if let Some(old) = previous {
                old.stop.cancel();
                // The old task must be gone before the new one registers the
                // same metric series; it stops at its next await point.
                old.task.abort();
            }
            tracing::info!(tenant = %key.tenant, namespace = %key.namespace, group = %key.name, "rule group started");
            let stop = CancellationToken::new();
            let task = tokio::spawn(Arc::clone(&group).run(Arc::clone(&self.deps), stop.clone()));
            running.insert(key, Running { group, stop, task });
        }
    }

    /// Snapshots of one tenant's groups, ordered by namespace and name.
    pub fn tenant_status(&self, tenant: &str) -> Vec<GroupStatus> {
        self.running
            .lock()
            .iter()
            .filter(|(key, _)| key.tenant == tenant)
            .map(|(_, running)| running.group.status())
            .collect()
    }

    /// The keys of the running groups.
    pub fn keys(&self) -> Vec<GroupKey> {
        self.running.lock().keys().cloned().collect()
    }

    /// Stops every group and waits for them.
    pub async fn stop(&self) {
        let stopped: Vec<Running> = {
            let mut running = self.running.lock();
            std::mem::take(&mut *running).into_values().collect()
        };
        for group in &stopped {
            group.stop.cancel();
        }
        for group in stopped {
            let _ = group.task.await;
        }
    }
}
