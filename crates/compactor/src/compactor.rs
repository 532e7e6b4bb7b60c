//! The compactor service: one run per `compaction_interval` while this
//! instance holds the lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use sluice_storage::{ChunkStore, ObjectStorage, Table};
use tokio_util::sync::CancellationToken;

use crate::clock::{nanos, Clock};
use crate::config::CompactorConfig;
use crate::delete_requests::{CompiledRequest, DeleteRequestStatus, DeleteRequestStore};
use crate::error::CompactorError;
use crate::lease::Lease;
use crate::limits::TenantLimits;
use crate::markers::Markers;
use crate::metrics::{CauseLabel, CompactorMetrics, StatusLabel, TableLabel};
use crate::retention::RetentionPolicy;
use crate::table::{compact_table, RewriteCache, RunContext, TableOutcome, TenantWork};

/// How long a lease lasts without renewal (Loki's ring heartbeat timeout).
const LEASE_TTL: Duration = Duration::from_secs(60);
/// Longest wait added after the cancel period before a request is
/// processed, so a cancellation racing with the start of processing wins.
const CANCEL_SLACK: Duration = Duration::from_secs(60);
const NS_PER_MS: i64 = 1_000_000;

/// What the compactor works on.
pub struct CompactorDeps {
    /// Chunks and index files, per schema period.
    pub store: Arc<ChunkStore>,
    /// Where the lease, marks and delete requests live.
    pub control: ObjectStorage,
    /// Retention and deletion settings per tenant.
    pub limits: Arc<dyn TenantLimits>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Names this instance in the lease (host and port, say); a per-process
    /// suffix is added.
    pub instance_id: String,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Whether this instance held the lease (nothing is done otherwise).
    pub lease_held: bool,
    /// (table, tenant) pairs examined.
    pub tables: usize,
    /// (table, tenant) pairs whose files were replaced.
    pub tables_compacted: usize,
    /// Index files merged away.
    pub files_merged: usize,
    /// Chunks dropped by retention.
    pub chunks_expired: usize,
    /// Chunks dropped or rewritten by delete requests.
    pub chunks_deleted: usize,
    /// New chunks written for partly deleted chunks.
    pub chunks_rewritten: usize,
    /// Chunks marked for deletion.
    pub chunks_marked: usize,
    /// Chunk objects deleted by the sweeper.
    pub chunks_swept: usize,
    /// Delete requests marked processed.
    pub delete_requests_processed: usize,
    /// Lines removed from rewritten or dropped chunks by delete requests.
    pub lines_deleted: u64,
    /// (table, tenant) pairs that failed (retried next run).
    pub failures: usize,
}

