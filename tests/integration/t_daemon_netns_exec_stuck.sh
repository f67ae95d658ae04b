#!/usr/bin/env bash
# t_daemon_exec_stuck, in a network namespace of the user's own: nobody makes one (unshare -rn)
# and in it a process that never gets out of execve (a close-on-exec file from a FUSE mount whose
# server never answers FLUSH), holding a half-closed connection on a watched port. autoclosed
# --ports alone looks for every namespace, and that process is the first of its namespace it
# meets: reading which namespace it is in (/proc/PID/ns/net) waits as long as the exec. The
# scanner that reads it is killed and the process left out, with one line; the daemon's own
# process never waits: root's leak on the other watched port is reclaimed within its grace and a
# bounded delay, and SIGTERM ends the daemon within 2 s.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and a process of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"
"${UNPRIVILEGED[@]}" unshare -rn true 2>/dev/null ||
    skip "users cannot make namespaces of their own here (user namespaces closed to them)"

GRACE=1000
INTERVAL=100
LOG="$TMP/daemon.log"
nobody=$(id -u nobody)

fuse_stall_up

# Root's server and the daemon; then nobody's process, stuck in its exec. From then on nothing
# here reads /proc/PID/stat of every process (pgrep, ps, start_daemon and stop_daemon do): it would
# wait as long as the exec.
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/srv.port"
sport=$(await_port srv)
hport=$(pick_port "$sport")
start_daemon daemon --ports "$hport,$sport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG"
dpid=$DAEMON_PID
# shellcheck disable=SC2016 # $0 and $@ are sh's
start_bg stuck "${UNPRIVILEGED[@]}" unshare -rn sh -c 'ip link set lo up && exec "$0" "$@"' \
    "$FIXTURES/exec_stuck" --port "$hport" --port-file "$TMP/nobody/stuck.port" \
    --file "$TMP/mnt/file"
wait_until 5000 grep -q '^leaking fd=' "$TMP/stuck.out" || fail "the stuck process did not start"
hpid=$(sed -n 's/^leaking fd=[0-9]* pid=//p' "$TMP/stuck.out")
wait_until 3000 grep -q "^flush pid=$hpid\$" "$TMP/fuse.out" ||
    fail "the exec of process $hpid did not wait for the FUSE file's FLUSH"
[ "$(stat -c %i /proc/self/net/tcp)" != "$(stat -c %i "/proc/$hpid/net/tcp")" ] ||
    fail "the stuck process is in the test's own network namespace"
rc=0
timeout 0.5 cat "/proc/$hpid/stat" >/dev/null || rc=$?
assert_eq 124 "$rc" "reading its /proc/PID/stat for 0.5 s (124: it waited)"

stuck_line="cannot read pid=$hpid uid=$nobody comm=\"[a-z_]*\": its /proc entries do not answer"
# Nothing is half-closed on the watched ports of the daemon's namespace yet, so no scan for a
# socket's owner reads the process: the look for namespaces, every 5 s, is what meets it.
wait_until 8000 has_lines 1 "$stuck_line" "$LOG" || fail "no line names the stuck process"
grep -E "$stuck_line" "$LOG" | sed 's/^/    /'

# Root's leak, made now, is reclaimed within its grace, the scanner's bound (1 s blocked) and a
# few intervals.
t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 1000 + 5 * INTERVAL + 1500)) clients_settled "$sport" root || true
require_settled "$sport" "root's leak was not reclaimed while nobody's process is stuck in an exec" root
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made; the daemon:" \
    "$(sed -n 's/^State:[[:space:]]*//p' "/proc/$dpid/status")"

# SIGTERM, with the process still stuck.
t0=$(now_ms)
kill -TERM "$dpid"
wait_until 2000 gone "$dpid" || fail "autoclosed still running 2 s after SIGTERM"
stop_ms=$(($(now_ms) - t0))
rc=0
wait_bg daemon || rc=$?
echo "  autoclosed: SIGTERM, exited with status $rc after $stop_ms ms"
assert_eq 0 "$rc" "its exit status"
assert_eq 1 "$(count_lines "$stuck_line" "$LOG")" "lines about the stuck process"

# The connection aborted: the exec goes on, and nothing is left waiting.
fuse_down
wait_until 3000 gone "$hpid" || fail "process $hpid still waits once the FUSE connection is aborted"
left=$(ps -eo stat=,comm= | awk '$2 == "autoclosed-scan"' | wc -l)
assert_eq 0 "$left" "scanners left"
pass "a process stuck in execve in a namespace of its own stopped a scanner, not the daemon:\
 root's leak reclaimed, SIGTERM in $stop_ms ms"
