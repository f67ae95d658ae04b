#!/usr/bin/env bash
# AUTOCLOSE_MODE=close releases the kernel socket but keeps the descriptor number reserved with
# a placeholder: later reads see EOF and writes fail with EPIPE instead of killing the program.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
CLOSE_MODE=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_MODE=close)

# Connected TCP sockets on PORT that PID still holds.
owned_tcp() { ss -Htnp state connected "( sport = :$2 )" | grep -c "pid=$1," || true; }

start_bg check "${CLOSE_MODE[@]}" "$FIXTURES/edge_server" --case close-check --after-ms 1500 \
    --port-file "$TMP/check.port"
start_bg mos "${CLOSE_MODE[@]}" "$FIXTURES/mos_server" --style read --port-file "$TMP/mos.port"
check_port=$(await_port check)
mos_port=$(await_port mos)
client check-client --port "$check_port" || fail "close-check exchange failed"
client mos-client --port "$mos_port" --count "$N" || fail "mos exchanges failed"

wait_until $((GRACE + 3000)) reclaimed "$check_port" 1 check-client || true
wait_until $((GRACE + 3000)) reclaimed "$mos_port" "$N" mos-client || true
echo "close-check: $(report_states "$check_port" check-client)"
echo "mos_server:  $(report_states "$mos_port" mos-client)"
reclaimed "$check_port" 1 check-client || fail "close-check connection not reclaimed"
reclaimed "$mos_port" "$N" mos-client || fail "mos_server connections not reclaimed"

for name in check mos; do
    pid=$(main_pid "$name")
    port_var=${name}_port
    mapfile -t fds < <(sed -n 's/^eof fd=\([0-9]*\) .*/\1/p' "$TMP/$name.out")
    [ ${#fds[@]} -gt 0 ] || fail "$name: no leaked descriptor reported"
    kinds=$(for fd in "${fds[@]}"; do fd_holds "$pid" "$fd"; done | sort | uniq -c | xargs)
    echo "$name: leaked fds ${fds[*]} now: $kinds"
    assert_eq "${#fds[@]} unix" "$kinds" "$name: leaked descriptors held as placeholders"
    assert_eq 0 "$(owned_tcp "$pid" "${!port_var}")" "$name: connected TCP sockets still owned"
done

wait_until 5000 grep -q '^late-write=' "$TMP/check.out" || fail "close-check never wrote late"
late_read=$(sed -n 's/^late-read=//p' "$TMP/check.out")
late_write=$(sed -n 's/^late-write=//p' "$TMP/check.out")
assert_eq "0 errno=0" "$late_read" "late read on the reclaimed descriptor"
assert_eq "-1 errno=EPIPE" "$late_write" "late write on the reclaimed descriptor"
pass "sockets released, numbers kept as unix placeholders, EOF on read, EPIPE on write"
