#!/usr/bin/env bash
# The control for t_stalled and t_silent: with AUTOCLOSE_SWEEP_MS=0, connections nothing ever
# reads or polls (stalled handlers, an ignoring server) stay in CLOSE_WAIT, their peers in
# FIN_WAIT_2, long past the grace, and the shim logs nothing about them. The same stalled server
# with the sweep on runs alongside as the positive control: once it is reclaimed, the grace and a
# sweep have demonstrably passed under identical conditions. So the sweep, and nothing else, is
# what reclaims them.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=4
declare -A port sweep args
sweep[stalled-off]=0
sweep[ignore-off]=0
sweep[stalled-on]=200
args[stalled-off]=stalled
args[ignore-off]=ignore
args[stalled-on]=stalled
RUNS=(stalled-off ignore-off stalled-on)
for r in "${RUNS[@]}"; do
    start_bg "$r" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_SWEEP_MS="${sweep[$r]}" AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/$r.log" \
        "$FIXTURES/neglect_server" --case "${args[$r]}" --port-file "$TMP/$r.port"
done
for r in "${RUNS[@]}"; do
    port[$r]=$(await_port "$r")
done

started=$(now_ms)
client client-stalled-off --port "${port[stalled-off]}" --count "$N" --parallel ||
    fail "stalled-off: heartbeat exchanges failed"
client client-stalled-on --port "${port[stalled-on]}" --count "$N" --parallel ||
    fail "stalled-on: heartbeat exchanges failed"
# Nothing sent to the ignoring server: unread data would hold the shim back for its own reason.
client client-ignore-off --port "${port[ignore-off]}" --count "$N" --parallel --no-message ||
    fail "ignore-off: connections failed"
for r in stalled-off stalled-on; do
    wait_until 5000 has_lines "$N" '^stalled fd=' "$TMP/$r.out" || fail "$r: handlers not stalled"
done

wait_until $((GRACE + 3000)) clients_settled "${port[stalled-on]}" client-stalled-on ||
    fail "positive control: the sweep-on server was not reclaimed:" \
        "$(clients_report "${port[stalled-on]}" client-stalled-on)"
echo "positive control reclaimed $(($(now_ms) - started)) ms after the clients started"
# The shim's lines in a log, less its start-up line (which shows that the log file works).
shim_lines() {
    if [ -e "$1" ]; then
        grep -v ' active: grace_ms=' "$1" | grep -c 'libautoclose' || true
    else
        echo 0
    fi
}

# Three more graces: time enough for anything that was going to act.
sleep_ms $((GRACE * 3))
held=$(($(now_ms) - started))
for r in "${RUNS[@]}"; do
    echo "  $r (AUTOCLOSE_SWEEP_MS=${sweep[$r]}): $(clients_report "${port[$r]}" "client-$r");" \
        "log lines after the start-up line: $(shim_lines "$TMP/$r.log")"
done
for r in stalled-off ignore-off; do
    cports=()
    mapfile -t cports < <(client_ports "client-$r")
    assert_eq "$N" "$(count_state close-wait "${port[$r]}" server)" \
        "$r: CLOSE_WAIT ${held} ms after the clients started (grace $GRACE)"
    assert_eq "$N" "$(peers_in fin-wait-2 "${port[$r]}" "${cports[@]}")" "$r: peers in FIN_WAIT_2"
    assert_eq 1 "$(count_lines ' active: grace_ms=' "$TMP/$r.log")" "$r: start-up lines (debug)"
    assert_eq 0 "$(shim_lines "$TMP/$r.log")" "$r: shim log lines after the start-up line (debug)"
done
pass "with the sweep off, unread and unpolled connections stay in CLOSE_WAIT ${held} ms (grace\
 $GRACE ms); with it on, the same server is reclaimed"
