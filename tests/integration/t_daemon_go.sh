#!/usr/bin/env bash
# A leaking server written in Go (tests/fixtures/go/: it reads each connection to the peer's FIN
# and never closes it). Go's runtime makes its own system calls, through its own poller, so no
# preloaded library sees them; autoclosed must reclaim its connections all the same, and the
# server must keep running and accepting.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

if [ ! -x "$FIXTURES/go_leaky_server" ]; then
    command -v go >/dev/null || skip "go is not installed (scripts/install-deps.sh installs golang-go)"
    fail "go is installed but $FIXTURES/go_leaky_server is not built (make fixtures)"
fi

N=5
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

start_bg server "$FIXTURES/go_leaky_server" -port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
born=$(proc_start "$pid")

client leak --port "$port" --count $N --no-message || fail "client connections failed"
wait_until 3000 leaking "$port" $N leak || true
echo "without the daemon: $(report_states "$port" leak)"
assert_eq $N "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"
assert_eq $N "$(count_lines '^eof peer_port=' "$TMP/server.out")" "EOFs the Go server read"

started=$(now_ms)
start_daemon daemon --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
took=$(($(now_ms) - started))
echo "${took} ms after autoclosed started: $(clients_report "$port" leak)"
require_settled "$port" "autoclosed did not reclaim the Go server's leaks" leak
wait_until 2000 has_shutdowns $N "$LOG" "$pid" || true
check_actions "$LOG" "$pid" "$port" go_leaky_server $GRACE leak
assert_eq $N "${#ACTED_FDS[@]}" "action lines"
numbers_still_open "$pid" "${ACTED_FDS[@]}"
assert_eq "$born" "$(proc_start "$pid")" "the server's start time (same process)"

# Still accepting, and its next leak is reclaimed too.
client after --port "$port" --no-message || fail "a new connection after the reclaim failed"
wait_until 3000 has_lines $((N + 1)) '^eof peer_port=' "$TMP/server.out" ||
    fail "the Go server did not read the new connection's EOF"
wait_until $((GRACE + 3000)) clients_settled "$port" after || true
require_settled "$port" "the new connection's leak was not reclaimed" after
stop_daemon daemon
pass "$N leaks of a Go server reclaimed in ${took} ms (grace ${GRACE} ms); still accepting"
