#!/usr/bin/env bash
# A setuid-root copy of the leaking simulator, run by an unprivileged user: the loader runs it in
# secure-execution mode and ignores LD_PRELOAD (asked for here, and checked not to have happened),
# so the shim cannot help it. autoclosed, running as root, reclaims its connections.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a setuid-root program and a daemon allowed to reach it"

N=4
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

open_to_all "$TMP/suid"
chmod 0755 "$TMP/suid"
cp "$FIXTURES/mos_server" "$TMP/suid/mos_server"
chown root:root "$TMP/suid/mos_server"
chmod 4755 "$TMP/suid/mos_server"

start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" "${UNPRIVILEGED[@]}" "$TMP/suid/mos_server" \
    --style read --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
uids=$(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$pid/status" | awk '{ print $1, $2 }')
assert_eq "$(id -u nobody) 0" "$uids" "the server's real and effective uids"
if maps_lib "$pid"; then
    fail "the shim was preloaded into a setuid program: the test proves nothing"
fi
echo "  setuid server (pid $pid, real uid nobody, effective root): LD_PRELOAD ignored"

client leak --port "$port" --count $N || fail "client exchanges failed"
wait_until 3000 leaking "$port" $N leak || true
echo "without the daemon: $(report_states "$port" leak)"
assert_eq $N "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"

started=$(now_ms)
start_daemon daemon --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$port" leak || true
took=$(($(now_ms) - started))
echo "${took} ms after autoclosed started: $(clients_report "$port" leak)"
require_settled "$port" "autoclosed did not reclaim the setuid server's leaks" leak
wait_until 2000 has_shutdowns $N "$LOG" "$pid" || true
check_actions "$LOG" "$pid" "$port" mos_server $GRACE leak
assert_eq $N "${#ACTED_FDS[@]}" "action lines"
numbers_still_open "$pid" "${ACTED_FDS[@]}"
client after --port "$port" --count 1 || fail "a new session after the reclaim failed"
stop_daemon daemon
pass "$N leaks of a setuid-root server run by nobody reclaimed in ${took} ms (grace ${GRACE} ms)"
