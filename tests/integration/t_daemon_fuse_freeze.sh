#!/usr/bin/env bash
# A local user tries to freeze autoclosed: his process (run as nobody) leaks a half-closed
# connection on a watched port and, once the daemon has found it, moves the socket to another
# number and puts there a file from a FUSE mount whose server never answers FLUSH. Whoever takes
# that file with pidfd_getfd and closes it waits for ever, SIGKILL or not. The daemon must not:
# the file is taken by its short-lived taker, which is left stuck in D, while the daemon itself
# goes on: a second leak (root's server) is reclaimed within its grace; one line names the user's
# process, his uid and the stuck taker (which not even SIGKILL ends); once the FUSE connection is aborted the moved socket is
# found at its new number and reclaimed too; and SIGTERM ends the daemon within 2 s.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "mounting a FUSE file system, and an attacker of another user"
[ -c /dev/fuse ] || skip "no /dev/fuse here"

GRACE=1500 # long enough to move the socket after the daemon has found it
INTERVAL=100
LOG="$TMP/daemon.log"
STATS="$TMP/stats.prom"
nobody=$(id -u nobody)

fuse_stall_up

# A port below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg srv "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/srv.port"
sport=$(await_port srv)
start_bg holder "${UNPRIVILEGED[@]}" "$FIXTURES/fuse_swap" --port "$(pick_port "$sport")" --port-file "$TMP/nobody/holder.port" \
    --file "$TMP/mnt/file" --trigger "$TMP/nobody/swap"
wait_for_file "$TMP/nobody/holder.port" || fail "the holder published no port"
cp "$TMP/nobody/holder.port" "$TMP/holder.port"
hport=$(await_port holder)
hpid=$(main_pid holder)
fd=$(sed -n 's/^leaking fd=//p' "$TMP/holder.out")
[ -n "$fd" ] || fail "the holder did not leak"

start_daemon daemon --ports "$hport,$sport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG" --stats-file "$STATS"
dpid=$DAEMON_PID
# Found: the gauge counts the holder's socket. Then the swap, well within the grace.
wait_until 3000 prom_is "$STATS" 1 autoclosed_close_wait pid="$hpid" ||
    fail "the daemon did not find the holder's socket"
touch "$TMP/nobody/swap"
wait_until 2000 grep -q '^moved' "$TMP/holder.out" || fail "the holder did not swap"
moved=$(sed -n 's/^moved fd=[0-9]* to fd=//p' "$TMP/holder.out")
echo "  the holder (pid $hpid, uid $nobody) moved its socket from fd $fd to fd $moved" \
    "and put the FUSE file on fd $fd"

# The grace ends: the taker takes the file, sees it is not the socket, and its exit waits for
# the FLUSH.
wait_until $((GRACE + 3000)) grep -q '^flush pid=' "$TMP/fuse.out" ||
    fail "nothing closed the FUSE file"
# FUSE names the thread that closed; its process is the one that matters (under TSan the last
# thread out, which closes the files, may be the runtime's own).
tid=$(sed -n 's/^flush pid=//p' "$TMP/fuse.out" | head -n 1)
taker=$(sed -n 's/^Tgid:[[:space:]]*//p' "/proc/$tid/status")
[ -n "$taker" ] || fail "the thread $tid that closed the FUSE file is gone"

# The daemon goes on: root's leak, made now, is reclaimed within its grace.
t0=$(now_ms)
client second --port "$sport" --count 1 || fail "client exchange with root's server failed"
wait_until $((GRACE + 3 * INTERVAL + 2000)) clients_settled "$sport" second || true
require_settled "$sport" "a second leak was not reclaimed while the taker is stuck" second
echo "  root's leak reclaimed $(($(now_ms) - t0)) ms after it was made"
[ "$taker" != "$dpid" ] || fail "the daemon itself closed the FUSE file: it is frozen"
ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$taker/status")
echo "  the FLUSH came from pid $taker (parent $ppid, waiting in $(cat "/proc/$tid/wchan"));" \
    "the daemon: $(sed -n 's/^State:[[:space:]]*//p' "/proc/$dpid/status")"
assert_eq "$dpid" "$ppid" "the stuck process's parent"
assert_eq autoclosed-take "$(cat "/proc/$taker/comm")" "its name"
# What would have become of the daemon: SIGKILL does not end the wait.
kill -KILL "$taker"
sleep_ms 300
alive "$tid" || fail "the taker ended on SIGKILL: the FUSE file did not block its close"
echo "  300 ms after SIGKILL the taker still waits in $(cat "/proc/$tid/wchan")"

# One line names the process, its uid and the stuck taker; its moved socket waits meanwhile.
held="waiting pid=$hpid uid=$nobody comm=\"fuse_swap\": a file whose close blocks"
wait_until 3000 has_lines 1 "$held" "$LOG" || fail "no line says why the holder's socket waits"
grep -F "$held" "$LOG" | grep -q "taker (pid $taker) is stuck" || fail "the line names no taker"
assert_eq 1 "$(ss_close_wait_of "$hpid" "$hport")" "the moved socket, still in CLOSE_WAIT"

# The connection aborted, the taker ends, and the socket is reclaimed at its new number.
kill -KILL "$(main_pid fuse)"
wait_bg fuse 2>/dev/null || true
wait_until 3000 gone "$tid" || fail "the taker did not end once the FUSE connection was aborted"
wait_until 3000 has_lines 1 "shutdown pid=$hpid fd=$moved " "$LOG" ||
    fail "the moved socket was not reclaimed at fd $moved"
assert_eq 0 "$(ss_close_wait_of "$hpid" "$hport")" "the holder's sockets in CLOSE_WAIT"
sed 's/^/    /' "$LOG"
stop_daemon daemon
assert_eq 1 "$(count_lines 'a file whose close blocks' "$LOG")" "lines about the blocking file"
pass "a FUSE file put on a watched socket's number froze one taker, not the daemon"
