#!/usr/bin/env bash
# A socket handed to a selected process later is found: an acceptor (not selected: it is the
# worker's child, and --no-children leaves the worker's descendants out) holds a
# half-closed connection while the daemon looks for its owner in the selected worker for more
# than three whole looks (it is then counted as another process's), and only then passes it over
# a UNIX socket (SCM_RIGHTS) to the worker, which never closes it. The daemon forgets the sockets
# it counted as others' every 30 looks and looks for them again, so it finds the connection in the
# worker and reclaims it: the peer ends in TIME_WAIT, within 30 looks, three more and the grace
# of the pass, and the worker's number stays open.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"
BOUND=$(((30 + 3 + 3) * INTERVAL + GRACE + 2000))

start_bg srv "$FIXTURES/passed_server" --hold --port-file "$TMP/srv.port"
aport=$(await_port srv)
worker=$(main_pid srv)
wait_until 3000 has_lines 1 '^acceptor pid=' "$TMP/srv.out" || fail "no acceptor"
acceptor=$(sed -n 's/^acceptor pid=//p' "$TMP/srv.out")
start_daemon daemon --pid "$worker" --no-children --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG" \
    --log debug
await_watching "$LOG"

client c1 --port "$aport" --count 1 --no-message || fail "the client failed"
wait_until 3000 has_lines 1 '^held fd=' "$TMP/srv.out" || fail "the acceptor accepted nothing"
wait_until 3000 leaking "$aport" 1 c1 || fail "no leak in the acceptor: $(report_states "$aport" c1)"
assert_eq 1 "$(ss_close_wait_of "$acceptor" "$aport")" "  the acceptor's CLOSE_WAIT sockets"
# Held for eight intervals: three whole looks into the worker find nothing (said at debug level,
# checked below), and the socket is counted as another's.
sleep_ms $((8 * INTERVAL))
scans=$(count_lines "scan pid=$worker " "$LOG")
echo "  held by the acceptor for $((8 * INTERVAL)) ms: $scans scans of the worker"

passed=$(now_ms)
kill -USR1 "$acceptor"
wait_until 3000 has_lines 1 '^received fd=' "$TMP/srv.out" || fail "the worker received nothing"
fd=$(sed -n 's/^received fd=//p' "$TMP/srv.out")
wait_until 3000 has_lines 1 '^passed fd=' "$TMP/srv.out" || fail "the acceptor did not pass"
assert_eq 1 "$(ss_close_wait_of "$worker" "$aport")" "  the worker's CLOSE_WAIT sockets after the pass"
wait_until "$BOUND" clients_settled "$aport" c1 || true
took=$(($(now_ms) - passed))
echo "  ${took} ms after the pass: $(clients_report "$aport" c1)"
require_settled "$aport" "the connection passed to the worker was never reclaimed" c1
wait_until 2000 has_shutdowns 1 "$LOG" "$worker" || true
shutdowns "$LOG" | sed 's/^/    /'
shutdowns "$LOG" "$worker" | grep -q " fd=$fd " || fail "no action line for the worker's fd $fd"
numbers_still_open "$worker" "$fd"
[ "$scans" -ge 3 ] || fail "only $scans scans of the worker before the pass: it was not written off"
stop_daemon daemon
pass "a connection passed to the selected worker after three looks reclaimed ${took} ms after\
 the pass (bound ${BOUND} ms)"
