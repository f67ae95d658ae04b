#!/usr/bin/env bash
# A server whose main thread exits (pthread_exit) while another thread goes on serving. The
# timer, started while the main thread was alive, has a descriptor table of its own and reaches
# the server's through the main thread's pidfd; once that thread is gone it must reach them
# through a remaining thread (Linux 6.9+), or, on an older kernel, hand over to a timer that
# shares the table at the server's next accept. Either way the leak is reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=500
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    AUTOCLOSE_LOG_FILE="$TMP/server.log" AUTOCLOSE_LOG=debug "$FIXTURES/main_exit_server" \
    --port-file "$TMP/server.port"
port=$(await_port server)
# hold PORT [half-close]: a connection held open for 30 s, optionally after a FIN.
hold() {
    python3 - "$@" <<'PY' &
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
if ! wait_until $((GRACE + 2000)) state_is close-wait "$port" server 0; then
    # A kernel without PIDFD_THREAD: the next accept hands over to a sharing timer.
    echo "not reclaimed through a remaining thread; connecting once more (kernel $(uname -r))"
    hold "$port"
fi
wait_until $((2 * GRACE + 3000)) state_is close-wait "$port" server 0 ||
    fail "the leaked connection stayed in CLOSE_WAIT: $(report_states "$port")"
grep -q "shutdown fd=$leak_fd " "$TMP/server.log" || fail "no shutdown logged for fd $leak_fd"
if [[ $AUTOCLOSE_LIB != *libtsan* ]]; then # under ThreadSanitizer the timer always shares
    assert_eq 0 "$(count_lines 'timer shares the descriptor table' "$TMP/server.log")" \
        "lines saying the timer started without a table of its own"
fi
pass "a leak reclaimed after the main thread exited"
