#!/usr/bin/env bash
# autoclosed never cuts a program still reading (slow_reader_lib.sh): the two servers run without
# the library, the daemon watches both; the reader must get every byte and answer, the quitter be
# shut down ten graces after its last read.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
# shellcheck source=slow_reader_lib.sh
. "$(dirname "$0")/slow_reader_lib.sh"
need_daemon

LOG="$TMP/daemon.log"
start_slow_readers
rpid=$(main_pid reader)
qpid=$(main_pid quitter)
start_daemon daemon --pid "$rpid,$qpid" --grace-ms $GRACE --interval-ms 100 --log debug \
    --log-file "$LOG"
send_requests

check_reader
waits=$(count_lines "waiting pid=$rpid fd=[0-9]+: " "$LOG")
echo "  daemon's log: $waits 'waiting' lines for the reader"
[ "$waits" -ge 1 ] || fail "the daemon never looked at the reader's connection while it read"
assert_eq 0 "$(count_shutdowns "$LOG" "$rpid")" "actions on the reader"

check_quitter
wait_until 2000 has_shutdowns 1 "$LOG" "$qpid" || true
shutdowns "$LOG" | sed 's/^/    /'
assert_eq 1 "$(count_shutdowns "$LOG" "$qpid")" "actions on the quitter"
stop_daemon daemon
pass "a ${REQUEST} B request read over ${HOLD}+ ms arrived whole and was answered; a reader that\
 stopped was shut down ${QUIT_CUT_MS} ms after its last read"
