#!/usr/bin/env python3
"""Writes Sluice's Grafana dashboards (helm/sluice/dashboards/*.json).

The dashboards are generated so that every panel follows the same
conventions (Prometheus data source variable, namespace filter, units);
edit this file and run `python3 scripts/dashboards.py`, never the JSON.
`make chart-test` fails when the JSON is not what this script writes, and
`make test` checks that every metric the dashboards query exists on a
running Sluice's /metrics (integration-tests/tests/observability.rs).

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "helm" / "sluice" / "dashboards"

# Every selector is narrowed to the chosen namespaces ("All" matches any,
# including series without the label).
NS = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
# Matchers used inside f-strings (which cannot hold backslashes before 3.12).
S5XX = 'status_code=~"5.."'
S4XX = 'status_code=~"4.."'
NOT_OK = 'status_code!="200"'
INGESTER_RING = 'name="ingester"'

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def sel(metric: str, *matchers: str) -> str:
    """A selector of `metric` with the namespace filter and `matchers`."""
    return metric + "{" + ", ".join((NS,) + matchers) + "}"


def quantile(q: float, metric: str, by: str, *matchers: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(rate({sel(metric + '_bucket', *matchers)}[{RATE}])))"
    )


class Board:
    def __init__(self, uid: str, title: str, description: str, tags: list[str]):
        self.uid = uid
        self.title = title
        self.description = description
        self.tags = tags
        self.panels: list[dict] = []
        self.variables: list[dict] = [
            {
                "name": "datasource",
                "label": "Prometheus",
                "type": "datasource",
                "query": "prometheus",
                "current": {},
                "hide": 0,
            },
            {
                "name": "namespace",
                "label": "Namespace",
                "type": "query",
                "datasource": DATASOURCE,
                "query": {"query": "label_values(loki_build_info, namespace)", "refId": "namespace"},
                "definition": "label_values(loki_build_info, namespace)",
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {"text": "All", "value": "$__all"},
                "refresh": 2,
                "sort": 1,
                "hide": 0,
            },
        ]
        self._y = 0
        self._x = 0
        self._row_height = 0
        self._id = 0

    def variable(self, name: str, label: str, query: str) -> None:
        self.variables.append(
            {
                "name": name,
                "label": label,
                "type": "query",
                "datasource": DATASOURCE,
                "query": {"query": query, "refId": name},
                "definition": query,
                "includeAll": True,
                "allValue": ".*",
                "multi": True,
                "current": {"text": "All", "value": "$__all"},
                "refresh": 2,
                "sort": 1,
                "hide": 0,
            }
        )

    def row(self, title: str) -> None:
        self._newline()
        self._id += 1
        self.panels.append(
            {
                "id": self._id,
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_height
            self._x = 0
            self._row_height = 0

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        unit: str = "short",
        description: str = "",
        kind: str = "timeseries",
        width: int = 8,
        height: int = 8,
        stack: bool = False,
        thresholds: list[tuple[float, str]] | None = None,
    ) -> None:
        if self._x + width > 24:
            self._newline()
        self._id += 1
        defaults: dict = {"unit": unit}
        if kind == "timeseries":
            defaults["custom"] = {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 10 if stack else 0,
                "stacking": {"mode": "normal" if stack else "none", "group": "A"},
                "showPoints": "never",
            }
        if thresholds:
            defaults["thresholds"] = {
                "mode": "absolute",
                "steps": [{"color": "green", "value": None}]
                + [{"color": color, "value": value} for value, color in thresholds],
            }
            defaults["color"] = {"mode": "thresholds"}
        panel = {
            "id": self._id,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": height, "w": width, "x": self._x, "y": self._y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
            if kind == "timeseries"
            else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"},
            "targets": [
                {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + index)}
                for index, (expr, legend) in enumerate(targets)
            ],
        }
        self.panels.append(panel)
        self._x += width
        self._row_height = max(self._row_height, height)

    def json(self) -> dict:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["sluice"] + self.tags,
            "editable": True,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": 39,
            "time": {"from": "now-6h", "to": "now"},
            "timezone": "",
            "templating": {"list": self.variables},
            "annotations": {"list": []},
            "links": [
                {
                    "title": "Sluice dashboards",
                    "type": "dashboards",
                    "tags": ["sluice"],
                    "asDropdown": True,
                    "includeVars": True,
                    "keepTime": True,
                }
            ],
            "panels": self.panels,
        }


def writes() -> Board:
    b = Board("sluice-writes", "Sluice / Writes", "The push path: distributors, ingesters, WAL.", ["writes"])
    push = 'route=~"loki_api_v1_push|api_prom_push"'
    b.row("Push requests")
    b.panel(
        "Push requests by status",
        [(f"sum by (status_code) (rate({sel('loki_request_duration_seconds_count', push)}[{RATE}]))", "{{status_code}}")],
        "reqps",
        stack=True,
    )
    b.panel(
        "Push latency",
        [
            (quantile(0.99, "loki_request_duration_seconds", "route", push), "p99 {{route}}"),
            (quantile(0.50, "loki_request_duration_seconds", "route", push), "p50 {{route}}"),
        ],
        "s",
    )
    b.panel(
        "Push error rate",
        [
            (
                f"sum(rate({sel('loki_request_duration_seconds_count', push, S5XX)}[{RATE}]))"
                f" / sum(rate({sel('loki_request_duration_seconds_count', push)}[{RATE}]))",
                "5xx share",
            )
        ],
        "percentunit",
        description="Server errors per push request (target < 0.1%). 4xx (bad input, rate limits) are the clients'.",
    )
    b.row("Distributor")
    b.panel(
        "Lines received",
        [(f"sum by (tenant) (rate({sel('loki_distributor_lines_received_total')}[{RATE}]))", "{{tenant}}")],
        "short",
        stack=True,
    )
    b.panel(
        "Bytes received",
        [(f"sum by (tenant) (rate({sel('loki_distributor_bytes_received_total')}[{RATE}]))", "{{tenant}}")],
        "Bps",
        stack=True,
    )
    b.panel(
        "Discarded lines by reason",
        [(f"sum by (reason) (rate({sel('loki_discarded_samples_total')}[{RATE}]))", "{{reason}}")],
        "short",
        stack=True,
    )
    b.panel(
        "Push lag (p99 age of the newest entry)",
        [(quantile(0.99, "loki_distributor_ingestion_lag_seconds", "tenant"), "{{tenant}}")],
        "s",
        description="How far behind the clients (promtail) are when their lines arrive (target < 10s).",
        thresholds=[(10, "red")],
    )
    b.panel(
        "Appends to ingesters",
        [
            (f"sum by (ingester) (rate({sel('loki_distributor_ingester_appends_total')}[{RATE}]))", "{{ingester}}"),
            (
                f"sum by (ingester) (rate({sel('loki_distributor_ingester_append_failures_total')}[{RATE}]))",
                "failed {{ingester}}",
            ),
        ],
        "ops",
    )
    b.panel(
        "Ingester ring members",
        [(f"max by (state) ({sel('cortex_ring_members', INGESTER_RING)})", "{{state}}")],
        "short",
    )
    b.row("Ingesters")
    b.panel(
        "Memory (RSS) per process",
        [(sel("process_resident_memory_bytes"), "{{pod}} {{instance}}")],
        "bytes",
        description="Ingesters hold the recent data: keep them below 80% of their memory limit.",
    )
    b.panel(
        "Streams in memory",
        [(f"sum by (tenant) ({sel('loki_ingester_memory_streams')})", "{{tenant}}")],
        "short",
        stack=True,
    )
    b.panel(
        "Chunks in memory",
        [(f"sum by (instance) ({sel('loki_ingester_memory_chunks')})", "{{instance}}")],
        "short",
    )
    b.panel(
        "Streams created",
        [(f"sum by (tenant) (rate({sel('loki_ingester_streams_created_total')}[{RATE}]))", "{{tenant}}")],
        "short",
    )
    b.row("Write-ahead log")
    b.panel(
        "WAL write failures",
        [(f"sum by (instance) (increase({sel('loki_ingester_wal_disk_full_failures_total')}[{RATE}]))", "{{instance}}")],
        "short",
        description="Pushes refused because the WAL could not be written.",
    )
    b.panel(
        "WAL replay corruptions",
        [(f"sum by (instance) (increase({sel('loki_ingester_wal_replay_corruptions_total')}[1h]))", "{{instance}}")],
        "short",
    )
    b.panel(
        "Checkpoints and replayed records",
        [
            (f"sum by (instance) (increase({sel('loki_ingester_checkpoint_creations_total')}[1h]))", "checkpoints {{instance}}"),
            (f"sum by (instance) (increase({sel('loki_ingester_wal_records_replayed_total')}[1h]))", "replayed {{instance}}"),
        ],
        "short",
    )
    return b


QUERY_ROUTES = (
    'route=~"loki_api_v1_query_range|loki_api_v1_query|loki_api_v1_labels|loki_api_v1_label_name_values|'
    'loki_api_v1_series|loki_api_v1_index_stats|loki_api_v1_index_volume|loki_api_v1_index_volume_range|loki_api_v1_tail"'
)


def reads() -> Board:
    b = Board("sluice-reads", "Sluice / Reads", "The query path: query frontend, queriers.", ["reads"])
    b.row("Query requests")
    b.panel(
        "Requests by route",
        [(f"sum by (route) (rate({sel('loki_request_duration_seconds_count', QUERY_ROUTES)}[{RATE}]))", "{{route}}")],
        "reqps",
        stack=True,
    )
    b.panel(
        "Errors by route (5xx)",
        [
            (
                f"sum by (route) (rate({sel('loki_request_duration_seconds_count', QUERY_ROUTES, S5XX)}[{RATE}]))"
                f" / sum by (route) (rate({sel('loki_request_duration_seconds_count', QUERY_ROUTES)}[{RATE}]))",
                "{{route}}",
            )
        ],
        "percentunit",
        description="Target < 0.1%.",
    )
    b.panel(
        "Client errors by status",
        [
            (
                f"sum by (status_code) (rate({sel('loki_request_duration_seconds_count', QUERY_ROUTES, S4XX)}[{RATE}]))",
                "{{status_code}}",
            )
        ],
        "reqps",
    )
    b.row("Latency by route")
    for q in (0.99, 0.9, 0.5):
        b.panel(
            f"p{int(q * 100)} latency",
            [(quantile(q, "loki_request_duration_seconds", "route", QUERY_ROUTES), "{{route}}")],
            "s",
            thresholds=[(5, "red")] if q == 0.99 else None,
            description="Target: p99 < 5s." if q == 0.99 else "",
        )
    b.row("Query frontend")
    b.panel(
        "Queue wait (p99)",
        [(quantile(0.99, "loki_query_frontend_queue_duration_seconds", "instance"), "{{instance}}")],
        "s",
    )
    b.panel(
        "Queue length",
        [(f"sum by (user) ({sel('loki_query_frontend_queue_length')})", "{{user}}")],
        "short",
    )
    b.panel(
        "Sub-queries sent",
        [(f"sum(rate({sel('loki_query_frontend_split_queries_total')}[{RATE}]))", "sub-queries")],
        "ops",
    )
    b.row("Live tail")
    b.panel("Active tails", [(f"sum({sel('loki_querier_tail_active')})", "tails")], "short")
    b.panel(
        "Tailed bytes",
        [(f"sum(rate({sel('loki_querier_tail_bytes_total')}[{RATE}]))", "bytes")],
        "Bps",
    )
    return b


def chunks() -> Board:
    b = Board(
        "sluice-chunks-storage",
        "Sluice / Chunks and storage",
        "Chunks built in memory, flushed to object storage, and the index compactor.",
        ["storage"],
    )
    b.row("Chunks")
    b.panel(
        "Chunks flushed by reason",
        [(f"sum by (reason) (rate({sel('loki_ingester_chunks_flushed_total')}[{RATE}]))", "{{reason}}")],
        "ops",
        stack=True,
    )
    b.panel(
        "Chunks created",
        [(f"sum(rate({sel('loki_ingester_chunks_created_total')}[{RATE}]))", "created")],
        "ops",
    )
    b.panel(
        "Chunk size",
        [
            (quantile(0.99, "loki_ingester_chunk_size_bytes", "instance"), "p99 {{instance}}"),
            ("loki:chunk_size_bytes", "mean"),
        ],
        "bytes",
        description="Compressed size at flush; the mean is the loki_health rule group's loki:chunk_size_bytes.",
    )
    b.row("Object storage")
    b.panel(
        "Flush failures",
        [(f"sum by (instance) (increase({sel('loki_ingester_chunks_flush_failures_total')}[{RATE}]))", "{{instance}}")],
        "short",
        thresholds=[(1, "red")],
    )
    b.panel(
        "Storage growth per day",
        [(f"sum(increase({sel('loki_ingester_chunk_stored_bytes_total')}[1d]))", "bytes written in 24h")],
        "bytes",
        description="Chunk bytes written in the last 24h, every replica counted (design target ~3GB/day).",
    )
    b.panel(
        "Chunks stored per tenant",
        [(f"sum by (tenant) (rate({sel('loki_ingester_chunks_stored_total')}[{RATE}]))", "{{tenant}}")],
        "ops",
    )
    b.row("Index compaction")
    b.panel(
        "Time since last successful compaction",
        [(f"time() - max({sel('loki_boltdb_shipper_compact_tables_operation_last_successful_run_timestamp_seconds')})", "since")],
        "s",
        kind="stat",
        thresholds=[(3 * 3600, "red")],
    )
    b.panel(
        "Compactions by status",
        [(f"sum by (status) (increase({sel('loki_boltdb_shipper_compact_tables_operation_total')}[1h]))", "{{status}}")],
        "short",
    )
    b.panel(
        "Compaction duration",
        [(f"max({sel('loki_boltdb_shipper_compact_tables_operation_duration_seconds')})", "last run")],
        "s",
    )
    b.panel(
        "Compactor holding the lease",
        [(f"sum({sel('loki_boltdb_shipper_compactor_running')})", "running")],
        "short",
        kind="stat",
    )
    return b


def caches() -> Board:
    b = Board("sluice-caches", "Sluice / Caches", "Results cache and chunk cache (memcached or embedded).", ["caches"])
    b.row("Hit rate")
    b.panel(
        "Hit rate by cache",
        [
            (
                f"sum by (name) (rate({sel('loki_cache_hits')}[{RATE}])) / sum by (name) (rate({sel('loki_cache_fetched_keys')}[{RATE}]))",
                "{{name}}",
            )
        ],
        "percentunit",
        description="Target > 70%.",
        thresholds=[(0.7, "green")],
    )
    b.panel("loki:cache_hit_rate (design notes' rule)", [("loki:cache_hit_rate", "{{name}}")], "percentunit")
    b.panel(
        "Lookups",
        [
            (f"sum by (name) (rate({sel('loki_cache_fetched_keys')}[{RATE}]))", "fetched {{name}}"),
            (f"sum by (name) (rate({sel('loki_cache_hits')}[{RATE}]))", "hits {{name}}"),
            (f"sum by (name) (rate({sel('cortex_memcache_request_cache_misses_total')}[{RATE}]))", "misses {{name}}"),
        ],
        "ops",
    )
    b.row("Latency")
    b.panel(
        "Cache request latency (p99)",
        [(quantile(0.99, "loki_cache_request_duration_seconds", "name, method"), "{{name}} {{method}}")],
        "s",
    )
    b.panel(
        "Cache request errors",
        [
            (
                f"sum by (name) (rate({sel('loki_cache_request_duration_seconds_count', NOT_OK)}[{RATE}]))",
                "{{name}}",
            )
        ],
        "reqps",
        description="A failing cache only turns into misses; queries go to object storage.",
    )
    return b


def retention() -> Board:
    b = Board(
        "sluice-retention",
        "Sluice / Retention",
        "Retention and delete requests applied by the compactor.",
        ["retention"],
    )
    b.row("Retention")
    b.panel(
        "Time since retention last succeeded",
        [(f"time() - max({sel('loki_compactor_apply_retention_last_successful_run_timestamp_seconds')} > 0)", "since")],
        "s",
        kind="stat",
        thresholds=[(3 * 3600, "red")],
    )
    b.panel(
        "Retention runs by status",
        [(f"sum by (status) (increase({sel('loki_compactor_apply_retention_operation_total')}[1h]))", "{{status}}")],
        "short",
    )
    b.panel(
        "Retention run duration",
        [(f"max({sel('loki_compactor_apply_retention_operation_duration_seconds')})", "last run")],
        "s",
    )
    b.row("Chunk deletion")
    b.panel(
        "Marker files waiting",
        [(f"sum({sel('loki_boltdb_shipper_retention_sweeper_marker_files_current')})", "files")],
        "short",
    )
    b.panel(
        "Marker files processed",
        [(f"sum(rate({sel('loki_boltdb_shipper_retention_sweeper_marker_files_deleted_total')}[{RATE}]))", "files")],
        "ops",
    )
    b.panel(
        "Sweeper position",
        [(f"time() - max({sel('loki_boltdb_shipper_retention_sweeper_marker_file_processing_current_time')} > 0)", "behind")],
        "s",
        description="How old the marker file being processed is.",
    )
    b.row("Delete requests")
    b.panel(
        "Pending delete requests",
        [(f"sum({sel('loki_compactor_pending_delete_requests_count')})", "pending")],
        "short",
        kind="stat",
    )
    b.panel(
        "Oldest pending request",
        [(f"max({sel('loki_compactor_oldest_pending_delete_request_age_seconds')})", "age")],
        "s",
        kind="stat",
    )
    return b


def tenants() -> Board:
    b = Board(
        "sluice-tenants",
        "Sluice / Per-tenant usage",
        "Ingestion and storage per tenant, for billing and capacity planning.",
        ["tenants"],
    )
    b.variable("tenant", "Tenant", "label_values(loki_distributor_lines_received_total, tenant)")
    t = 'tenant=~"$tenant"'
    b.row("Ingestion")
    b.panel(
        "Bytes received",
        [(f"sum by (tenant) (rate({sel('loki_distributor_bytes_received_total', t)}[{RATE}]))", "{{tenant}}")],
        "Bps",
        stack=True,
    )
    b.panel(
        "Lines received",
        [(f"sum by (tenant) (rate({sel('loki_distributor_lines_received_total', t)}[{RATE}]))", "{{tenant}}")],
        "short",
        stack=True,
    )
    b.panel(
        "Bytes received in the range",
        [(f"sum by (tenant) (increase({sel('loki_distributor_bytes_received_total', t)}[$__range]))", "{{tenant}}")],
        "bytes",
        kind="stat",
    )
    b.panel(
        "Discarded lines",
        [(f"sum by (tenant, reason) (rate({sel('loki_discarded_samples_total', t)}[{RATE}]))", "{{tenant}} {{reason}}")],
        "short",
    )
    b.panel(
        "Discarded bytes",
        [(f"sum by (tenant, reason) (rate({sel('loki_discarded_bytes_total', t)}[{RATE}]))", "{{tenant}} {{reason}}")],
        "Bps",
    )
    b.panel(
        "Push lag (p99)",
        [(quantile(0.99, "loki_distributor_ingestion_lag_seconds", "tenant", t), "{{tenant}}")],
        "s",
    )
    b.row("Storage")
    b.panel(
        "Chunk bytes stored",
        [(f"sum by (tenant) (rate({sel('loki_ingester_chunk_stored_bytes_total', t)}[{RATE}]))", "{{tenant}}")],
        "Bps",
        stack=True,
        description="Every replica's chunks counted.",
    )
    b.panel(
        "Chunk bytes stored in the range",
        [(f"sum by (tenant) (increase({sel('loki_ingester_chunk_stored_bytes_total', t)}[$__range]))", "{{tenant}}")],
        "bytes",
        kind="stat",
    )
    b.panel(
        "Chunks stored",
        [(f"sum by (tenant) (rate({sel('loki_ingester_chunks_stored_total', t)}[{RATE}]))", "{{tenant}}")],
        "ops",
    )
    b.panel(
        "Active streams",
        [(f"sum by (tenant) ({sel('loki_ingester_memory_streams', t)})", "{{tenant}}")],
        "short",
        stack=True,
    )
    return b


BOARDS = {
    "sluice-writes.json": writes,
    "sluice-reads.json": reads,
    "sluice-chunks-storage.json": chunks,
    "sluice-caches.json": caches,
    "sluice-retention.json": retention,
    "sluice-tenants.json": tenants,
}


def render() -> dict[str, str]:
    return {name: json.dumps(build().json(), indent=2, sort_keys=True) + "\n" for name, build in BOARDS.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when the files differ from what would be written")
    args = parser.parse_args()
    files = render()
    if args.check:
        stale = [name for name, text in files.items() if not (OUT / name).is_file() or (OUT / name).read_text() != text]
        extra = sorted({path.name for path in OUT.glob("*.json")} - set(files))
        if stale or extra:
            print(f"dashboards out of date: {stale + extra}; run python3 scripts/dashboards.py", file=sys.stderr)
            return 1
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
