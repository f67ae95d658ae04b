#!/usr/bin/env bash
# An inetd-style server has the connection on fds 0-2. The shim must reclaim it and must never
# write a log line (nor a complaint about a bad setting) into it: stderr is the peer.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# run_case NAME [VAR=VALUE...]: starts the super-server; its port is then in port. Not called
# as $(run_case ...): start_bg in a subshell would hide the server from the clean-up.
run_case() {
    start_bg "$1" "${@:2}" "$FIXTURES/inetd_server" --port-file "$TMP/$1.port"
    port=$(await_port "$1")
}

# Without the shim the handler leaks: the client waits for a FIN that never comes.
run_case bare
timeout 10 python3 "$SCRIPT_FIXTURES/halfclose_client.py" --port "$port" --wait 1 \
    >"$TMP/bare_client.out" && fail "without the shim the server closed: the fixture leaks nothing"
assert_eq 1 "$(count_state close-wait "$port" server)" "CLOSE_WAIT without the shim"

# With the shim, debug logging (a line at the FIN and one at the action) and a bad setting
# (a complaint from the constructor, which runs with stderr already on the socket).
run_case shim LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_LOG=debug \
    AUTOCLOSE_MODE=explode
timeout 10 python3 "$SCRIPT_FIXTURES/halfclose_client.py" --port "$port" --wait 5 \
    >"$TMP/shim_client.out" || fail "with the shim the server never closed its side"
cat "$TMP/shim_client.out"
grep -q 'clean_reply=True extra_bytes=0 ' "$TMP/shim_client.out" ||
    fail "the peer received bytes after the reply: $(cat "$TMP/shim_client.out")"
wait_until 3000 state_is close-wait "$port" server 0 ||
    fail "CLOSE_WAIT remains: $(report_states "$port")"
assert_eq 0 "$(count_state close-wait "$port" server)" "CLOSE_WAIT with the shim"
pass "reclaimed on fds 0-2; nothing written into the connection"
