# Sourced by the benchmark scripts: start and stop one sluice process.
#
#   start_sluice BINARY CONFIG LOG HTTP_PORT   sets server_pid, waits for /ready
#   stop_sluice                                SIGTERM (it flushes), then SIGKILL after 60 s

server_pid=

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
