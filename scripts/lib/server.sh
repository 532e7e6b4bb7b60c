# Sourced by the benchmark scripts: find the binaries, write the common head
# of a config, start and stop one sluice process.
#
#   release_binaries ROOT                      sets sluice and loadgen (builds release
#                                              binaries unless SLUICE_BIN and LOADGEN_BIN are set)
#   server_config HTTP_PORT GRPC_PORT DIR [LINES]
#                                              prints an all-in-one config's head: loopback
#                                              ports, warn logs, LINES more of the server
#                                              block, state under DIR/data
#   cpu_seconds PID...                         utime+stime of the processes, in seconds
#   start_sluice BINARY CONFIG LOG HTTP_PORT   sets server_pid, waits for /ready
#   stop_sluice                                SIGTERM (it flushes), then SIGKILL after 60 s

server_pid=

release_binaries() {
    local root=$1 target=${CARGO_TARGET_DIR:-$1/target}
    case "$target" in /*) ;; *) target=$root/$target ;; esac
    if [[ -z "${SLUICE_BIN:-}" || -z "${LOADGEN_BIN:-}" ]]; then
        echo "==> building release binaries"
        (cd "$root" && "${CARGO:-cargo}" build --release -p sluice --bin sluice -p sluice-loadgen --bin sluice-loadgen)
    fi
    sluice=${SLUICE_BIN:-$target/release/sluice}
    loadgen=${LOADGEN_BIN:-$target/release/sluice-loadgen}
}

cpu_seconds() {
    local ticks=0 pid stat
    for pid in "$@"; do
        read -r -a stat <"/proc/$pid/stat"
        ticks=$((ticks + stat[13] + stat[14]))
    done
    echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc
}

server_config() {
    cat <<YAML
target: all
auth_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $1
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: $2
  log_level: warn
${4:-}common:
  path_prefix: $3/data
YAML
}

start_sluice() {
    local binary=$1 config=$2 log=$3 port=$4
    "$binary" -config.file="$config" -target=all >>"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 600); do
        if curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "sluice exited during startup:"; cat "$log"; exit 1
        fi
        sleep 0.1
    done
    echo "sluice not ready after 60 s:"; cat "$log"; exit 1
}

stop_sluice() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 600); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
