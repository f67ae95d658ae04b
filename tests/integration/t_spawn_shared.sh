#!/usr/bin/env bash
# Neither a server nor a process it starts without fork may cut a connection the other still
# uses. The peer sends a request and half-closes (legal TCP: the reply is still wanted); the
# answer comes 2 s later, well past the 300 ms grace, from whichever process was meant to give it.
#  C1 (inherited through exec): a server without the shim starts a helper under the shim that
#     inherits the connection and only sleeps; the server answers and closes. The helper's sweep
#     finds the socket in CLOSE_WAIT, but the socket is not the helper's alone.
#  C2 (spawned by a server under the shim): the server hands the connection to a child without
#     the shim (posix_spawn; system("... &"); popen), which answers and exits; the server never
#     closes its own copy. No fork handler runs for these, yet the socket is shared: the server
#     may only let go of its copy (close ... shared=yes), after which nothing stays in CLOSE_WAIT.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=100
REPLY_MS=2000
cut=()

# run_client NAME PORT: reply_client half-closes at once and wants one whole heartbeat and the
# server's FIN (the last copy of the socket gone) within 8 s. Sets rc.
run_client() {
    rc=0
    timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$2" --expect heartbeat \
        --wait 8 >"$TMP/$1.out" 2>"$TMP/$1.err" || rc=$?
    echo "  $1: $(grep '^reply_bytes=' "$TMP/$1.out" || echo 'no result') (exit $rc)"
}

# C1: the server has no shim; the helper it spawns has, and holds an inherited copy.
start_bg helper-server "$FIXTURES/spawn_server" --mode helper --reply-ms $REPLY_MS \
    --port-file "$TMP/helper-server.port" --helper-env LD_PRELOAD="$AUTOCLOSE_LIB" \
    --helper-env AUTOCLOSE_GRACE_MS=$GRACE --helper-env AUTOCLOSE_SWEEP_MS=$SWEEP \
    --helper-env AUTOCLOSE_LOG=debug --helper-env AUTOCLOSE_LOG_FILE="$TMP/helper.log"
port=$(await_port helper-server)
echo "C1: inherited through exec by a helper under the shim"
run_client helper-client "$port"
sed -n 's/^/    server: /p' "$TMP/helper-server.out"
actions "$TMP/helper.log" | sed 's/^/    helper: /'
# Whatever the helper does with its copy, the reply must arrive whole, and then the server's FIN.
[ "$rc" -eq 0 ] || cut+=("C1 helper (exit $rc)")

# C2: the server is under the shim and hands the connection to a child without it.
for how in spawn system popen; do
    name=server-$how
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_SWEEP_MS=$SWEEP AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/$name.log" \
        "$FIXTURES/spawn_server" --mode "$how" --reply-ms $REPLY_MS --port-file "$TMP/$name.port"
    port=$(await_port "$name")
    echo "C2 ($how): handed to a child without the shim"
    run_client "client-$how" "$port"
    wait_until 3000 clients_settled "$port" "client-$how" || true
    sed -n 's/^/    server: /p' "$TMP/$name.out"
    actions "$TMP/$name.log" | sed 's/^/    shim: /'
    released=$(count_lines 'close fd=[0-9]+.*shared' "$TMP/$name.log")
    echo "    $(clients_report "$port" "client-$how");" \
        "releases of the server's copy (shared): $released (expected 1)"
    if [ "$rc" -ne 0 ]; then
        cut+=("C2 $how (exit $rc)")
    elif [ "$released" -lt 1 ] || ! clients_settled "$port" "client-$how"; then
        cut+=("C2 $how: the server's copy was not released")
    fi
done

[ ${#cut[@]} -eq 0 ] || fail "a connection shared with a spawned process was cut: ${cut[*]}"
pass "replies ${REPLY_MS} ms after a half-close arrived whole from a helper's parent and from\
 posix_spawn, system and popen children; the server's copies released (shared=yes); peers in\
 TIME_WAIT"
