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

reclaim_leaks_of "$pid" "$port" go_leaky_server "Go server" --no-message
assert_eq $N "$(count_lines '^eof peer_port=' "$TMP/server.out")" "EOFs the Go server read"
assert_eq "$born" "$(proc_start "$pid")" "the server's start time (same process)"

# Still accepting, and its next leak is reclaimed too.
client after --port "$port" --no-message || fail "a new connection after the reclaim failed"
wait_until 3000 has_lines $((N + 1)) '^eof peer_port=' "$TMP/server.out" ||
    fail "the Go server did not read the new connection's EOF"
wait_until $((GRACE + 3000)) clients_settled "$port" after || true
require_settled "$port" "the new connection's leak was not reclaimed" after
stop_daemon daemon
pass "$N leaks of a Go server reclaimed in ${TOOK} ms (grace ${GRACE} ms); still accepting"
