#!/usr/bin/env bash
# `make loadtest`: end-to-end ingest and query numbers on this machine.
#
# Builds release binaries (unless SLUICE_BIN and LOADGEN_BIN name them), starts `sluice -target=all` with the WAL on
# (fsync always, the default) in a temporary directory, pushes with
# sluice-loadgen in the shape of the Loki numbers we compare with (~71
# streams, batches of 1000 lines, 32 concurrent requests) for a fixed time,
# then runs the query mode over what was pushed, and prints both reports plus
# the server's CPU-seconds per million lines and peak memory.
#
# Knobs (environment): LOADTEST_DURATION (30s), LOADTEST_QUERY_DURATION
# (20s), LOADTEST_CONCURRENCY (32), LOADTEST_BATCH (1000), LOADTEST_STREAMS
# (71), LOADTEST_FORMAT (mixed), LOADTEST_FSYNC (always), LOADTEST_HTTP_PORT
# (3190), LOADTEST_GRPC_PORT (9190), LOADTEST_JSON=1 for JSON reports,
# LOADTEST_LINES to push an exact number of lines instead of for a time
# (the same data for runs to compare), LOADTEST_QUERIES (a file of
# queries, one per line; default the built-in mix),
# LOADTEST_QUERY_CONCURRENCY (4).
set -euo pipefail

CARGO=${CARGO:-cargo}
DURATION=${LOADTEST_DURATION:-30s}
QUERY_DURATION=${LOADTEST_QUERY_DURATION:-20s}
if [[ -n "${LOADTEST_LINES:-}" ]]; then
    AMOUNT=(--lines "$LOADTEST_LINES")
else
    AMOUNT=(--duration "$DURATION")
fi
CONCURRENCY=${LOADTEST_CONCURRENCY:-32}
BATCH=${LOADTEST_BATCH:-1000}
STREAMS=${LOADTEST_STREAMS:-71}
FORMAT=${LOADTEST_FORMAT:-mixed}
FSYNC=${LOADTEST_FSYNC:-always}
HTTP_PORT=${LOADTEST_HTTP_PORT:-3190}
GRPC_PORT=${LOADTEST_GRPC_PORT:-9190}
JSON_FLAG=()
if [[ "${LOADTEST_JSON:-0}" == 1 ]]; then JSON_FLAG=(--json); fi

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-loadtest-XXXXXX)
trap 'stop_sluice; rm -rf "$dir"' EXIT

cat >"$dir/config.yaml" <<YAML
# config/sluice-local.yaml with its own ports and directory; WAL on.
target: all
auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $HTTP_PORT
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: $GRPC_PORT
  log_level: warn
common:
  path_prefix: $dir/data
ingester:
  chunk_encoding: zstd
  chunk_block_size: 262144
  chunk_target_size: 1572864
  wal:
    enabled: true
    fsync: $FSYNC
# A benchmark measures the server, not its rate limits.
distributor:
  rate_limit: 0
limits_config:
  max_entries_limit_per_query: 5000
  ingestion_rate_mb: 0
  per_stream_rate_limit: 0
  max_global_streams_per_user: 0
YAML

echo "==> starting sluice (WAL on, fsync $FSYNC) in $dir"
start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"

echo "==> machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> push: $STREAMS streams ($FORMAT), batches of $BATCH lines, $CONCURRENCY concurrent, ${AMOUNT[*]}"
"$loadgen" push \
    --addr "http://127.0.0.1:$HTTP_PORT" \
    --streams "$STREAMS" --format "$FORMAT" \
    --batch-size "$BATCH" --concurrency "$CONCURRENCY" \
    "${AMOUNT[@]}" --server-pid "$server_pid" --progress 5s \
    "${JSON_FLAG[@]}"
echo "==> server memory: $(grep -E '^(VmHWM|VmRSS)' "/proc/$server_pid/status" | tr -s ' \t' ' ' | paste -sd, -)"

QUERY_CONCURRENCY=${LOADTEST_QUERY_CONCURRENCY:-4}
QUERIES=()
if [[ -n "${LOADTEST_QUERIES:-}" ]]; then QUERIES=(--queries-file "$LOADTEST_QUERIES"); fi
echo "==> query: ${LOADTEST_QUERIES:-built-in queries} over the last 15m, $QUERY_CONCURRENCY concurrent, $QUERY_DURATION"
"$loadgen" query \
    --addr "http://127.0.0.1:$HTTP_PORT" \
    --duration "$QUERY_DURATION" --concurrency "$QUERY_CONCURRENCY" --range 15m \
    "${QUERIES[@]}" "${JSON_FLAG[@]}"
echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
