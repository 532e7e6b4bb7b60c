#!/usr/bin/env bash
# `make storage-bench`: bytes in object storage per byte of log pushed, per
# chunk codec (issue 12).
#
# For each codec in STORAGE_CODECS it builds release binaries, starts a
# fresh `sluice -target=all` with `ingester.chunk_encoding` set to it,
# pushes STORAGE_LINES mixed JSON / logfmt / text lines spread over the
# past day with `sluice-loadgen push --backfill`, stops the server (the
# shutdown flushes every chunk and ships the index) and measures what the
# filesystem store holds: chunk objects, index files, and both per byte of
# log text pushed.
#
# Knobs (environment): STORAGE_CODECS ("zstd snappy lz4 gzip none"),
# STORAGE_FORMATS ("v2"; chunk formats, e.g. "v2 v3", each with every codec),
# STORAGE_LINES (2000000), STORAGE_STREAMS (71), STORAGE_HTTP_PORT (3194),
# STORAGE_GRPC_PORT (9194).
set -euo pipefail

CARGO=${CARGO:-cargo}
CODECS=${STORAGE_CODECS:-zstd snappy lz4 gzip none}
FORMATS=${STORAGE_FORMATS:-v2}
LINES=${STORAGE_LINES:-2000000}
STREAMS=${STORAGE_STREAMS:-71}
HTTP_PORT=${STORAGE_HTTP_PORT:-3194}
GRPC_PORT=${STORAGE_GRPC_PORT:-9194}

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/server.sh
source "$root/scripts/lib/server.sh"
release_binaries "$root"

dir=$(mktemp -d -t sluice-storage-XXXXXX)
trap 'stop_sluice; rm -rf "$dir"' EXIT

bytes_under() { # total size of the files under a directory whose path matches a pattern
    find "$1" -type f -path "$2" -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

printf '%-8s %-6s %14s %14s %12s %12s %10s\n' codec format 'log bytes' 'chunk bytes' 'index bytes' 'stored/log' 'ratio'
for format in $FORMATS; do
for codec in $CODECS; do
    rm -rf "$dir/data"
    {
        server_config "$HTTP_PORT" "$GRPC_PORT" "$dir"
        cat <<YAML
ingester:
  chunk_encoding: $codec
  chunk_format: $format
  wal:
    enabled: false
limits_config:
  reject_old_samples: false
  ingestion_rate_mb: 0
  per_stream_rate_limit: 0
distributor:
  rate_limit: 0
YAML
    } >"$dir/config.yaml"
    start_sluice "$sluice" "$dir/config.yaml" "$dir/sluice.log" "$HTTP_PORT"
    "$loadgen" push --addr "http://127.0.0.1:$HTTP_PORT" \
        --streams "$STREAMS" --format mixed --concurrency "$STREAMS" \
        --lines "$LINES" --backfill 1d --json >"$dir/push.json"
    stop_sluice
    log=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["line_bytes_accepted"])' "$dir/push.json")
    store=$dir/data/chunks
    total=$(bytes_under "$store" '*')
    index=$(bytes_under "$store" '*/index/*')
    chunks=$((total - index))
    printf '%-8s %-6s %14s %14s %12s %12.4f %9.2f:1\n' "$codec" "$format" "$log" "$chunks" "$index" \
        "$(echo "$total / $log" | bc -l)" "$(echo "$log / $total" | bc -l)"
done
done
