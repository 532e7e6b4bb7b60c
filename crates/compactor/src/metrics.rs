//! The compactor's metrics, with Loki's names.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A `status` label: `success` or `failure`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub(crate) status: &'static str,
}

/// A `user` (tenant) label, as Loki's deletion metrics name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct UserLabel {
    pub(crate) user: String,
}

/// A `table` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct TableLabel {
    pub(crate) table: String,
}

/// A `cause` label for failed delete processing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct CauseLabel {
    pub(crate) cause: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn chunk_delete_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 8))
}

/// Counters and gauges of one compactor.
#[derive(Debug, Clone)]
pub(crate) struct CompactorMetrics {
    pub(crate) compact_operations: Family<StatusLabel, Counter>,
    pub(crate) compact_duration_seconds: FloatGauge,
    pub(crate) compact_last_success: FloatGauge,
    pub(crate) running: Gauge,
    pub(crate) retention_operations: Family<StatusLabel, Counter>,
    pub(crate) retention_duration_seconds: FloatGauge,
    pub(crate) retention_last_success: FloatGauge,
    pub(crate) marks_created: Family<TableLabel, Counter>,
    pub(crate) chunk_delete_seconds: Family<StatusLabel, Histogram, fn() -> Histogram>,
    pub(crate) marker_files_current: Gauge,
    pub(crate) marker_file_current_time: FloatGauge,
    pub(crate) marker_files_deleted: Counter,
    pub(crate) delete_requests_received: Family<UserLabel, Counter>,
    pub(crate) delete_requests_processed: Family<UserLabel, Counter>,
    pub(crate) deleted_lines: Family<UserLabel, Gauge>,
    pub(crate) pending_delete_requests: Gauge,
    pub(crate) oldest_pending_delete_request_age: Gauge,
    pub(crate) load_pending_requests: Family<StatusLabel, Counter>,
    pub(crate) delete_processing_failures: Family<CauseLabel, Counter>,
}

impl CompactorMetrics {
    pub(crate) fn new(registry: &mut Registry) -> CompactorMetrics {
        let metrics = CompactorMetrics {
            compact_operations: Family::default(),
            compact_duration_seconds: FloatGauge::default(),
            compact_last_success: FloatGauge::default(),
            running: Gauge::default(),
            retention_operations: Family::default(),
            retention_duration_seconds: FloatGauge::default(),
            retention_last_success: FloatGauge::default(),
            marks_created: Family::default(),
            chunk_delete_seconds: Family::new_with_constructor(chunk_delete_histogram),
            marker_files_current: Gauge::default(),
            marker_file_current_time: FloatGauge::default(),
            marker_files_deleted: Counter::default(),
            delete_requests_received: Family::default(),
            delete_requests_processed: Family::default(),
            deleted_lines: Family::default(),
            pending_delete_requests: Gauge::default(),
            oldest_pending_delete_request_age: Gauge::default(),
            load_pending_requests: Family::default(),
            delete_processing_failures: Family::default(),
        };
        registry.register(
            "loki_boltdb_shipper_compact_tables_operation",
            "Total number of tables compaction done by status",
            metrics.compact_operations.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_compact_tables_operation_duration_seconds",
            "Time (in seconds) spent in compacting all the tables",
            metrics.compact_duration_seconds.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds",
            "Unix timestamp of the last successful compaction run",
            metrics.compact_last_success.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_compactor_running",
            "Value will be 1 if compactor is currently running on this instance",
            metrics.running.clone(),
        );
        registry.register(
            "loki_compactor_apply_retention_operation",
            "Total number of attempts done to apply retention with status",
            metrics.retention_operations.clone(),
        );
        registry.register(
            "loki_compactor_apply_retention_operation_duration_seconds",
            "Time (in seconds) spent in applying retention",
            metrics.retention_duration_seconds.clone(),
        );
        registry.register(
            "loki_compactor_apply_retention_last_successful_run_timestamp_seconds",
            "Unix timestamp of the last successful retention run",
            metrics.retention_last_success.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_retention_marker_count",
            "Total count of markers created per table.",
            metrics.marks_created.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_retention_sweeper_chunk_deleted_duration_seconds",
            "Time (in seconds) spent in deleting chunk",
            metrics.chunk_delete_seconds.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_retention_sweeper_marker_files_current",
            "The current total of marker files valid for deletion.",
            metrics.marker_files_current.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_retention_sweeper_marker_file_processing_current_time",
            "The current time of creation of the marker file being processed.",
            metrics.marker_file_current_time.clone(),
        );
        registry.register(
            "loki_boltdb_shipper_retention_sweeper_marker_files_deleted",
            "The total of marker files deleted after being fully processed.",
            metrics.marker_files_deleted.clone(),
        );
        registry.register(
            "loki_compactor_delete_requests_received",
            "Number of delete requests received per user",
            metrics.delete_requests_received.clone(),
        );
        registry.register(
            "loki_compactor_delete_requests_processed",
            "Number of delete requests processed per user",
            metrics.delete_requests_processed.clone(),
        );
        // Loki's counter is named without `_total`; a gauge that only goes
        // up keeps the exact name dashboards use.
        registry.register(
            "loki_compactor_deleted_lines",
            "Number of deleted lines per user",
            metrics.deleted_lines.clone(),
        );
        registry.register(
            "loki_compactor_pending_delete_requests_count",
            "Count of delete requests which are over their cancellation period and have not finished processing yet",
            metrics.pending_delete_requests.clone(),
        );
        registry.register(
            "loki_compactor_oldest_pending_delete_request_age_seconds",
            "Age of oldest pending delete request in seconds since they are over their cancellation period",
            metrics.oldest_pending_delete_request_age.clone(),
        );
        registry.register(
            "loki_compactor_load_pending_requests_attempts",
            "Number of attempts that were made to load pending requests with status",
            metrics.load_pending_requests.clone(),
        );
        registry.register(
            "loki_compactor_delete_processing_fails",
            "Number of times the delete phase of compaction has failed",
            metrics.delete_processing_failures.clone(),
        );
        metrics
    }

    pub(crate) fn observe_chunk_delete(&self, status: &'static str, elapsed: Duration) {
        self.chunk_delete_seconds
            .get_or_create(&StatusLabel { status })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn user(tenant: &str) -> UserLabel {
        UserLabel {
            user: tenant.to_string(),
        }
    }
}
