#!/usr/bin/env bash
# Many threads log at once and every line still reaches AUTOCLOSE_LOG_FILE: a thread per
# connection, AUTOCLOSE_LOG=debug (each thread logs the FIN it read, the timer logs each action),
# and 20 peers disconnecting together (40 lines, within the rate limit's burst of 50). A line
# that meets another thread's line in progress waits for it; none goes to stderr instead.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=20
LOG=$TMP/shim.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG=debug \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/mos_server" --style thread --port-file "$TMP/server.port"
port=$(await_port server)
client clients --port "$port" --count "$N" || fail "client exchanges failed"
wait_until $((GRACE + 5000)) reclaimed "$port" "$N" clients ||
    fail "not reclaimed: $(report_states "$port" clients)"
wait_until 2000 has_lines "$N" 'shutdown fd=' "$LOG" || true

pending=$(count_lines 'pending fd=' "$LOG")
acted=$(count_lines 'shutdown fd=' "$LOG")
elsewhere=$(count_lines 'libautoclose\[' "$TMP/server.err")
echo "  log file: $pending 'pending' lines, $acted 'shutdown' lines; server's stderr: $elsewhere"
grep 'suppressed' "$LOG" && fail "the rate limit dropped lines (burst 50): the test is too large"
assert_eq "$N" "$pending" "'pending fd=' lines in the log file (one per connection, from $N threads)"
assert_eq "$N" "$acted" "'shutdown fd=' lines in the log file"
assert_eq 0 "$elsewhere" "shim lines on the server's stderr"
pass "$((pending + acted)) lines from $N threads and the timer, all in the log file"
