#!/usr/bin/env bash
# A local user tries to hold back everyone's reclaims with one process: it leaks a half-closed
# connection, the daemon finds it, and before its grace is over the process gets stuck in execve
# (see t_daemon_exec_stuck). The taker that comes for its socket waits on the process's exec, and
# is stopped after 2 s; but batches go by pid, his is below root's, and the next batch started
# with him again: root's leak, in the same batches, waited 2 s an interval for as long as the
# hold on his user lasted only as long as the stopped taker. Now the process waits out a
# back-off (a minute, doubling), said in the line: root's leak is reclaimed within its grace, one
# stopped taker and a few intervals.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and a process of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

GRACE=1500
INTERVAL=100
LOG="$TMP/daemon.log"
STATS="$TMP/stats.prom"

fuse_stall_up

hport=$(pick_port)
start_bg stuck "${UNPRIVILEGED[@]}" "$FIXTURES/exec_stuck" --port "$hport" \
    --port-file "$TMP/nobody/stuck.port" --file "$TMP/mnt/file" --trigger "$TMP/nobody/go"
wait_until 5000 grep -q '^leaking fd=' "$TMP/stuck.out" || fail "the process did not start"
hpid=$(sed -n 's/^leaking fd=[0-9]* pid=//p' "$TMP/stuck.out")
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port "$hport")" \
    --port-file "$TMP/srv.port"
sport=$(await_port srv)
start_daemon daemon --ports "$hport,$sport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG" --stats-file "$STATS"
dpid=$DAEMON_PID
wait_until 3000 prom_is "$STATS" 1 autoclosed_close_wait pid="$hpid" ||
    fail "the daemon did not find nobody's socket"
touch "$TMP/nobody/go"
wait_until 3000 grep -q "^flush pid=$hpid\$" "$TMP/fuse.out" || fail "the exec did not get stuck"
echo "  nobody's process $hpid, found by the daemon, is now stuck in its exec"

t0=$(now_ms)
client root --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 2000 + 10 * INTERVAL + 2000)) clients_settled "$sport" root || true
require_settled "$sport" "root's leak was not reclaimed beside a process stuck in exec" root
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made"
# Over two more batches' time, no other taker is held up by it (each was, 2 s an interval).
if wait_until 5000 has_lines 2 "stuck on pid=$hpid " "$LOG"; then
    fail "taker after taker stopped on the stuck process:"$'\n'"$(grep "stuck on pid=$hpid " "$LOG")"
fi
line="stuck on pid=$hpid fd=[0-9]*): stopped; that process is left alone for 60 s"
grep -q "$line" "$LOG" || fail "no line says the process is left alone"
grep -m1 "$line" "$LOG" | sed 's/^/    /'

kill -TERM "$dpid" # not stop_daemon: its pgrep would wait on the stuck process
wait_until 2000 gone "$dpid" || fail "autoclosed still running 2 s after SIGTERM"
fuse_down
wait_until 3000 gone "$hpid" || fail "process $hpid still waits once the FUSE connection is aborted"
pass "a process stuck in exec after it was found held back one taker, once"
