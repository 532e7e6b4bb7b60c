#!/usr/bin/env bash
# Canary soak of a distributed cluster (docs/performance.md, "Soak with an
# ingester killed"): memcached holding the ring, three ingesters
# (replication factor 3, WAL with fsync `always`), one distributor, one
# querier behind a query frontend, each a separate release process with its
# own directory. Two `sluice canary` processes push to the distributor and
# read back through the frontend, one over live tail and one by polling
# query_range (a canary has one receive path). A third of the way through,
# one ingester is killed with SIGKILL, left down for a while and restarted
# on its directory (WAL replay) under the same instance id; at two thirds
# another one is restarted gracefully (SIGTERM, which flushes).
#
# At the end both canaries are suspended (`/suspend`: no new lines, reading
# and checking go on) and the script waits until every line they wrote is
# either received or reported missing (`loki_canary_outstanding_entries`
# reaches 0; at most -max-wait + -pruneinterval). It prints each canary's
# numbers and exits non-zero when a line is missing, duplicated, failed a
# spot check or stayed undecided.
#
# Knobs: CANARY_SOAK_DURATION (600 s; `10m` and `90s` work too),
# CANARY_SOAK_DOWN (30 s the killed ingester stays down),
# CANARY_SOAK_INTERVAL (250ms between lines, per canary),
# CANARY_SOAK_GRACEFUL (1: also restart an ingester gracefully),
# CANARY_SOAK_PORT (23100: first of the ports used), CANARY_SOAK_KEEP
# (1: keep the temporary directory with the logs). Needs memcached on PATH
# (make test-deps).
set -euo pipefail

CARGO=${CARGO:-cargo}
seconds() { # 600, 600s, 10m, 1h -> seconds
    local value=$1
    case $value in
        *h) echo $((${value%h} * 3600)) ;;
        *m) echo $((${value%m} * 60)) ;;
        *s) echo "${value%s}" ;;
        *) echo "$value" ;;
    esac
}
DURATION=$(seconds "${CANARY_SOAK_DURATION:-600}")
DOWN=$(seconds "${CANARY_SOAK_DOWN:-30}")
INTERVAL=${CANARY_SOAK_INTERVAL:-250ms}
GRACEFUL=${CANARY_SOAK_GRACEFUL:-1}
BASE=${CANARY_SOAK_PORT:-23100}
# The canary's waits, chosen so a run decides every line it wrote: a line
# not on the receive path within WAIT is queried for every PRUNE and
# counted missing once MAX_WAIT has passed.
WAIT=30s
MAX_WAIT=2m
PRUNE=10s

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z "${SLUICE_BIN:-}" ]]; then
    (cd "$root" && "$CARGO" build --release -p sluice --bin sluice)
fi
sluice=${SLUICE_BIN:-$target/release/sluice}

dir=$(mktemp -d -t sluice-canary-soak-XXXXXX)
declare -A pid=() http=() grpc=()
cleanup() {
    local name
    {
        for name in "${!pid[@]}"; do kill -KILL "${pid[$name]}" || true; done
        wait || true
    } 2>/dev/null
    if [[ "${CANARY_SOAK_KEEP:-0}" == 1 ]]; then
        echo "logs kept in $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT

log() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }

mc_port=$BASE
next_port=$((BASE + 1))
for name in ingester-0 ingester-1 ingester-2 distributor-0 querier-0 frontend-0; do
    http[$name]=$next_port
    grpc[$name]=$((next_port + 1))
    next_port=$((next_port + 2))
done
tail_metrics=$next_port
query_metrics=$((next_port + 1))

memcached -p "$mc_port" -l 127.0.0.1 -U 0 -u root &
pid[memcached]=$!

# One YAML per process: its own path_prefix under $dir, a shared
# filesystem object store. Chunks are cut every 2 minutes so spot checks
# and the final reads cover flushed chunks as well as the ingesters' memory,
# and the WAL is checkpointed every minute so the replay after SIGKILL reads
# a checkpoint and the segments after it. Heartbeats time out after 15 s,
# so the ring calls the killed ingester unhealthy while it is down.
write_config() { # name target
    local name=$1 extra=""
    case $2 in
        querier) extra="frontend_worker: {frontend_address: 127.0.0.1:${grpc[frontend-0]}}" ;;
        query-frontend) extra="frontend: {tail_proxy_url: http://127.0.0.1:${http[querier-0]}}" ;;
    esac
    cat >"$dir/$name.yaml" <<YAML
auth_enabled: false
server: {http_listen_address: 127.0.0.1, http_listen_port: ${http[$name]}, grpc_listen_address: 127.0.0.1, grpc_listen_port: ${grpc[$name]}, log_level: info}
common:
  path_prefix: $dir/$name
  ring:
    kvstore: {store: memcached, memcached: {addresses: ["127.0.0.1:$mc_port"]}}
    replication_factor: 3
    instance_id: $name
    heartbeat_period: 5s
    heartbeat_timeout: 15s
