#!/usr/bin/env bash
# A thread-per-connection server whose handlers answer the first message and then block forever
# on something unrelated (a pipe): nothing ever reads, polls or closes those sockets again, so no
# wrapper sees the peers' FINs. The sweep must find them in CLOSE_WAIT and reclaim them within a
# few seconds, after the grace, leaving the peers in TIME_WAIT.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=200
N=5
LOG="$TMP/server.log"
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/neglect_server" --case stalled \
    --port-file "$TMP/server.port"
port=$(await_port server)

started=$(now_ms)
client clients --port "$port" --count "$N" --parallel || fail "heartbeat exchanges failed"
snapshot_now "$port"
wait_until 5000 has_lines "$N" '^stalled fd=' "$TMP/server.out" ||
    fail "the handlers did not all stall"
echo "clients done, $N handlers stalled, after $(($(now_ms) - started)) ms (grace ${GRACE} ms)"
leaks_before_grace "$(earliest_stamp "$TMP/server.out")" $GRACE "$N" "$port"

wait_until $((GRACE + SWEEP + 3000)) clients_settled "$port" clients || true
took=$(($(now_ms) - started))
echo "${took} ms after the clients started: $(clients_report "$port" clients)"
echo "  shim actions: $(actions "$LOG" | wc -l); found: $(found_summary "$LOG")"
actions "$LOG" | sed 's/^/    /'
require_settled "$port" "stalled connections not reclaimed within grace + sweep + 3 s" clients
assert_eq "read=0 ready=0 sweep=$N" "$(found_summary "$LOG")" "how the FINs were found"
assert_eq "$N" "$(actions "$LOG" | grep -c ': shutdown fd=' || true)" "shutdowns"
kill -0 "$(main_pid server)" || fail "the server died"
pass "$N stalled handlers' connections reclaimed by the sweep in ${took} ms; peers in TIME_WAIT"
