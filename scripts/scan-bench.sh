#!/usr/bin/env bash
# `make scan-bench`: how fast queries scan flushed data (issue 12): a
# filtered log query and a filtered count over 1 GB and 10 GB of log text
# in a local filesystem store, cold and warm, plus the time to the first
# 100 lines of a log query.
#
# For each size in SCAN_SIZES_GB it builds release binaries, starts
# `sluice -target=all` in a temporary directory (WAL off: the WAL is not
# what is measured and would double the disk used), pushes that many bytes
# of mixed JSON / logfmt / text lines spread over the past day with
# `sluice-loadgen push --backfill`, restarts the server (the shutdown
# flushes every chunk, so everything is read from the store), and times
# each query through the query frontend with curl:
#
#   cold  the first run after the restart: the querier's chunk cache is
#         empty and, when this script may write /proc/sys/vm/drop_caches,
#         so is the kernel's page cache;
#   warm  the best of SCAN_WARM_RUNS more runs: every chunk is in the
#         embedded chunk cache.
#
# Scan rates are bytes of log text (what was pushed, as sluice-loadgen
# counts it) divided by the wall time and by the server's CPU-seconds for
# the query (utime + stime from /proc), so they are comparable across
# machines where the wall time is not.
#
# Knobs (environment): SCAN_SIZES_GB ("1 10"), SCAN_STREAMS (71),
# SCAN_WARM_RUNS (3), SCAN_HTTP_PORT (3192), SCAN_GRPC_PORT (9192),
# SCAN_KEEP=1 keeps the data directory, SCAN_CHUNK_FORMAT (v2) the chunk
# format the data is written in.
set -euo pipefail

CARGO=${CARGO:-cargo}
SIZES=${SCAN_SIZES_GB:-1 10}
STREAMS=${SCAN_STREAMS:-71}
WARM_RUNS=${SCAN_WARM_RUNS:-3}
CHUNK_FORMAT=${SCAN_CHUNK_FORMAT:-v2}
HTTP_PORT=${SCAN_HTTP_PORT:-3192}
GRPC_PORT=${SCAN_GRPC_PORT:-9192}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-scan-XXXXXX)
cleanup() {
    stop_sluice
    if [[ "${SCAN_KEEP:-}" == 1 ]]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

drop_page_cache() {
    sync
    if echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then echo dropped; else echo kept; fi
}

# time_query QUERY LIMIT: prints "<wall seconds> <server cpu seconds> <result lines or points>"
time_query() {
    local query=$1 limit=$2 before after wall count
    before=$(cpu_seconds "$server_pid")
    wall=$(curl -fsG -o "$dir/answer.json" -w '%{time_total}' \
        "http://127.0.0.1:$HTTP_PORT/loki/api/v1/query_range" \
        --data-urlencode "query=$query" \
        --data-urlencode "start=$range_start" --data-urlencode "end=$range_end" \
        --data-urlencode "step=60" --data-urlencode "limit=$limit" \
        --data-urlencode "direction=backward")
    after=$(cpu_seconds "$server_pid")
    count=$(python3 -c '
import json, sys
data = json.load(open(sys.argv[1]))["data"]
if data["resultType"] == "streams":
    print(sum(len(s["values"]) for s in data["result"]), "lines")
else:
    print(sum(float(v) for s in data["result"] for _, v in s["values"]), "counted")
' "$dir/answer.json")
    echo "$wall $(echo "$after - $before" | bc) $count"
}

report() { # label bytes "wall cpu count unit"
    local label=$1 bytes=$2 wall cpu count unit
    read -r wall cpu count unit <<<"$3"
    python3 - "$label" "$bytes" "$wall" "$cpu" "$count" "$unit" <<'PY'
import sys
label, size, wall, cpu, count, unit = sys.argv[1:]
size, wall, cpu = int(size), float(wall), float(cpu)
per_wall = size / wall / 1e9 if wall > 0 else float("nan")
per_cpu = size / cpu / 1e9 if cpu > 0 else float("nan")
print(f"    {label:<6} {wall:8.3f} s wall  {cpu:7.2f} CPU-s  "
      f"{per_wall:6.2f} GB/s  {per_cpu:6.2f} GB per CPU-s  ({float(count):.0f} {unit})")
PY
}

write_config() {
    {
        server_config "$HTTP_PORT" "$GRPC_PORT" "$dir" "  http_server_read_timeout: 10m
  http_server_write_timeout: 10m
"
        cat <<YAML
ingester:
  chunk_format: $CHUNK_FORMAT
  wal:
    enabled: false
chunk_store_config:
  chunk_cache_config:
    embedded_cache:
      enabled: true
      max_size_mb: 4096
query_range:
  cache_results: false
limits_config:
  # The history is pushed now, stamped over the past day.
  reject_old_samples: false
  max_query_series: 5000
  query_timeout: 10m
  # One loader pushes everything: no rate limits in the way.
  ingestion_rate_mb: 0
  per_stream_rate_limit: 0
distributor:
  rate_limit: 0
YAML
    } >"$dir/config.yaml"
}

echo "==> machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
write_config
for gb in $SIZES; do
    rm -rf "$dir/data"
    start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
    bytes_wanted=$((gb * 1000000000))
    # ~258-byte lines on average (mixed formats); the loader reports exact bytes.
    lines=$((bytes_wanted / 258))
    echo "==> push: $lines lines (~$gb GB) over the past day, $STREAMS streams"
    "$loadgen" push --addr "http://127.0.0.1:$HTTP_PORT" \
        --streams "$STREAMS" --format mixed --concurrency "$STREAMS" \
        --lines "$lines" --backfill 1d --json >"$dir/push.json"
    bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["line_bytes_accepted"])' "$dir/push.json")
    rate=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["lines_per_second"]))' "$dir/push.json")
    echo "    pushed $bytes bytes of log text ($rate lines/s)"
    stop_sluice
    echo "    store: $(du -sb "$dir/data" | cut -f1) bytes on disk ($(du -sh "$dir/data" | cut -f1))"
    start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
    range_end=$(date +%s)
    range_start=$((range_end - 86400 - 600))

    for query in '{job="loadgen"} |= "needle"' \
        'sum by (level) (count_over_time({job="loadgen"} |= "err" [1m]))'; do
        echo "==> $query  (over $gb GB; page cache $(drop_page_cache))"
        report cold "$bytes" "$(time_query "$query" 100)"
        best=
        for _ in $(seq 1 "$WARM_RUNS"); do
            run=$(time_query "$query" 100)
            if [[ -z "$best" ]] || (($(echo "${run%% *} < ${best%% *}" | bc))); then best=$run; fi
        done
        report warm "$bytes" "$best"
    done
    for query in '{job="loadgen"}' '{job="loadgen"} |= "error"'; do
        echo "==> time to the first 100 lines: $query (limit 100, newest first)"
        read -r wall cpu count unit <<<"$(time_query "$query" 100)"
        echo "    ${wall} s wall, ${cpu} CPU-s ($count $unit)"
    done
    stop_sluice
done
echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
