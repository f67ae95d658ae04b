#!/usr/bin/env bash
# autoclosed --once: with leaks present it waits out their grace, reclaims them and exits 0,
# within the grace and a bound, and not before the grace has passed since the peers' FIN; with
# nothing half-closed it exits 0 at once, well within the default grace of 5 s (a healthy
# connection present).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

N=3
GRACE=1000
INTERVAL=100
BOUND=2000

start_bg server "$FIXTURES/mos_server" --style thread --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)

echo "nothing half-closed (one healthy connection, idle), the default grace (5000 ms):"
client_bg idle --port "$port" --count 1 --hold-ms 60000
wait_until 5000 has_lines 1 '^ok conn=' "$TMP/idle.out" || fail "the idle client's heartbeat failed"
run_daemon empty --once --pid "$pid" --interval-ms $INTERVAL
empty_ms=$RUN_MS
echo "  exit $RUN_RC after ${empty_ms} ms"
assert_eq 0 "$RUN_RC" "  exit status with nothing half-closed"
[ "$empty_ms" -lt 2000 ] ||
    fail "--once with nothing half-closed took ${empty_ms} ms (grace 5000 ms): it waited"
assert_eq 0 "$(count_shutdowns "$TMP/empty.err")" "  actions"

echo "$N leaks, grace ${GRACE} ms:"
before=$(now_ms) # every FIN comes after this
client leak --port "$port" --count $N || fail "client exchanges failed"
wait_until 3000 leaking "$port" $N leak || fail "no leak: $(report_states "$port" leak)"
run_daemon once --once --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL
ended=$(now_ms)
echo "  exit $RUN_RC after ${RUN_MS} ms; $((ended - before)) ms after the clients began"
sed 's/^/    /' "$TMP/once.err"
assert_eq 0 "$RUN_RC" "  exit status"
[ $((ended - before)) -ge $GRACE ] ||
    fail "--once ended $((ended - before)) ms after the clients began: within the grace"
[ "$RUN_MS" -le $((GRACE + BOUND)) ] ||
    fail "--once took ${RUN_MS} ms: more than the grace (${GRACE} ms) and ${BOUND} ms"
# The connections were shut down before it exited: nothing is left in CLOSE_WAIT.
assert_eq 0 "$(count_state close-wait "$port" server)" "  server sockets in CLOSE_WAIT at its exit"
wait_until 2000 clients_settled "$port" leak || true
require_settled "$port" "--once did not reclaim the leaks" leak
assert_eq $N "$(count_shutdowns "$TMP/once.err" "$pid")" "  actions"
assert_eq 1 "$(peers_in established "$port" "$(client_ports idle)")" "  the idle connection ESTABLISHED"
pass "--once: nothing to do, exit 0 in ${empty_ms} ms; $N leaks reclaimed, exit 0 after\
 ${RUN_MS} ms (grace ${GRACE} ms)"
