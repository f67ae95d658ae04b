#!/usr/bin/env bash
# A close cancelled by pthread_cancel (a cancel already pending acts before the system call, so
# the connection stays open): the library's close mark on the number must end with the call.
# Otherwise the library waits for that close forever: the leaked connection is never reclaimed,
# and its thread wakes a thousand times a second to look again.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_SWEEP_MS=200 \
    "$FIXTURES/cancel_close" --port-file "$TMP/server.port"
port=$(await_port server)
client c --port "$port" --no-message || fail "client failed"
wait_until 5000 grep -q '^close cancelled; fd=[0-9]* still open: yes' "$TMP/server.out" ||
    fail "the fixture's close was not cancelled with the connection still open: $(cat "$TMP/server.out")"
# The sweep (every 200 ms) finds the connection; one grace (300 ms) later it is reclaimed.
wait_until 4000 reclaimed "$port" 1 c ||
    fail "the connection whose close was cancelled was never reclaimed: $(report_states "$port" c)"
# Released (the cancelled close already counted the number as no longer this process's alone,
# the safe side) or shut down: either way reclaimed, and logged.
grep -Eq '(shutdown|close) fd=.* found=sweep' "$TMP/server.err" || fail "no reclaim logged"
# And the library's thread is asleep, not polling the close mark.
pid=$(main_pid server)
tid=$(grep -l '^autoclose$' /proc/"$pid"/task/*/comm | head -n 1 | cut -d/ -f5)
[ -n "$tid" ] || fail "no autoclose thread in the server"
before=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$pid/task/$tid/status")
sleep 1
after=$(awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$pid/task/$tid/status")
echo "  the library's thread woke $((after - before)) times in 1 s"
[ $((after - before)) -lt 50 ] || fail "the library's thread woke $((after - before)) times in 1 s"
pass "a cancelled close leaves no mark behind: the connection is reclaimed, the thread sleeps"