storage_config: {filesystem: {directory: $dir/store}}
ingester: {wal: {enabled: true, fsync: always, checkpoint_duration: 1m}, max_chunk_age: 2m, flush_check_period: 10s}
$extra
YAML
}

start() { # name target
    local name=$1
    "$sluice" -config.file="$dir/$name.yaml" -target="$2" >>"$dir/$name.log" 2>&1 &
    pid[$name]=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:${http[$name]}/ready" >/dev/null && return 0
        if ! kill -0 "${pid[$name]}" 2>/dev/null; then
            echo "$name exited during startup:" >&2
            tail -20 "$dir/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$name did not become ready in 60 s" >&2
    exit 1
}

# Waits until the distributor's and the querier's ring show the three
# ingesters ACTIVE and healthy; prints how long that took.
wait_ring_healed() {
    local began=$SECONDS node
    for node in distributor-0 querier-0; do
        for _ in $(seq 1 1200); do
            if curl -sf -H 'Accept: application/json' "http://127.0.0.1:${http[$node]}/ring" |
                python3 -c '
import json, sys
shards = json.load(sys.stdin)["shards"]
ok = len(shards) == 3 and all(s["state"] == "ACTIVE" and s["healthy"] for s in shards)
sys.exit(0 if ok else 1)'; then
                continue 2
            fi
            sleep 0.1
        done
        echo "the ring of $node never showed three ACTIVE, healthy ingesters" >&2
        exit 1
    done
    echo $((SECONDS - began))
}

for name in ingester-0 ingester-1 ingester-2; do
    write_config "$name" ingester
    start "$name" ingester
done
write_config distributor-0 distributor
start distributor-0 distributor
write_config frontend-0 query-frontend
start frontend-0 query-frontend
write_config querier-0 querier
start querier-0 querier
wait_ring_healed >/dev/null
log "cluster up in $dir: memcached :$mc_port, distributor :${http[distributor-0]}, frontend :${http[frontend-0]}"

canary() { # name metrics-port receive-path flags...
    local name=$1 port=$2
    shift 2
    "$sluice" canary -addr="127.0.0.1:${http[frontend-0]}" \
        -write-addr="127.0.0.1:${http[distributor-0]}" -port="$port" \
        -labelvalue="$name" -interval="$INTERVAL" \
        -wait="$WAIT" -max-wait="$MAX_WAIT" -pruneinterval="$PRUNE" \
        -spot-check-interval=1m -spot-check-query-rate=30s -spot-check-initial-wait=10s \
        -metric-test-interval=1m "$@" >"$dir/$name.log" 2>&1 &
    pid[$name]=$!
}
canary canary-tail "$tail_metrics" -tail=true
canary canary-query "$query_metrics" -tail=false
started=$SECONDS
log "canaries running for ${DURATION}s: live tail (metrics :$tail_metrics), query polling (metrics :$query_metrics)"

sleep_until() { # seconds since the canaries started
    local left=$(($1 - (SECONDS - started)))
    if ((left > 0)); then sleep "$left"; fi
}

# A third of the way through: SIGKILL, down for $DOWN s, restart from the WAL.
sleep_until $((DURATION / 3))
kill -KILL "${pid[ingester-1]}"
wait "${pid[ingester-1]}" 2>/dev/null || true
killed_at=$SECONDS
log "ingester-1 killed (SIGKILL)"
sleep "$DOWN"
start ingester-1 ingester
log "ingester-1 restarted after $((SECONDS - killed_at))s down, ready;" \
    "$(grep 'WAL replay finished' "$dir/ingester-1.log" | tail -1 | grep -o ' records=[0-9]*' | cut -d= -f2) WAL records replayed"
log "ring healed $(wait_ring_healed)s after the restart"

if [[ "$GRACEFUL" == 1 ]]; then
    sleep_until $((2 * DURATION / 3))
    kill -TERM "${pid[ingester-2]}"
    wait "${pid[ingester-2]}" 2>/dev/null || true
    log "ingester-2 stopped gracefully (SIGTERM, chunks flushed)"
    start ingester-2 ingester
    log "ingester-2 restarted; ring healed $(wait_ring_healed)s later"
fi

sleep_until "$DURATION"
metric() { # port name -> value (0 when absent)
    curl -sf "http://127.0.0.1:$1/metrics" | awk -v name="$2" '$1 == name {print $2; found = 1} END {if (!found) print 0}'
}
for port in "$tail_metrics" "$query_metrics"; do
    curl -sf "http://127.0.0.1:$port/suspend" >/dev/null
