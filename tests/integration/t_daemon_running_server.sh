#!/usr/bin/env bash
# autoclosed on a server that is already running without the shim and has already leaked: the
# simulator (a thread per connection) leaks N CLOSE_WAIT sockets, proven with ss, while IDLE
# healthy clients stay connected. Then the daemon is started on its pid. Every leak must end
# cleanly on both sides (no CLOSE_WAIT on the server, each peer in TIME_WAIT, none in
# FIN_WAIT_2), each with its action line; the server must be the same process (same pid and
# start time: never restarted), each reclaimed number still open in it; it must keep serving (a
# new session completes, and its own leak is reclaimed in turn); the idle connections must still
# be ESTABLISHED on both sides after all that; SIGTERM stops the daemon with status 0.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

N=5
IDLE=3
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

start_bg server "$FIXTURES/mos_server" --style thread --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
born=$(proc_start "$pid")

# Healthy sessions: a heartbeat each, then they stay connected, idle, for the whole test.
client_bg idle --port "$port" --count $IDLE --parallel --hold-ms 60000
wait_until 5000 has_lines $IDLE '^ok conn=' "$TMP/idle.out" || fail "the idle clients' heartbeats failed"
mapfile -t idle_ports < <(client_ports idle)

client leak --port "$port" --count $N || fail "client exchanges failed"
wait_until 3000 leaking "$port" $N leak || true
echo "without the daemon: $(report_states "$port" leak)"
assert_eq $N "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"
assert_eq $N "$(count_client fin-wait-2 "$port" leak)" "client sockets in FIN_WAIT_2"
assert_eq $IDLE "$(peers_in established "$port" "${idle_ports[@]}")" "idle clients ESTABLISHED"

started=$(now_ms)
start_daemon daemon --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
took=$(($(now_ms) - started))
echo "${took} ms after autoclosed started: $(clients_report "$port" leak)"
require_settled "$port" "autoclosed did not reclaim the leaks within grace + 5 s" leak
assert_eq 0 "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"
assert_eq 0 "$(count_client fin-wait-2 "$port" leak)" "client sockets in FIN_WAIT_2"

wait_until 2000 has_shutdowns $N "$LOG" "$pid" || true
shutdowns "$LOG" | sed 's/^/    /'
assert_eq $N "$(count_shutdowns "$LOG")" "action lines"
check_actions "$LOG" "$pid" "$port" mos_server $GRACE leak
alive "$pid" || fail "the server (pid $pid) is gone"
assert_eq "$born" "$(proc_start "$pid")" "the server's start time (same process, never restarted)"
numbers_still_open "$pid" "${ACTED_FDS[@]}"

# It keeps serving: a new session completes, and its leak is reclaimed in turn.
client after --port "$port" --count 1 || fail "a new session after the reclaim failed"
grep -q '^ok conn=1 round=1' "$TMP/after.out" || fail "the new session got no heartbeat reply"
wait_until $((GRACE + 3000)) clients_settled "$port" after || true
require_settled "$port" "the new session's leak was not reclaimed" after
wait_until 2000 has_shutdowns $((N + 1)) "$LOG" "$pid" || true
assert_eq $((N + 1)) "$(count_shutdowns "$LOG")" "action lines after the new session"

# Several graces and many scans later, the idle connections are still untouched.
assert_eq $IDLE "$(peers_in established "$port" "${idle_ports[@]}")" "idle clients ESTABLISHED"
assert_eq $IDLE "$(servers_in established "$port" "${idle_ports[@]}")" \
    "server sockets of the idle clients ESTABLISHED"
alive "$(main_pid idle)" || fail "the idle clients' process has ended: $(cat "$TMP/idle.err")"

stop_daemon daemon
pass "$N leaks of a running server reclaimed in ${took} ms (grace ${GRACE} ms), peers in\
 TIME_WAIT; same process, still serving; $IDLE idle connections untouched"
