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
wait_until 2000 has_lines "$N" '^stalled fd=' "$TMP/server.out" ||
    fail "the handlers did not all stall"
elapsed=$(($(now_ms) - started))
echo "clients done, $N handlers stalled, after ${elapsed} ms (grace ${GRACE} ms)"
[ "$elapsed" -lt $((GRACE / 2)) ] || fail "too slow to look before the grace"
echo "before the grace: $(clients_report "$port" clients)"
state_is close-wait "$port" server "$N" || fail "not $N CLOSE_WAIT before the grace"

wait_until $((GRACE + SWEEP + 3000)) clients_settled "$port" clients || true
took=$(($(now_ms) - started))
echo "${took} ms after the first disconnect: $(clients_report "$port" clients)"
echo "  shim actions: $(actions "$LOG" | wc -l); found: $(found_summary "$LOG")"
actions "$LOG" | sed 's/^/    /'
clients_settled "$port" clients ||
    fail "stalled connections not reclaimed within grace + sweep + 3 s"
assert_eq "read=0 ready=0 sweep=$N" "$(found_summary "$LOG")" "how the FINs were found"
assert_eq "$N" "$(actions "$LOG" | grep -c ': shutdown fd=' || true)" "shutdowns"
kill -0 "$(main_pid server)" || fail "the server died"
pass "$N stalled handlers' connections reclaimed by the sweep in ${took} ms; peers in TIME_WAIT"