done
log "canaries suspended; waiting until every line written is received or reported missing"
drain_limit=$(($(seconds "$MAX_WAIT") + $(seconds "$PRUNE") + 30))
drained=$SECONDS
while (($(metric "$tail_metrics" loki_canary_outstanding_entries) > 0 ||
    $(metric "$query_metrics" loki_canary_outstanding_entries) > 0)); do
    if ((SECONDS - drained > drain_limit)); then
        log "lines still undecided after ${drain_limit}s"
        break
    fi
    sleep 1
done
log "drained in $((SECONDS - drained))s"

# Latency quantiles from the cumulative histogram buckets, interpolated
# within the bucket as Prometheus' histogram_quantile does.
quantile() { # metrics-file q
    awk -v q="$2" '
        /^loki_canary_response_latency_seconds_bucket/ {
            match($0, /le="[^"]*"/)
            le = substr($0, RSTART + 4, RLENGTH - 5)
            n++; les[n] = (le == "+Inf") ? "+Inf" : le + 0; counts[n] = $2
        }
        END {
            total = counts[n]
            if (total == 0) { print "n/a"; exit }
            rank = q * total; prev_le = 0; prev_count = 0
            for (i = 1; i <= n; i++) {
                if (counts[i] >= rank) {
                    if (les[i] == "+Inf") { printf "> %ss\n", prev_le; exit }
                    width = counts[i] - prev_count
                    value = prev_le + (les[i] - prev_le) * (width > 0 ? (rank - prev_count) / width : 0)
                    printf "%.2fs\n", value; exit
                }
                prev_le = les[i]; prev_count = counts[i]
            }
        }' "$1"
}

failed=0
report() { # name port
    local name=$1 port=$2 file=$dir/$1.metrics
    curl -sf "http://127.0.0.1:$port/metrics" >"$file"
    value() { awk -v name="$1" '$1 == name {print $2; found = 1} END {if (!found) print 0}' "$file"; }
    local written received missing duplicate out_of_order unexpected spot spot_missing ws_missing outstanding sum
    written=$(value loki_canary_entries_total)
    received=$(value loki_canary_response_latency_seconds_count)
    missing=$(value loki_canary_missing_entries_total)
    duplicate=$(value loki_canary_duplicate_entries_total)
    out_of_order=$(value loki_canary_out_of_order_entries_total)
    unexpected=$(value loki_canary_unexpected_entries_total)
    spot=$(value loki_canary_spot_check_entries_total)
    spot_missing=$(value loki_canary_spot_check_missing_entries_total)
    ws_missing=$(value loki_canary_websocket_missing_entries_total)
    outstanding=$(value loki_canary_outstanding_entries)
    sum=$(value loki_canary_response_latency_seconds_sum)
    echo "== $name"
    echo "entries written:            $written"
    echo "entries received:           $received"
    echo "missing:                    $missing"
    echo "duplicate:                  $duplicate"
    echo "out of order:               $out_of_order"
    echo "unexpected:                 $unexpected"
    echo "not on the receive path in -wait (then found by query): $ws_missing"
    echo "spot checks:                $spot (missing $spot_missing)"
    echo "undecided at the end:       $outstanding"
    echo "push errors:                $(value loki_canary_push_errors_total)"
    echo "tail reconnects:            $(value loki_canary_ws_reconnects_total)"
    echo "metric test (count_over_time): expected $(value loki_canary_metric_test_expected), actual $(value loki_canary_metric_test_actual)"
    echo "latency p50 / p99 (histogram_quantile over the 0.5 s doubling buckets) / mean:"
    echo "                            $(quantile "$file" 0.5) / $(quantile "$file" 0.99) / $(awk -v s="$sum" -v c="$received" 'BEGIN {if (c > 0) printf "%.3fs", s / c; else print "n/a"}')"
    echo "canary errors logged:       $(grep -c 'error' "$dir/$name.log" || true)"
    if [[ "$missing" != 0 || "$duplicate" != 0 || "$spot_missing" != 0 || "$outstanding" != 0 ]]; then
        failed=1
    fi
}
report canary-tail "$tail_metrics"
report canary-query "$query_metrics"
echo "== server logs: lines at level error / warn"
for name in distributor-0 frontend-0 querier-0 ingester-0 ingester-1 ingester-2; do
    echo "$name: $(grep -c 'level=error\|ERROR' "$dir/$name.log" || true) / $(grep -c 'level=warn\|WARN' "$dir/$name.log" || true)"
done
if ((failed)); then
    echo "FAIL: lines missing, duplicated or undecided (logs: CANARY_SOAK_KEEP=1 keeps $dir)"
    exit 1
fi
echo "OK: every line written was read back once"
