//! The ruler's metrics, with Loki 3's names (`loki_prometheus_*` for what
//! Prometheus' rule manager and notifier export, `loki_ruler_*` for the
//! ruler's own). Per-group series carry `user` and `rule_group`
//! (`<namespace>;<group>`) and disappear when the group stops here.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `user` and `rule_group`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct GroupLabels {
    /// The tenant.
    pub user: String,
    /// `<namespace>;<group>`.
    pub rule_group: String,
}

/// `user`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct UserLabel {
    /// The tenant.
    pub user: String,
}

/// `client` (a remote-write destination).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ClientLabel {
    /// The client's name.
    pub client: String,
}

/// `reason` of a rule sync.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `initial`, `periodic`, `ring-change` or `api`.
    pub reason: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the ruler.
#[derive(Debug, Clone, Default)]
pub struct RulerMetrics {
    pub(crate) evaluations: Family<GroupLabels, Counter>,
    pub(crate) evaluation_failures: Family<GroupLabels, Counter>,
    pub(crate) iterations: Family<GroupLabels, Counter>,
    pub(crate) iterations_missed: Family<GroupLabels, Counter>,
    pub(crate) last_evaluation: Family<GroupLabels, FloatGauge>,
    pub(crate) last_duration: Family<GroupLabels, FloatGauge>,
    pub(crate) group_rules: Family<GroupLabels, Gauge>,
    pub(crate) group_interval: Family<GroupLabels, FloatGauge>,
    pub(crate) last_evaluation_samples: Family<GroupLabels, Gauge>,
    notifications_sent: Family<UserLabel, Counter>,
    notifications_errors: Family<UserLabel, Counter>,
    notifications_dropped: Family<UserLabel, Counter>,
    pub(crate) notification_queue_length: Gauge,
    pub(crate) alertmanagers_discovered: Gauge,
    pub(crate) config_reload_ok: Family<UserLabel, Gauge>,
    pub(crate) syncs: Family<ReasonLabel, Counter>,
    pub(crate) ring_check_errors: Counter,
    pub(crate) samples_appended: Counter,
    pub(crate) samples_sent: Family<ClientLabel, Counter>,
    pub(crate) samples_failed: Family<ClientLabel, Counter>,
    pub(crate) send_retries: Family<ClientLabel, Counter>,
    pub(crate) pending_samples: Gauge,
    pub(crate) samples_dropped_too_old: Counter,
}

impl RulerMetrics {
    /// Creates the metrics and registers them into `registry`.
    pub fn new(registry: &mut Registry) -> RulerMetrics {
        let metrics = RulerMetrics::default();
        registry.register(
            "loki_prometheus_rule_evaluations",
            "The total number of rule evaluations.",
            metrics.evaluations.clone(),
        );
        registry.register(
            "loki_prometheus_rule_evaluation_failures",
            "The total number of rule evaluation failures.",
            metrics.evaluation_failures.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_iterations",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            metrics.iterations.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            metrics.iterations_missed.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_last_evaluation_timestamp_seconds",
            "The timestamp of the last rule group evaluation in seconds.",
            metrics.last_evaluation.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            metrics.last_duration.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_rules",
            "The number of rules.",
            metrics.group_rules.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_interval_seconds",
            "The interval of a rule group.",
            metrics.group_interval.clone(),
        );
        registry.register(
            "loki_prometheus_rule_group_last_evaluation_samples",
            "The number of samples returned during the last rule group evaluation.",
            metrics.last_evaluation_samples.clone(),
        );
        registry.register(
            "loki_prometheus_notifications_sent",
            "Total number of alerts sent.",
            metrics.notifications_sent.clone(),
        );
        registry.register(
            "loki_prometheus_notifications_errors",
            "Total number of errors sending alert notifications.",
            metrics.notifications_errors.clone(),
        );
        registry.register(
            "loki_prometheus_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            metrics.notifications_dropped.clone(),
        );
        registry.register(
            "loki_prometheus_notifications_queue_length",
            "The number of alert notifications in the queue.",
            metrics.notification_queue_length.clone(),
        );
        registry.register(
            "loki_prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            metrics.alertmanagers_discovered.clone(),
        );
        registry.register(
            "loki_ruler_config_last_reload_successful",
            "Whether the last load of the tenant's rules succeeded.",
            metrics.config_reload_ok.clone(),
        );
        registry.register(
            "loki_ruler_sync_rules",
            "Total number of times the ruler sync operation triggered.",
            metrics.syncs.clone(),
        );
        registry.register(
            "loki_ruler_ring_check_errors",
            "Number of errors that have occurred when checking the ring for ownership.",
            metrics.ring_check_errors.clone(),
        );
        registry.register(
            "loki_ruler_wal_samples_appended",
            "Samples of recording rules appended to the ruler WAL.",
            metrics.samples_appended.clone(),
        );
        registry.register(
            "loki_ruler_remote_write_samples_sent",
            "Samples acknowledged by a remote-write client's receiver.",
            metrics.samples_sent.clone(),
        );
        registry.register(
            "loki_ruler_remote_write_samples_failed",
            "Samples a receiver refused for good (4xx).",
            metrics.samples_failed.clone(),
        );
        registry.register(
            "loki_ruler_remote_write_retries",
            "Remote-write requests retried after a recoverable failure.",
            metrics.send_retries.clone(),
        );
        registry.register(
            "loki_ruler_remote_write_pending_samples",
            "Samples in the WAL not yet acknowledged by every client.",
            metrics.pending_samples.clone(),
        );
        registry.register(
            "loki_ruler_remote_write_samples_dropped_too_old",
            "Unsent samples dropped for being older than ruler.wal.max_age.",
            metrics.samples_dropped_too_old.clone(),
        );
        metrics
    }

    pub(crate) fn notifications_sent(&self, tenant: &str) -> Counter {
        self.notifications_sent.get_or_create(&user(tenant)).clone()
    }

    pub(crate) fn notifications_errors(&self, tenant: &str) -> Counter {
        self.notifications_errors
            .get_or_create(&user(tenant))
            .clone()
    }

    pub(crate) fn notifications_dropped(&self, tenant: &str) -> Counter {
        self.notifications_dropped
            .get_or_create(&user(tenant))
            .clone()
    }

    /// Removes a stopped group's series.
    pub(crate) fn forget_group(&self, labels: &GroupLabels) {
        self.evaluations.remove(labels);
        self.evaluation_failures.remove(labels);
        self.iterations.remove(labels);
        self.iterations_missed.remove(labels);
        self.last_evaluation.remove(labels);
        self.last_duration.remove(labels);
        self.group_rules.remove(labels);
        self.group_interval.remove(labels);
        self.last_evaluation_samples.remove(labels);
    }
}

fn user(tenant: &str) -> UserLabel {
    UserLabel {
        user: tenant.to_string(),
    }
}
