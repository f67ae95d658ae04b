#!/usr/bin/env bash
# A stats file that cannot be written (its directory does not exist) is said once, with the
# reason, by the library (AUTOCLOSE_STATS_FILE) and by autoclosed (--stats-file); once the
# directory exists the daemon writes the file at its next interval.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_shim

GRACE=300
INTERVAL=100
MISSING=$TMP/not-yet
reason='No such file or directory'

echo "the library:"
start_bg lib LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_STATS_FILE="$MISSING/libautoclose.prom" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/lib.port"
lport=$(await_port lib)
client lc --port "$lport" --count 2 || fail "client exchange failed"
wait_until $((GRACE + 5000)) clients_settled "$lport" lc || true
require_settled "$lport" "the library did not reclaim the leaks" lc
wait_until 3000 has_lines 1 'cannot write AUTOCLOSE_STATS_FILE=' "$TMP/lib.err" ||
    fail "the library did not say that its stats file cannot be written"
grep 'cannot write' "$TMP/lib.err" | sed 's/^/    /'
grep -qF "cannot write AUTOCLOSE_STATS_FILE='$MISSING/libautoclose.prom': $reason" "$TMP/lib.err" ||
    fail "the library's line does not give the reason"

echo "autoclosed:"
start_bg plain "$FIXTURES/mos_server" --style read --port-file "$TMP/plain.port"
pport=$(await_port plain)
ppid=$(main_pid plain)
start_daemon daemon --pid "$ppid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --stats-file "$MISSING/autoclosed.prom" --log-file "$TMP/daemon.log"
wait_until 3000 has_lines 1 'cannot write --stats-file' "$TMP/daemon.log" ||
    fail "the daemon did not say that its stats file cannot be written"
client pc --port "$pport" --count 1 || fail "client exchange failed"
wait_until $((GRACE + 5000)) clients_settled "$pport" pc || true
require_settled "$pport" "autoclosed did not reclaim the leak" pc
grep 'cannot write' "$TMP/daemon.log" | sed 's/^/    /'
grep -qF "cannot write --stats-file '$MISSING/autoclosed.prom': $reason" "$TMP/daemon.log" ||
    fail "the daemon's line does not give the reason"
assert_eq 1 "$(count_lines 'cannot write' "$TMP/daemon.log")" "lines about it (said once)"
mkdir "$MISSING"
wait_until 3000 prom_is "$MISSING/autoclosed.prom" 1 autoclosed_reclaimed_total ||
    fail "the daemon did not write its stats file once the directory existed"
stop_daemon daemon
pass "a stats file that cannot be written is said with the reason ($reason), library and daemon"
