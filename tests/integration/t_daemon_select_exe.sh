#!/usr/bin/env bash
# autoclosed --exe PATH selects the processes running that file, looked for again as processes
# come and go. Two copies of the simulator, mosA and mosB, each leak: only mosA's leak is
# reclaimed. Then an upgrade replaces mosA (rm, then cp: a new file under the name): the old
# process still running runs "mosA (deleted)" for the kernel; it is still watched (one line says
# so) and its next leak is reclaimed, and so is the leak of a process started from the new file.
# mosB keeps its leaks throughout.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=300
INTERVAL=100
LOG=$TMP/daemon.log
mkdir "$TMP/bin"
cp "$FIXTURES/mos_server" "$TMP/bin/mosA"
cp "$FIXTURES/mos_server" "$TMP/bin/mosB"

# server NAME BINARY: the simulator, from that copy.
server() { start_bg "$1" "$TMP/bin/$2" --style read --port-file "$TMP/$1.port"; }

# leak PORT CLIENT N: one more leak on PORT (N in all there), proved with ss.
leak() {
    client "$2" --port "$1" --count 1 || fail "client $2 failed"
    wait_until 3000 leaks_n "$1" "$3" "$2" || fail "no leak on $1: $(report_states "$1" "$2")"
}
# shellcheck disable=SC2317 # called through wait_until
leaks_n() { state_is close-wait "$1" server "$2" && client_is fin-wait-2 "$1" 1 "$3"; }

server a mosA
aport=$(await_port a)
apid=$(main_pid a)
server b mosB
bport=$(await_port b)
bpid=$(main_pid b)
start_daemon daemon --exe "$TMP/bin/mosA" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until 2000 has_lines 1 "--exe $TMP/bin/mosA: pid=$apid: watched" "$LOG" ||
    fail "the daemon did not say mosA's process: $(cat "$LOG")"
await_watching "$LOG"
grep -F "watching exe=$TMP/bin/mosA " "$LOG" || fail "the start-up line does not name the executable"

echo "mosA and mosB leak:"
leak "$aport" a1 1
leak "$bport" b1 1
wait_until $((GRACE + 5000)) clients_settled "$aport" a1 || true
require_settled "$aport" "mosA's leak was not reclaimed" a1
assert_eq 1 "$(count_shutdowns "$LOG" "$apid")" "  actions on mosA"

echo "mosA upgraded (rm, then cp):"
rm "$TMP/bin/mosA"
cp "$FIXTURES/mos_server" "$TMP/bin/mosA"
readlink "/proc/$apid/exe" | sed 's/^/  the old process runs: /'
leak "$aport" a2 1
leak "$bport" b2 2
wait_until $((GRACE + 5000)) clients_settled "$aport" a2 || true
require_settled "$aport" "the old mosA's leak after the upgrade was not reclaimed" a2
grep -F "pid=$apid runs the file as it was before it was replaced" "$LOG" ||
    fail "no line says the old process runs the replaced file"
assert_eq 2 "$(count_shutdowns "$LOG" "$apid")" "  actions on the old mosA"

echo "a process started from the new file:"
server c mosA
cport=$(await_port c)
cpid=$(main_pid c)
leak "$cport" c1 1
leak "$bport" b3 3
wait_until $((GRACE + 5000)) clients_settled "$cport" c1 || true
require_settled "$cport" "the new mosA's leak was not reclaimed" c1
assert_eq 1 "$(count_shutdowns "$LOG" "$cpid")" "  actions on the new mosA"

# mosB leaked alongside each of mosA's leaks, all of which were found and reclaimed: it was
# looked at each time, and left alone.
assert_eq 0 "$(count_shutdowns "$LOG" "$bpid")" "  actions on mosB"
assert_eq 3 "$(ss_close_wait_of "$bpid" "$bport")" "  mosB's CLOSE_WAIT sockets"
grep -E -- "--exe " "$LOG" | sed 's/^/    /'
stop_daemon daemon
pass "--exe reclaimed only mosA's leaks, before and after the upgrade (the old process running\
 the replaced file, and a new one); mosB kept its 3"