/// The compactor.
pub struct Compactor {
    config: CompactorConfig,
    store: Arc<ChunkStore>,
    limits: Arc<dyn TenantLimits>,
    clock: Arc<dyn Clock>,
    lease: Lease,
    markers: Markers,
    delete_requests: Arc<DeleteRequestStore>,
    pub(crate) metrics: CompactorMetrics,
    run_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("config", &self.config)
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl Compactor {
    /// Creates the compactor, registering its metrics.
    pub fn new(
        config: CompactorConfig,
        deps: CompactorDeps,
        registry: &mut Registry,
    ) -> Result<Arc<Compactor>, CompactorError> {
        config.validate().map_err(CompactorError::Config)?;
        let holder = format!(
            "{}-{}-{}",
            deps.instance_id,
            std::process::id(),
            sluice_common::time::now_nanos()
        );
        Ok(Arc::new(Compactor {
            lease: Lease::new(deps.control.clone(), holder, nanos(LEASE_TTL)),
            markers: Markers::new(deps.control.clone(), Arc::clone(&deps.store)),
            delete_requests: Arc::new(DeleteRequestStore::new(deps.control)),
            metrics: CompactorMetrics::new(registry),
            store: deps.store,
            limits: deps.limits,
            clock: deps.clock,
            config,
            run_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// Returns the delete requests this compactor processes (queriers in
    /// the same process read them to hide deleted lines).
    pub fn delete_requests(&self) -> Arc<DeleteRequestStore> {
        Arc::clone(&self.delete_requests)
    }

    pub(crate) fn config(&self) -> &CompactorConfig {
        &self.config
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub(crate) fn limits(&self) -> &dyn TenantLimits {
        self.limits.as_ref()
    }

    /// Runs compactions every `compaction_interval` (the first at once)
    /// until `shutdown`, then gives the lease up. Stopping mid-run is safe:
    /// the next run finishes the job.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.compaction_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.run_once() => {
                    if let Err(err) = result {
                        tracing::error!(error = %err, "compaction run failed");
                    }
                }
            }
        }
        self.lease.release().await;
        self.metrics.running.set(0);
        tracing::info!("compactor stopped");
    }

    /// Runs one compaction pass now if this instance holds (or can take)
    /// the lease: every table and tenant is compacted, retention and due
    /// delete requests applied, and marks past the delay swept.
    pub async fn run_once(&self) -> Result<RunReport, CompactorError> {
        let _one_at_a_time = self.run_lock.lock().await;
        let started = Instant::now();
        let now_ns = self.clock.now_ns();
        if !self.lease.ensure(now_ns).await? {
            self.metrics.running.set(0);
            tracing::debug!("another compactor holds the lease");
            return Ok(RunReport::default());
        }
        self.metrics.running.set(1);
        tracing::info!("compaction run started");
        let result = self.run_held(now_ns).await;
        let elapsed = started.elapsed().as_secs_f64();
        let succeeded = matches!(&result, Ok(report) if report.failures == 0);
        let status = if succeeded { "success" } else { "failure" };
        self.metrics
            .compact_operations
            .get_or_create(&StatusLabel { status })
            .inc();
        self.metrics.compact_duration_seconds.set(elapsed);
        if self.config.retention_enabled {
            self.metrics
                .retention_operations
                .get_or_create(&StatusLabel { status })
                .inc();
            self.metrics.retention_duration_seconds.set(elapsed);
        }
        if succeeded {
            let finished = self.clock.now_ns() as f64 / 1e9;
            self.metrics.compact_last_success.set(finished);
            if self.config.retention_enabled {
                self.metrics.retention_last_success.set(finished);
            }
        }
        match &result {
            Ok(report) => tracing::info!(
                duration_seconds = elapsed,
                tables = report.tables,
                tables_compacted = report.tables_compacted,
                files_merged = report.files_merged,
                chunks_expired = report.chunks_expired,
                chunks_deleted = report.chunks_deleted,
                chunks_rewritten = report.chunks_rewritten,
                chunks_marked = report.chunks_marked,
                chunks_swept = report.chunks_swept,
                delete_requests_processed = report.delete_requests_processed,
                failures = report.failures,
                "compaction run finished"
            ),
            Err(CompactorError::LeaseLost) => {
                self.metrics.running.set(0);
                tracing::warn!("compaction run stopped: the lease was lost");
            }
            Err(_) => {}
        }
        result
    }

    async fn run_held(&self, now_ns: i64) -> Result<RunReport, CompactorError> {
        let mut report = RunReport {
            lease_held: true,
            ..RunReport::default()
        };
        let deletes = if self.config.retention_enabled {
            self.load_due_deletes(now_ns).await
        } else {
            HashMap::new()
        };

        // Every (table, tenant), newest table first.
        let mut tables = self.store.list_tables().await?;
        tables.reverse();
        let mut jobs: Vec<(Table, String)> = Vec::new();
        for table in tables {
            for tenant in self.store.list_tenants(table).await? {
                jobs.push((table, tenant));
            }
        }
        let mut policies: HashMap<String, Option<RetentionPolicy>> = HashMap::new();
        let mut failed_tenants: Vec<String> = Vec::new();
        if self.config.retention_enabled {
            for (_, tenant) in &jobs {
                if policies.contains_key(tenant) {
                    continue;
                }
                match RetentionPolicy::compile(&self.limits.limits_for(tenant)) {
                    Ok(policy) => {
                        policies.insert(tenant.clone(), Some(policy));
                    }
                    Err(err) => {
                        // Never guess retention: leave the tenant alone.
                        tracing::error!(%tenant, error = %err, "invalid retention settings; tenant skipped");
                        failed_tenants.push(tenant.clone());
                        policies.insert(tenant.clone(), None);
                    }
                }
            }
        }
        jobs.retain(|(_, tenant)| !failed_tenants.contains(tenant));
        report.failures += failed_tenants.len();

        let rewrites: RewriteCache = Mutex::new(HashMap::new());
        let context = RunContext {
            store: &self.store,
            markers: &self.markers,
            lease: &self.lease,
            clock: self.clock.as_ref(),
            now_ns,
            rewrites: &rewrites,
        };
        let no_deletes: Vec<CompiledRequest> = Vec::new();
        let results: Vec<(Table, String, Result<TableOutcome, CompactorError>)> =
            futures::stream::iter(jobs)
                .map(|(table, tenant)| {
                    let context = &context;
                    let work = TenantWork {
                        retention: policies.get(&tenant).and_then(Option::as_ref),
                        deletes: deletes.get(&tenant).unwrap_or(&no_deletes),
                    };
                    async move {
                        let result = compact_table(context, &work, table, &tenant).await;
                        (table, tenant, result)
                    }
                })
                .buffer_unordered(self.config.max_compaction_parallelism)
                .collect()
                .await;

        let mut deleted_lines: HashMap<String, u64> = HashMap::new();
        for (table, tenant, result) in results {
            report.tables += 1;
            match result {
                Ok(outcome) => {
                    if outcome.compacted {
                        report.tables_compacted += 1;
                        report.files_merged += outcome.files_before;
                    }
                    report.chunks_expired += outcome.chunks_expired;
                    report.chunks_deleted += outcome.chunks_deleted;
                    report.chunks_rewritten += outcome.chunks_rewritten;
                    report.chunks_marked += outcome.chunks_marked;
                    if outcome.chunks_marked > 0 {
                        self.metrics
                            .marks_created
                            .get_or_create(&TableLabel {
                                table: self.store.table_name(table),
                            })
                            .inc_by(outcome.chunks_marked as u64);
                    }
                    for (request_id, lines) in outcome.deleted_lines {
                        *deleted_lines.entry(request_id).or_default() += lines;
                    }
                }
                Err(CompactorError::LeaseLost) => return Err(CompactorError::LeaseLost),
                Err(err) => {
                    report.failures += 1;
                    tracing::error!(
                        table = %self.store.table_name(table),
                        %tenant,
                        error = %err,
                        "table compaction failed; retried next run"
                    );
                    if !failed_tenants.contains(&tenant) {
                        failed_tenants.push(tenant);
                    }
                }
            }
        }

        // Requests are done once every table of their tenant succeeded.
        for (tenant, requests) in &deletes {
            if failed_tenants.contains(tenant) {
                self.metrics
                    .delete_processing_failures
                    .get_or_create(&CauseLabel { cause: "error" })
                    .inc();
                continue;
            }
            self.lease.check(self.clock.now_ns()).await?;
            let mut tenant_lines = 0;
            for compiled in requests {
                let lines = deleted_lines
                    .get(&compiled.request.request_id)
                    .copied()
                    .unwrap_or(0);
                self.delete_requests
                    .mark_processed(&compiled.request, self.clock.now_ns() / NS_PER_MS, lines)
                    .await?;
                tenant_lines += lines;
                report.delete_requests_processed += 1;
                self.metrics
                    .delete_requests_processed
                    .get_or_create(&CompactorMetrics::user(tenant))
                    .inc();
                tracing::info!(
                    %tenant,
                    request_id = %compiled.request.request_id,
                    deleted_lines = lines,
                    "delete request processed"
                );
            }
            report.lines_deleted += tenant_lines;
            self.metrics
                .deleted_lines
                .get_or_create(&CompactorMetrics::user(tenant))
                .inc_by(i64::try_from(tenant_lines).unwrap_or(i64::MAX));
        }

        // Delete the chunks whose delay has passed.
        let sweep = self
            .markers
            .sweep(
                nanos(self.config.retention_delete_delay),
                self.clock.now_ns(),
                self.config.retention_delete_worker_count,
                &self.metrics,
                || self.lease.check(self.clock.now_ns()),
            )
            .await?;
        report.chunks_swept = sweep.chunks_deleted;
        Ok(report)
    }

    /// Loads the requests due for processing, by tenant: received, past
    /// their cancel period, from tenants whose deletion mode removes lines
    /// from storage; at most `delete_batch_size`, oldest first.
    async fn load_due_deletes(&self, now_ns: i64) -> HashMap<String, Vec<CompiledRequest>> {
        let all = match self.delete_requests.list_all().await {
            Ok(all) => {
                self.metrics
                    .load_pending_requests
                    .get_or_create(&StatusLabel { status: "success" })
                    .inc();
                all
            }
            Err(err) => {
                self.metrics
                    .load_pending_requests
                    .get_or_create(&StatusLabel { status: "failure" })
                    .inc();
                tracing::error!(error = %err, "cannot load delete requests; none processed this run");
                return HashMap::new();
            }
        };
        let cancel_period = self.config.delete_request_cancel_period;
        let wait_ms = nanos(cancel_period + CANCEL_SLACK.min(cancel_period)) / NS_PER_MS;
        let now_ms = now_ns / NS_PER_MS;
        let mut due: Vec<_> = all
            .into_iter()
            .filter(|request| request.status == DeleteRequestStatus::Received)
            .filter(|request| request.created_ms.saturating_add(wait_ms) <= now_ms)
            .filter(|request| {
                self.limits
                    .limits_for(&request.tenant)
                    .deletion_mode
                    .deletes_from_storage()
            })
            .collect();
        due.sort_by_key(|request| request.created_ms);
        self.metrics.pending_delete_requests.set(due.len() as i64);
        let oldest_age_ms = due.first().map_or(0, |oldest| {
            now_ms.saturating_sub(
                oldest
                    .created_ms
                    .saturating_add(nanos(cancel_period) / NS_PER_MS),
            )
        });
        self.metrics
            .oldest_pending_delete_request_age
            .set(oldest_age_ms / 1000);
        let mut by_tenant: HashMap<String, Vec<CompiledRequest>> = HashMap::new();
        for request in due.into_iter().take(self.config.delete_batch_size) {
            let tenant = request.tenant.clone();
            let request_id = request.request_id.clone();
            match CompiledRequest::compile(request) {
                Ok(compiled) => by_tenant.entry(tenant).or_default().push(compiled),
                Err(err) => {
                    tracing::error!(%tenant, %request_id, error = %err, "stored delete request does not parse; skipped");
                }
            }
        }
        by_tenant
    }
}
