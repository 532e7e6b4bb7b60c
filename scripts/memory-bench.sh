#!/usr/bin/env bash
# `make memory-bench`: the ingester's resident memory with data held
# unflushed (issue 12): per active stream and per MB of log held.
#
# For each stream count in MEM_STREAMS it builds release binaries, starts a
# fresh `sluice -target=all` (WAL on with its default fsync, flushing
# effectively off: flush_check_period 1h, so every chunk stays in memory),
# pushes MEM_LINES lines with `sluice-loadgen push` over that many streams,
# waits for the server to settle, and prints its resident memory (VmRSS),
# its peak (VmHWM), the streams and chunks the ingester reports on
# /metrics, and the bytes of log text held.
#
# Per-stream cost: a second set of runs pushes only MEM_PROBE_LINES (10)
# lines to each of 10k and 100k streams; their resident memory less the idle
# server's, divided by the streams, is the cost of an active stream with
# next to no data. Per-MB cost: resident memory of the run with the fewest
# streams, less that of an idle server, divided by MB of log held.
#
# Knobs (environment): MEM_STREAMS ("71 10000 100000"), MEM_LINES
# (3000000), MEM_PROBE_STREAMS ("10000 100000"), MEM_PROBE_LINES (10),
# MEM_HTTP_PORT (3193), MEM_GRPC_PORT (9193).
set -euo pipefail

CARGO=${CARGO:-cargo}
STREAM_COUNTS=${MEM_STREAMS:-71 10000 100000}
LINES=${MEM_LINES:-3000000}
PROBE_STREAMS=${MEM_PROBE_STREAMS:-10000 100000}
PROBE_LINES=${MEM_PROBE_LINES:-10}
HTTP_PORT=${MEM_HTTP_PORT:-3193}
GRPC_PORT=${MEM_GRPC_PORT:-9193}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-memory-XXXXXX)
# The data is thrown away: SIGKILL instead of a flushing shutdown.
kill_sluice() {
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap 'kill_sluice; rm -rf "$dir"' EXIT

{
    server_config "$HTTP_PORT" "$GRPC_PORT" "$dir"
    cat <<YAML
ingester:
  # Hold everything: no flush happens during the run.
  flush_check_period: 1h
  chunk_idle_period: 2h
limits_config:
  max_global_streams_per_user: 0
  max_streams_per_user: 0
  ingestion_rate_mb: 0
  per_stream_rate_limit: 0
distributor:
  rate_limit: 0
YAML
} >"$dir/config.yaml"

kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
metric() { # name: the sum of a metric's samples on /metrics
    curl -fs "http://127.0.0.1:$HTTP_PORT/metrics" |
        awk -v name="$1" '$1 == name || index($1, name "{") == 1 {sum += $NF} END {printf "%.0f", sum}'
}
settle() { # until VmRSS stops growing (the WAL and chunk cutting catch up)
    local last=0 now
    for _ in $(seq 1 30); do
        sleep 2
        now=$(kib "$server_pid" VmRSS)
        if ((now <= last)); then return; fi
        last=$now
    done
}

echo "==> machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$dir/data"
start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
sleep 2
idle=$(kib "$server_pid" VmRSS)
kill_sluice
echo "==> idle server: $((idle / 1024)) MiB resident"

printf '%-8s %12s %12s %12s %10s %10s %14s\n' streams lines 'MB of log' 'RSS MiB' 'peak MiB' chunks 'RSS/MB of log'
results=()
for streams in $STREAM_COUNTS; do
    rm -rf "$dir/data"
    start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
    concurrency=32
    if ((streams < concurrency)); then concurrency=$streams; fi
    "$loadgen" push --addr "http://127.0.0.1:$HTTP_PORT" \
        --streams "$streams" --format mixed --concurrency "$concurrency" \
        --lines "$LINES" --json >"$dir/push.json"
    settle
    bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["line_bytes_accepted"])' "$dir/push.json")
    accepted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines_accepted"])' "$dir/push.json")
    rss=$(kib "$server_pid" VmRSS)
    hwm=$(kib "$server_pid" VmHWM)
    held=$(metric loki_ingester_memory_streams)
    chunks=$(metric loki_ingester_memory_chunks)
    flushed=$(metric loki_ingester_chunks_flushed_total)
    printf '%-8s %12s %12.1f %12.1f %10.1f %10s %14.3f\n' "$held" "$accepted" \
        "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
        "$(echo "$hwm / 1024" | bc -l)" "$chunks" \
        "$(echo "($rss - $idle) / 1024 / ($bytes / 1000000)" | bc -l)"
    if [[ "$flushed" != 0 ]]; then echo "    (warning: $flushed chunks were flushed during the run)"; fi
    kill_sluice
done

for streams in $PROBE_STREAMS; do
    rm -rf "$dir/data"
    start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
    "$loadgen" push --addr "http://127.0.0.1:$HTTP_PORT" \
        --streams "$streams" --format mixed --concurrency 32 \
        --lines $((streams * PROBE_LINES)) --json >"$dir/push.json"
    settle
    bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["line_bytes_accepted"])' "$dir/push.json")
    rss=$(kib "$server_pid" VmRSS)
    held=$(metric loki_ingester_memory_streams)
    printf '==> %s streams holding %s lines each (%.1f MB of log): %.1f MiB resident, %.1f KiB per stream over idle\n' \
        "$held" "$PROBE_LINES" "$(echo "$bytes / 1000000" | bc -l)" "$(echo "$rss / 1024" | bc -l)" \
        "$(echo "($rss - $idle) / $held" | bc -l)"
    kill_sluice
done
