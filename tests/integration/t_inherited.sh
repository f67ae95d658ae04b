#!/usr/bin/env bash
# A connection that arrives through exec: the parent accepts, forks, and execs a handler with the
# connection on fds 0 and 1 (inetd-style; t_inherited_fd3.sh puts it on fd 3), then closes its
# own copy. The handler never accepts or connects; it answers once and then sleeps, never
# reading again. Only the sweep can find its half-closed connection, and the sweep must be
# running in a process that never made a connection of its own: the shim starts it at load when
# fds 0-2 hold a TCP socket.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

HANDOFF=${INHERITED_HANDOFF:-stdio}
GRACE=300
SWEEP=200
N=3
LOG="$TMP/server.log"
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/neglect_server" --case inherited --handoff "$HANDOFF" \
    --port-file "$TMP/server.port"
port=$(await_port server)
parent=$(main_pid server)

started=$(now_ms)
client clients --port "$port" --count "$N" --parallel || fail "heartbeat exchanges failed"
snapshot_now "$port"
wait_until 2000 has_lines "$N" '^handler pid=[0-9]+ answered once' "$TMP/server.err" ||
    fail "the handlers did not all answer"
leaks_before_grace "$(earliest_stamp "$TMP/server.err")" $GRACE "$N" "$port"
mapfile -t handlers < <(sed -n 's/^handed fd=[0-9]* to pid=\([0-9]*\) .*/\1/p' "$TMP/server.out")
echo "handlers (exec'd, connection on $HANDOFF): ${handlers[*]}; parent $parent"

wait_until $((GRACE + SWEEP + 3000)) clients_settled "$port" clients || true
took=$(($(now_ms) - started))
echo "${took} ms after the clients started: $(clients_report "$port" clients)"
for pid in "${handlers[@]}"; do
    echo "  handler $pid: threads: $(cat /proc/"$pid"/task/*/comm 2>/dev/null | xargs);" \
        "fds 0,1,3: $(fd_holds "$pid" 0) $(fd_holds "$pid" 1) $(fd_holds "$pid" 3)"
done
echo "  shim actions: $(actions "$LOG" | wc -l); found: $(found_summary "$LOG")"
actions "$LOG" | sed 's/^/    /'

require_settled "$port" \
    "connections inherited on $HANDOFF not reclaimed within grace + sweep + 3 s" clients
# Born elsewhere, the socket may be held by another process too: each number that holds it is
# released, never shut down (stdio: fds 0 and 1, two numbers per handler).
numbers=1
[ "$HANDOFF" = stdio ] && numbers=2
assert_eq "read=0 ready=0 sweep=$((N * numbers))" "$(found_summary "$LOG")" "how the FINs were found"
assert_eq 0 "$(actions "$LOG" | grep -vc 'close fd=.* shared=yes' || true)" \
    "actions other than a release of a shared number"
assert_eq 0 "$(actions "$LOG" | grep -c "libautoclose\[$parent\]" || true)" \
    "actions by the parent (it kept no copy)"
pass "$N connections inherited through exec on $HANDOFF reclaimed by the handlers' sweep in\
 ${took} ms; peers in TIME_WAIT"
