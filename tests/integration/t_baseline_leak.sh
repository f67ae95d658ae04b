#!/usr/bin/env bash
# Without the shim the simulator must leak; otherwise every other test proves nothing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

N=10
start_bg server "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)
client clients --port "$port" --count "$N" || fail "client exchanges failed"
wait_until 3000 leaking "$port" "$N" clients || true
echo "  $(report_states "$port" clients)"
assert_eq "$N" "$(count_state close-wait "$port" server)" "server sockets in CLOSE_WAIT"
assert_eq "$N" "$(count_client fin-wait-2 "$port" clients)" "client sockets in FIN_WAIT_2"
assert_eq 0 "$(count_client time-wait "$port" clients)" "client sockets in TIME_WAIT"
pass "$N disconnects left $N CLOSE_WAIT / $N FIN_WAIT_2"
