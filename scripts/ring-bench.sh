#!/usr/bin/env bash
# Distributed-mode ingest numbers (docs/performance.md, "Replication"):
# memcached + three ingesters + one distributor as separate release
# processes on loopback; sluice-loadgen pushes for a fixed time at
# replication factor 3 and then 1. Prints lines/s, the CPU-seconds per
# million lines of all Sluice processes together, and the bytes the
# ingesters wrote to their WALs (the write amplification of replication).
#
# Knobs: RING_BENCH_DURATION (20s), RING_BENCH_CONCURRENCY (32),
# RING_BENCH_FSYNC (always). Needs memcached on PATH (make test-deps).
set -euo pipefail

CARGO=${CARGO:-cargo}
DURATION=${RING_BENCH_DURATION:-20s}
CONCURRENCY=${RING_BENCH_CONCURRENCY:-32}
FSYNC=${RING_BENCH_FSYNC:-always}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-ring-bench-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT


run() {
    local rf=$1 base=$2
    local mc_port=$((base)) run_dir=$dir/rf$rf
    mkdir -p "$run_dir"
    memcached -p "$mc_port" -l 127.0.0.1 -U 0 -u root &
    pids+=($!)
    local procs=()
    start() { # name target http grpc
        cat >"$run_dir/$1.yaml" <<YAML
auth_enabled: false
server: {http_listen_address: 127.0.0.1, http_listen_port: $3, grpc_listen_address: 127.0.0.1, grpc_listen_port: $4, log_level: warn}
common:
  path_prefix: $run_dir/$1
  ring:
    kvstore: {store: memcached, memcached: {addresses: ["127.0.0.1:$mc_port"]}}
    replication_factor: $rf
    instance_id: $1
storage_config: {filesystem: {directory: $run_dir/store}}
ingester: {wal: {fsync: $FSYNC}}
# A benchmark measures the servers, not their rate limits.
distributor: {rate_limit: 0}
limits_config: {ingestion_rate_mb: 0, per_stream_rate_limit: 0, max_global_streams_per_user: 0}
YAML
        "$sluice" -config.file="$run_dir/$1.yaml" -target="$2" 2>>"$run_dir/$1.log" &
        pids+=($!)
        procs+=($!)
        for _ in $(seq 1 200); do
            curl -sf "http://127.0.0.1:$3/ready" >/dev/null && return 0
            sleep 0.1
        done
        echo "$1 did not become ready" >&2
        exit 1
    }
    start ingester-0 ingester $((base + 1)) $((base + 2))
    start ingester-1 ingester $((base + 3)) $((base + 4))
    start ingester-2 ingester $((base + 5)) $((base + 6))
    start distributor-0 distributor $((base + 7)) $((base + 8))
    sleep 2 # the distributor's ring view fills within a second
    local before
    before=$(cpu_seconds "${procs[@]}")
    "$loadgen" push --addr "http://127.0.0.1:$((base + 7))" --duration "$DURATION" \
        --concurrency "$CONCURRENCY" --batch-size 1000 --streams 71 >"$run_dir/report.txt"
    local after lines wal
    after=$(cpu_seconds "${procs[@]}")
    lines=$(grep -oE '[0-9]+ accepted' "$run_dir/report.txt" | grep -oE '^[0-9]+' || true)
    wal=$(du -sb "$run_dir"/ingester-*/wal | awk '{s += $1} END {printf "%.0f", s}')
    echo "== replication factor $rf"
    cat "$run_dir/report.txt"
    echo "CPU-seconds (3 ingesters + distributor): $(echo "$after - $before" | bc)"
    if [[ -n "$lines" && "$lines" -gt 0 ]]; then
        echo "CPU-seconds per million lines: $(echo "scale=2; ($after - $before) * 1000000 / $lines" | bc)"
        echo "WAL bytes per pushed line: $(echo "scale=1; $wal / $lines" | bc)"
    fi
    echo "WAL bytes written: $wal"
    for pid in "${procs[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${procs[@]}" 2>/dev/null || true
}

run 3 21100
run 1 21200
