#!/usr/bin/env bash
# A server whose main thread exits (pthread_exit) while another thread goes on serving. The
# timer, started while the main thread was alive, shares the descriptor table of the threads that
# remain, and its sweep lists /proc/thread-self/fd, which stays readable when the main thread's
# /proc/self/fd does not: a leak read after the exit, and one never read, are both reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=500
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_LOG_FILE="$TMP/server.log" AUTOCLOSE_LOG=debug "$FIXTURES/main_exit_server" \
    --port-file "$TMP/server.port"
port=$(await_port server)
# hold PORT [half-close]: a connection held open for 30 s, optionally after a FIN. setsid: the
# holder leads a process group of its own, which is what cleanup kills.
hold() {
    setsid python3 - "$@" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
if len(sys.argv) > 2:
    s.shutdown(socket.SHUT_WR)
time.sleep(30)
PY
    STARTED+=("$!")
}
hold "$port" # the main thread's own connection: its accept starts the timer
wait_until 3000 grep -q '^main thread exits' "$TMP/server.out" || fail "the main thread never left"
pid=$(main_pid server)
wait_until 3000 grep -q '^State:.*zombie' "/proc/$pid/status" ||
    fail "the main thread is not gone: $(grep State "/proc/$pid/status")"
echo "main thread exited; $(($(ls "/proc/$pid/task" | wc -l) - 1)) threads go on"

hold "$port" half-close # the leak: the serving thread reads its EOF and keeps it
wait_until 3000 grep -q '^eof fd=' "$TMP/server.out" || fail "the server never read the EOF"
leak_fd=$(sed -n 's/^eof fd=\([0-9]*\).*/\1/p' "$TMP/server.out")
wait_until $((GRACE + 2000)) state_is close-wait "$port" server 0 ||
    fail "the leaked connection stayed in CLOSE_WAIT: $(report_states "$port")"
grep -q "shutdown fd=$leak_fd " "$TMP/server.log" || fail "no shutdown logged for fd $leak_fd"
pass "a leak reclaimed after the main thread exited"
