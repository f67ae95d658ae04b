#!/usr/bin/env bash
# The sweep in a musl server run as `autoclose -- server`: thread-per-connection handlers answer
# once and then block on a pipe, never reading, polling or closing their sockets again, so no
# wrapper sees the FINs. The musl library's sweep (sock_diag from its timer thread) must find them
# in CLOSE_WAIT after the grace, not before, and end them cleanly (peers in TIME_WAIT). Skipped
# without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$FIXTURES_MUSL/neglect_server" ] ||
    skip "no musl neglect_server in $FIXTURES_MUSL (make integration builds it)"
use_wrapper

GRACE=300
SWEEP=200
N=5
LOG="$TMP/server.log"
start_bg server "$AUTOCLOSE" --grace-ms $GRACE --sweep-ms $SWEEP --log-file "$LOG" -- \
    "$FIXTURES_MUSL/neglect_server" --case stalled --port-file "$TMP/server.port"
port=$(await_port server)
maps_has "$(main_pid server)" "$AUTOCLOSE_LIBMUSL" || fail "the musl library is not loaded"

started=$(now_ms)
client clients --port "$port" --count "$N" --parallel || fail "heartbeat exchanges failed"
snapshot_now "$port"
wait_until 5000 has_lines "$N" '^stalled fd=' "$TMP/server.out" ||
    fail "the handlers did not all stall"
echo "clients done, $N handlers stalled, after $(($(now_ms) - started)) ms (grace ${GRACE} ms)"
leaks_before_grace "$(earliest_stamp "$TMP/server.out")" $GRACE "$N" "$port"

wait_until $((GRACE + SWEEP + 3000)) clients_settled "$port" clients || true
echo "$(($(now_ms) - started)) ms after the clients started: $(clients_report "$port" clients)"
require_settled "$port" "stalled connections not reclaimed within grace + sweep + 3 s" clients
assert_eq "read=0 ready=0 sweep=$N" "$(found_summary "$LOG")" "how the FINs were found"
kill -0 "$(main_pid server)" || fail "the server died"
pass "$N stalled handlers of a musl server reclaimed by the sweep; peers in TIME_WAIT"
