#!/usr/bin/env bash
# `make dashboard-bench`: the query frontend's dashboard numbers (issue 6):
# a 7-day `sum by (level) (count_over_time(...[5m]))` panel cold and warm
# (results cache), and the latency percentiles of a mixed dashboard load of
# 20 concurrent queries.
#
# Builds release binaries, starts `sluice -target=all` (embedded results
# cache, the default 24h splits and sharding) in a temporary directory,
# pushes DASH_LINES logfmt lines spread over the past 7 days with
# `sluice-loadgen push --backfill`, restarts the server (the shutdown
# flushes every chunk, the restart empties the results cache), then times
# the 7-day query twice with curl and runs `sluice-loadgen query` with 20
# concurrent dashboard queries over the last 24h.
#
# Knobs (environment): DASH_LINES (6000000), DASH_STREAMS (71),
# DASH_LOAD_DURATION (30s), DASH_HTTP_PORT (3191), DASH_GRPC_PORT (9191).
set -euo pipefail

CARGO=${CARGO:-cargo}
LINES=${DASH_LINES:-6000000}
STREAMS=${DASH_STREAMS:-71}
LOAD_DURATION=${DASH_LOAD_DURATION:-30s}
HTTP_PORT=${DASH_HTTP_PORT:-3191}
GRPC_PORT=${DASH_GRPC_PORT:-9191}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-dashboard-XXXXXX)
trap 'stop_sluice; rm -rf "$dir"' EXIT

{
    server_config "$HTTP_PORT" "$GRPC_PORT" "$dir"
    cat <<YAML
ingester:
  wal:
    enabled: true
query_range:
  cache_results: true
  results_cache:
    cache:
      embedded_cache:
        enabled: true
        max_size_mb: 512
limits_config:
  # The history is pushed now, stamped over the past week.
  reject_old_samples: false
  max_query_series: 5000
  # One loader pushes everything: no rate limits in the way.
  ingestion_rate_mb: 0
  per_stream_rate_limit: 0
distributor:
  rate_limit: 0
YAML
} >"$dir/config.yaml"

start_server() { start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"; }

echo "==> machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_server
echo "==> push: $LINES logfmt lines over the past 7 days, $STREAMS streams"
"$loadgen" push --addr "http://127.0.0.1:$HTTP_PORT" \
    --streams "$STREAMS" --format logfmt --concurrency 32 \
    --lines "$LINES" --backfill 7d --progress 10s
echo "==> restart: flush everything to the store, empty the results cache"
stop_sluice
start_server
echo "==> store: $(du -sh "$dir/data/chunks" | cut -f1) of chunks"

query='sum by (level) (count_over_time({app="checkout"} | logfmt [5m]))'
now=$(date +%s)
start=$((now - 7 * 86400))
time_query() {
    curl -fsG -o "$dir/answer.json" -w '%{time_total}' \
        "http://127.0.0.1:$HTTP_PORT/loki/api/v1/query_range" \
        --data-urlencode "query=$query" \
        --data-urlencode "start=$start" --data-urlencode "end=$now" \
        --data-urlencode "step=600"
}
cold=$(time_query)
series=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["data"]["result"]), sum(len(s["values"]) for s in d["data"]["result"]))' "$dir/answer.json")
warm=$(time_query)
echo "==> 7-day panel: $query (step 10m)"
echo "    cold: ${cold}s, warm: ${warm}s (series and points: $series)"

cat >"$dir/dashboard.txt" <<'QUERIES'
# A service dashboard: volume by level, error rate, top pods, a log panel.
sum by (level) (count_over_time({app="checkout"} | logfmt [5m]))
sum(rate({app="payments"} |= "level=error" [5m]))
topk(5, sum by (pod) (rate({job="loadgen"}[5m])))
sum by (app) (bytes_over_time({job="loadgen"}[5m]))
{app="cart"} |= "level=error"
QUERIES
echo "==> dashboard load: 20 concurrent queries over the last 24h, $LOAD_DURATION"
"$loadgen" query --addr "http://127.0.0.1:$HTTP_PORT" \
    --queries-file "$dir/dashboard.txt" --concurrency 20 \
    --duration "$LOAD_DURATION" --range 24h --step 5m
hits=$(curl -fs "http://127.0.0.1:$HTTP_PORT/metrics" | awk '/^loki_cache_hits(_total)?[{ ]/ {h+=$NF} /^loki_cache_fetched_keys(_total)?[{ ]/ {f+=$NF} END {if (f>0) printf "%.1f%% (%d of %d keys)", 100*h/f, h, f; else print "n/a"}')
echo "==> results cache hit rate: $hits"
echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
