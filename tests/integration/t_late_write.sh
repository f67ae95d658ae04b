#!/usr/bin/env bash
# A late write must not kill a program the shim has touched. The server reads to EOF, leaks the
# connection, and writes one byte into it well after the grace, with SIGPIPE at its default
# action (death).
#   without the shim   the socket is still in CLOSE_WAIT, the write succeeds: the program lives
#   shutdown mode      the socket was shut down: the write must fail with EPIPE, no SIGPIPE
#   close mode         the same: in both modes the number holds the placeholder
#   raw writes         the same write made by a raw system call, where no wrapper could add
#                      MSG_NOSIGNAL, fails with EPIPE too and the program lives: the placeholder
#                      (a SOCK_SEQPACKET socket) never raises SIGPIPE, whatever call writes
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
AFTER=1200 # from the EOF to the late write: four graces
RUNS=(bare shutdown close raw-shutdown raw-close)
declare -A port

# late_server NAME [MODE [--raw-write]]: without MODE, no shim.
late_server() {
    local name=$1 mode=${2:-} shim=()
    if [ -n "$mode" ]; then
        shim=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_SWEEP_MS=200
            AUTOCLOSE_MODE="$mode" AUTOCLOSE_LOG_FILE="$TMP/$name.log")
    fi
    start_bg "$name" "${shim[@]}" "$FIXTURES/neglect_server" --case late-write \
        --after-ms $AFTER "${@:3}" --port-file "$TMP/$name.port"
}
late_server bare
late_server shutdown shutdown
late_server close close
late_server raw-shutdown shutdown --raw-write
late_server raw-close close --raw-write
for r in "${RUNS[@]}"; do
    port[$r]=$(await_port "$r")
done
for r in "${RUNS[@]}"; do
    client "client-$r" --port "${port[$r]}" || fail "$r: heartbeat exchange failed"
done

wait_until $((AFTER + 3000)) has_lines 1 '^late-write=' "$TMP/bare.out" ||
    fail "bare: never wrote late"
for r in shutdown close raw-shutdown raw-close; do
    wait_until 3000 has_lines 1 '^alive after the late write' "$TMP/$r.out" ||
        fail "$r: no sign of life after the late write"
done

for r in "${RUNS[@]}"; do
    echo "$r: $(grep -E '^(before the late write|late-write=)' "$TMP/$r.out" | xargs);" \
        "after: $(clients_report "${port[$r]}" "client-$r")"
    actions "$TMP/$r.log" | sed 's/^/    /'
done

assert_eq CLOSE_WAIT "$(sed -n 's/^before the late write fd=[0-9]* state=//p' "$TMP/bare.out")" \
    "without the shim, the leaked socket before the write"
assert_eq "1 errno=0" "$(sed -n 's/^late-write=//p' "$TMP/bare.out")" \
    "without the shim, the late write"
kill -0 "$(main_pid bare)" || fail "bare: died"
echo "  without the shim: alive"
for r in shutdown close raw-shutdown raw-close; do
    # Found by the read or, if its 200 ms tick falls between the FIN and the read, the sweep.
    assert_eq 1 "$(actions "$TMP/$r.log" | wc -l)" "$r: actions"
    require_settled "${port[$r]}" "$r: the connection was not reclaimed" "client-$r"
    assert_eq "-1 errno=EPIPE" "$(sed -n 's/^late-write=//p' "$TMP/$r.out")" \
        "$r: the late write"
    kill -0 "$(main_pid "$r")" 2>/dev/null || fail "$r: the server died"
    echo "  $r: alive"
done
pass "late write: succeeds without the shim; EPIPE, no SIGPIPE, in shutdown and close mode,\
 through the wrappers or past them"
