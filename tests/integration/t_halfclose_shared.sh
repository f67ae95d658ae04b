#!/usr/bin/env bash
# The half-close reply of t_halfclose_reply, served by a forked child while the parent keeps its
# own copy of the socket and never touches it: a socket shared by two processes. Neither process
# may shut it down (that would cut the other's use of it too), during the reply or after: each
# must release only its own copy (log "close ... shared=yes"). Once both copies are gone the
# kernel ends the connection, so the peer still reaches TIME_WAIT and nothing stays in CLOSE_WAIT.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=400
REPLY_MS=1800
N=3
LOG="$TMP/server.log"
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/halfclose_server" --fork \
    --reply-ms $REPLY_MS --chunk-ms 60 --port-file "$TMP/server.port"
port=$(await_port server)
parent=$(main_pid server)

pids=()
clients=()
for i in $(seq 1 "$N"); do
    timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$port" --expect stream \
        --wait 8 >"$TMP/client-$i.out" 2>"$TMP/client-$i.err" &
    pids+=("$!")
    clients+=("client-$i")
done
bad=0
for i in $(seq 1 "$N"); do
    rc=0
    wait "${pids[$((i - 1))]}" || rc=$?
    echo "client $i: $(grep '^reply_bytes=' "$TMP/client-$i.out" || echo 'no result') (exit $rc)"
    [ $rc -ne 3 ] || fail "client $i: the reply was damaged or cut while the socket was shared"
    [ $rc -eq 0 ] || bad=$((bad + 1))
done
sed -n 's/^/  server: /p' "$TMP/server.out"
echo "  parent pid=$parent; children: $(sed -n 's/^forked pid=\([0-9]*\).*/\1/p' \
    "$TMP/server.out" | xargs)"

wait_until 3000 clients_settled "$port" "${clients[@]}" || true
echo "after the replies: $(clients_report "$port" "${clients[@]}")"
echo "  shim actions:"
actions "$LOG" | sed 's/^/    /'
echo "  left alone: $(count_lines 'left alone fd=' "$LOG");" \
    "'still sending' waits: $(count_lines 'waiting fd=[0-9]+: still sending' "$LOG")"

shutdowns=$(actions "$LOG" | grep -c ': shutdown fd=' || true)
assert_eq 0 "$shutdowns" "shutdowns of a socket shared with another process"
# Each connection's copies are released, and the parent's among them.
for c in "${clients[@]}"; do
    cport=$(client_ports "$c")
    n=$(actions "$LOG" | grep -c ": close fd=.* peer=127.0.0.1:$cport .* shared=yes" || true)
    [ "$n" -ge 1 ] || fail "$c (port $cport): no 'close ... shared=yes' for its connection"
done
n=$(actions "$LOG" | grep -c "libautoclose\[$parent\]: close fd=.* shared=yes" || true)
assert_eq "$N" "$n" "releases of its own copies logged by the parent"
[ "$bad" -eq 0 ] || fail "$bad clients saw no EOF after their reply"
require_settled "$port" "the shared connections did not end" "${clients[@]}"
pass "$N replies of ${REPLY_MS} ms whole over shared sockets; each process released its own\
 copy (shared=yes), none shut down; peers in TIME_WAIT"
