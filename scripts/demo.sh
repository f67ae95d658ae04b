#!/usr/bin/env bash
# make demo: the legacy MOS simulator with 100 NCS disconnects, first as it is (CLOSE_WAIT piles
# up), then under libautoclose; the kernel's own socket states, side by side.
set -euo pipefail

: "${AUTOCLOSE_LIB:?AUTOCLOSE_LIB must name the built libautoclose.so}"
: "${FIXTURES:?FIXTURES must name the directory of the built fixtures}"

N=100
GRACE_MS=500
MOS_PORT=10540
tmp=$(mktemp -d "${TMPDIR:-/tmp}/autoclose-demo.XXXXXX")
server_pid=
server_port=

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

wait_until() {
    local deadline=$(($(now_ms) + $1))
    shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# count_server STATE PORT: the simulator's sockets in STATE.
count_server() { ss -Htn state "$1" "( sport = :$2 )" | wc -l; }

# count_ncs STATE PORT RUN: sockets in STATE among the local ports this run's NCS printed, so
# sockets left over from the other run never count.
count_ncs() {
    ss -Htn state "$1" "( dport = :$2 )" |
        awk '{ n = split($(NF - 1), a, ":"); print a[n] }' |
        grep -Fxc -f "$tmp/$3.ports" || true
}

ncs_settled() {
    [ "$(count_ncs fin-wait-1 "$1" "$2")" -eq 0 ] && [ "$(count_ncs "$3" "$1" "$2")" -eq "$N" ]
}

server_gone() {
    [ "$(count_server close-wait "$1")" -eq 0 ] && [ "$(count_server last-ack "$1")" -eq 0 ]
}

# started PORTFILE: the simulator published its port, or has already given up.
started() { [ -s "$1" ] || ! kill -0 "$server_pid" 2>/dev/null; }

# start_server RUN PORT [VAR=VALUE...]: sets server_pid and server_port.
start_server() {
    local run=$1 port=$2
    shift 2
    rm -f "$tmp/$run.port"
    setsid timeout 60 env "$@" "$FIXTURES/mos_server" --style read --port "$port" \
        --port-file "$tmp/$run.port" >"$tmp/$run.server.out" 2>"$tmp/$run.server.err" &
    server_pid=$!
    wait_until 3000 started "$tmp/$run.port" || true
    [ -s "$tmp/$run.port" ] || return 1
    server_port=$(cat "$tmp/$run.port")
}

# run RUN [VAR=VALUE...]: one full pass; leaves "CLOSE_WAIT FIN_WAIT_2 TIME_WAIT" in $tmp/RUN.
run() {
    local run=$1 port
    shift
    if ! start_server "$run" "$MOS_PORT" "$@"; then
        stop_server
        echo "  (port $MOS_PORT is busy here; using an ephemeral port instead)"
        start_server "$run" 0 "$@" || {
            echo "the simulator did not start:" >&2
            cat "$tmp/$run.server.err" >&2
            exit 1
        }
    fi
    port=$server_port
    echo "  simulator listening on 127.0.0.1:$port; $N NCS connections, each closed by the NCS"
    timeout 60 "$FIXTURES/ncs_client" --port "$port" --count "$N" >"$tmp/$run.ncs" ||
        echo "  warning: some NCS exchanges failed" >&2
    sed -n 's/^local_port=//p' "$tmp/$run.ncs" >"$tmp/$run.ports"
    if [ $# -gt 0 ]; then
        echo "  waiting for the grace period (${GRACE_MS} ms) to pass..."
        wait_until $((GRACE_MS + 5000)) ncs_settled "$port" "$run" time-wait ||
            echo "  warning: not every connection was reclaimed in time" >&2
    else
        wait_until 3000 ncs_settled "$port" "$run" fin-wait-2 || true
    fi
    echo "$(count_server close-wait "$port") $(count_ncs fin-wait-2 "$port" "$run")" \
        "$(count_ncs time-wait "$port" "$run")" >"$tmp/$run"
    cp "$tmp/$run.server.err" "$tmp/$run.stderr"
    stop_server
    # The stopped simulator's sockets close now; wait so the next run starts from a clean slate.
    wait_until 5000 server_gone "$port" || true
}

echo "1. Legacy MOS simulator without libautoclose"
run plain
echo "2. The same, with LD_PRELOAD=$AUTOCLOSE_LIB AUTOCLOSE_GRACE_MS=$GRACE_MS"
run shim LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE_MS"

read -r plain_cw plain_fw2 plain_tw <"$tmp/plain"
read -r shim_cw shim_fw2 shim_tw <"$tmp/shim"
echo
printf '%-34s %14s %14s\n' "after $N NCS disconnects" "without shim" "with shim"
printf '%-34s %14s %14s\n' "CLOSE_WAIT (MOS server side)" "$plain_cw" "$shim_cw"
printf '%-34s %14s %14s\n' "FIN_WAIT_2 (NCS side)" "$plain_fw2" "$shim_fw2"
printf '%-34s %14s %14s\n' "TIME_WAIT  (NCS side)" "$plain_tw" "$shim_tw"
echo
if [ -s "$tmp/shim.stderr" ]; then
    echo "libautoclose's log, first lines:"
    head -n 3 "$tmp/shim.stderr" | sed 's/^/  /'
    echo
fi
cat <<EOF
Each NCS closes its connection first. Without the shim the simulator reads EOF and simply
forgets the descriptor, so its sockets stay in CLOSE_WAIT and every NCS socket waits in
FIN_WAIT_2 until the NCS's kernel gives up on it: this is how a MOS link slowly runs out of
ports and descriptors. With libautoclose preloaded, the same unchanged binary has each
half-closed connection shut down ${GRACE_MS} ms after the EOF: the simulator sends its own FIN,
nothing is left in CLOSE_WAIT or FIN_WAIT_2, and each NCS socket ends in TIME_WAIT, the clean
ending for the side that closed first.
EOF
