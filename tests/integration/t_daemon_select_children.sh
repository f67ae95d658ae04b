#!/usr/bin/env bash
# A selected process's descendants are selected too: autoclosed --pid of a forking server (the
# simulator, a child per connection, the parent closing its copy) reclaims the child's leak. With
# --no-children the child's leak stays, while the leak of another selected process, made at the
# same time, is reclaimed and the parent is scanned at each look. As root, the same without the
# kernel's /proc/PID/task/TID/children files (hidden from the daemon in a mount namespace of its
# own, as on a kernel built without CONFIG_PROC_CHILDREN): the parents read from /proc/PID/status
# stand in, and the child's leak is reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=300
INTERVAL=100

start_bg forking "$FIXTURES/mos_server" --style fork --port-file "$TMP/forking.port"
fport=$(await_port forking)
fpid=$(main_pid forking)
start_bg witness "$FIXTURES/mos_server" --style read --port-file "$TMP/witness.port"
wport=$(await_port witness)
wpid=$(main_pid witness)

# fork_leak CLIENT N: one more connection to the forking server; its child leaks it (N children
# so far). Sets CHILD.
fork_leak() {
    client "$1" --port "$fport" --count 1 || fail "client $1 failed"
    wait_until 3000 has_lines "$2" '^forked pid=' "$TMP/forking.out" || fail "the server did not fork"
    CHILD=$(sed -n 's/^forked pid=\([0-9]*\) .*/\1/p' "$TMP/forking.out" | tail -n 1)
    wait_until 3000 has_close_wait "$CHILD" || fail "child $CHILD did not leak: $(report_states "$fport" "$1")"
}
# shellcheck disable=SC2317 # called through wait_until
has_close_wait() { [ "$(ss_close_wait_of "$1" "$fport")" -eq 1 ]; }

echo "--pid $fpid (the parent), descendants covered by default:"
fork_leak c1 1
start_daemon kids --pid "$fpid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$TMP/kids.log"
wait_until $((GRACE + 5000)) clients_settled "$fport" c1 || true
require_settled "$fport" "the child's leak was not reclaimed with --pid of its parent" c1
assert_eq 1 "$(count_shutdowns "$TMP/kids.log" "$CHILD")" "  actions on child $CHILD"
grep -F "watching pid=$fpid ports=any " "$TMP/kids.log" || fail "the start-up line is not the selection"
stop_daemon kids

echo "--no-children:"
LOG=$TMP/none.log
start_daemon none --pid "$fpid" --pid "$wpid" --no-children --grace-ms $GRACE \
    --interval-ms $INTERVAL --log debug --log-file "$LOG"
await_watching "$LOG"
grep -F "watching pid=$fpid,$wpid children=no ports=any " "$LOG" ||
    fail "the start-up line does not say children=no"
fork_leak c2 2
client w1 --port "$wport" --count 1 || fail "client w1 failed"
wait_until $((GRACE + 5000)) clients_settled "$wport" w1 || true
require_settled "$wport" "the other selected process's leak was not reclaimed" w1
# Each look at the child's new socket scans the parent: three looks and it counts as another's.
wait_until 3000 has_lines 3 ": scan pid=$fpid fds=" "$LOG" || fail "the parent was not scanned"
echo "  the parent scanned $(count_lines ": scan pid=$fpid fds=" "$LOG") times, the witness's leak reclaimed"
assert_eq 0 "$(count_shutdowns "$LOG" "$CHILD")" "  actions on child $CHILD"
assert_eq 1 "$(ss_close_wait_of "$CHILD" "$fport")" "  child $CHILD's CLOSE_WAIT sockets"
stop_daemon none

if [ "$(id -u)" -ne 0 ]; then
    pass "--pid of the parent reclaimed its forked child's leak; --no-children left it (the case\
 without /proc/PID/task/TID/children needs root: not run)"
fi
echo "no /proc/PID/task/TID/children (hidden from the daemon):"
LOG=$TMP/hidden.log
# shellcheck disable=SC2016 # expanded by the inner shell, which becomes the daemon
start_bg hidden unshare -m --propagation private bash -c \
    'mount -t tmpfs none "/proc/$$/task" && exec "$@"' _ "$AUTOCLOSED" --pid "$fpid" \
    --grace-ms $GRACE --interval-ms $INTERVAL --log debug --log-file "$LOG"
wait_until 2000 has_lines 1 'watching' "$LOG" || fail "the daemon did not start: $(cat "$TMP/hidden.err")"
hpid=$(main_pid hidden) # unshare, then bash, then the daemon: one process
if [ -z "$hpid" ] || nsenter -t "$hpid" -m test -e "/proc/$hpid/task/$hpid/children"; then
    fail "the children file is not hidden from the daemon"
fi
fork_leak c3 3
wait_until $((GRACE + 5000)) clients_settled "$fport" c3 || true
require_settled "$fport" "the child's leak was not reclaimed without the children files" c3
assert_eq 1 "$(count_shutdowns "$LOG" "$CHILD")" "  actions on child $CHILD"
pass "--pid of the parent reclaimed its forked children's leaks (with and without\
 /proc/PID/task/TID/children); --no-children left the child's alone"
