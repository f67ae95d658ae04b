#!/usr/bin/env bash
# A process with libautoclose preloaded is treated like any other: where the library is mapped
# but does nothing (AUTOCLOSE_DISABLE=1, or AUTOCLOSE_PORTS naming other ports), autoclosed
# reclaims its leaks; where the library is active with a grace shorter than the daemon's, the
# library reclaims first and the daemon, finding the socket no longer in CLOSE_WAIT, neither acts
# nor logs anything for it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_shim

N=2
GRACE=600 # the daemon's
INTERVAL=100
LOG="$TMP/daemon.log"

start_bg disabled LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_DISABLE=1 "$FIXTURES/mos_server" \
    --style read --port-file "$TMP/disabled.port"
start_bg other LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_PORTS=1 "$FIXTURES/mos_server" \
    --style read --port-file "$TMP/other.port"
start_bg active LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=100 AUTOCLOSE_SWEEP_MS=100 \
    AUTOCLOSE_LOG_FILE="$TMP/shim.log" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/active.port"
dport=$(await_port disabled)
oport=$(await_port other)
aport=$(await_port active)
dpid=$(main_pid disabled)
opid=$(main_pid other)
apid=$(main_pid active)
for p in "$dpid" "$opid" "$apid"; do
    maps_lib "$p" || fail "the library is not mapped into process $p"
done

start_daemon daemon --pid "$dpid,$opid,$apid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log debug --log-file "$LOG"
client act --port "$aport" --count $N || fail "client exchanges with the active one failed"
client dis --port "$dport" --count $N || fail "client exchanges with the disabled one failed"
client oth --port "$oport" --count $N || fail "client exchanges with the other-ports one failed"

# The daemon's grace for the active one's connections (which closed first) has passed once it has
# reclaimed the others'.
wait_until $((GRACE + 5000)) clients_settled "$dport" dis || true
require_settled "$dport" "the daemon did not reclaim the disabled library's leaks" dis
wait_until 3000 clients_settled "$oport" oth || true
require_settled "$oport" "the daemon did not reclaim the leaks on ports the library ignores" oth
require_settled "$aport" "the active library's leaks were not reclaimed" act
sleep_ms $((3 * INTERVAL)) # a few more looks
sed 's/^/    /' "$LOG"
assert_eq $N "$(count_shutdowns "$LOG" "$dpid")" "the daemon's actions on AUTOCLOSE_DISABLE=1"
assert_eq $N "$(count_shutdowns "$LOG" "$opid")" "the daemon's actions on AUTOCLOSE_PORTS=1"
assert_eq 0 "$(count_shutdowns "$LOG" "$apid")" "the daemon's actions on the active library"
assert_eq 0 "$(grep -E "pid=$apid( |$)" "$LOG" | grep -Eci 'error|cannot|fail' || true)" \
    "the daemon's error lines about the active library's process"
assert_eq $N "$(actions "$TMP/shim.log" | wc -l)" "the active library's own actions"
stop_daemon daemon
pass "the daemon reclaimed where the library was disabled or watching other ports; where it was\
 active the library reclaimed first and the daemon said nothing"
