#!/usr/bin/env bash
# A process that has libautoclose preloaded is left to the library: the simulator runs with the
# shim (its grace a minute long, so that the shim itself does nothing during the test) and
# leaks; autoclosed, told to watch it, leaves its CLOSE_WAIT sockets as they are and says so in a
# debug line. A witness server without the shim, watched by the same daemon and leaking at the
# same moment, is reclaimed: the daemon's grace has demonstrably run out.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_shim

N=3
GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"

start_bg shimmed LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=60000 AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG_FILE="$TMP/shim.log" "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/shimmed.port"
start_bg plain "$FIXTURES/mos_server" --style read --port-file "$TMP/plain.port"
port=$(await_port shimmed)
wport=$(await_port plain)
pid=$(main_pid shimmed)
wpid=$(main_pid plain)
maps_lib "$pid" || fail "the shim is not mapped into the preloaded server"

client leak --port "$port" --count $N || fail "client exchanges failed"
client wit --port "$wport" --count 1 || fail "the witness session failed"
wait_until 3000 leaking "$port" $N leak || fail "the preloaded server did not leak"
start_daemon daemon --pid "$pid,$wpid" --grace-ms $GRACE --interval-ms $INTERVAL --log debug \
    --log-file "$LOG"
wait_until $((GRACE + 5000)) clients_settled "$wport" wit || true
require_settled "$wport" "the witness leak was not reclaimed" wit
sleep_ms $((5 * INTERVAL))
echo "  $(report_states "$port" leak)"
leaking "$port" $N leak || fail "the preloaded server's leaks were touched: $(report_states "$port" leak)"
assert_eq 0 "$(count_shutdowns "$LOG" "$pid")" "actions on the preloaded server"
assert_eq 1 "$(count_shutdowns "$LOG" "$wpid")" "actions on the witness"
said=$(grep -Ew -- "(pid=)?$pid" "$LOG" | grep -i 'libautoclose' || true)
echo "  debug: $said"
[ -n "$said" ] || fail "no line says the preloaded server is left to libautoclose"
grep -q '^[^ ]* autoclosed\[[0-9]*\]: ' <<<"$said" || fail "not a log line of the daemon's: $said"
assert_eq 0 "$(actions "$TMP/shim.log" | wc -l)" "the shim's own actions (its grace is a minute)"
stop_daemon daemon
pass "a server with libautoclose preloaded left to it ($N CLOSE_WAIT stay); the witness reclaimed"
