#!/usr/bin/env bash
# The shim must handle IPv6 connections too (libkeepalive's classic miss).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
if ! grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
    skip "::1 is not configured on this host"
fi

start_bg leak "$FIXTURES/mos_server" --style read --bind ::1 --port-file "$TMP/leak.port"
start_bg shim LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    "$FIXTURES/mos_server" --style read --bind ::1 --port-file "$TMP/shim.port"
leak_port=$(await_port leak)
shim_port=$(await_port shim)
client leak-client --host ::1 --port "$leak_port" --count "$N" || fail "exchanges without shim failed"
client shim-client --host ::1 --port "$shim_port" --count "$N" || fail "exchanges with shim failed"

wait_until $((GRACE + 3000)) reclaimed "$shim_port" "$N" shim-client || true
echo "without shim: $(report_states "$leak_port" leak-client)"
echo "with shim:    $(report_states "$shim_port" shim-client)"
leaking "$leak_port" "$N" leak-client || fail "the IPv6 simulator did not leak"
reclaimed "$shim_port" "$N" shim-client || fail "IPv6 connections were not reclaimed"
ss -Htn state time-wait "( dport = :$shim_port )" | grep -q '\[::1\]' ||
    fail "the reclaimed connections were not IPv6"
pass "over ::1: $N CLOSE_WAIT without the shim, 0 with it"
