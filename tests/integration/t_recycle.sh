#!/usr/bin/env bash
# A descriptor closed behind the shim's back and handed to a new connection: when the grace for
# the old connection expires, the new occupant of the same number must be left alone, whether
# it is live or legally half-closed (still in CLOSE_WAIT, awaiting its reply).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
# The periodic sweep is off: it would judge the half-closed newcomer on its own (t_half_close
# covers that), and here only the stale entry for the old connection may be put to the test.
for v in live half; do
    start_bg "$v" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
        AUTOCLOSE_LOG_FILE="$TMP/$v.log" "$FIXTURES/edge_server" --case recycle \
        --after-ms "$([ $v = half ] && echo $((GRACE + 1200)) || echo 0)" \
        --port-file "$TMP/$v.port"
done
live=$(await_port live)
half=$(await_port half)

client live-first --port "$live" || fail "live: first connection's exchange failed"
client half-first --port "$half" || fail "half: first connection's exchange failed"
# The second round comes well after the first connection's grace has expired.
client_bg live-second --port "$live" --rounds 2 --gap-ms $((GRACE + 1200)) --hold-ms 1500
# The server reads this request only after the first connection's grace has expired.
client_bg half-second --port "$half" --half-close

for v in live half; do
    wait_until 5000 grep -q '^recycled fd=' "$TMP/$v.out" ||
        fail "$v: the server did not get the same descriptor number back"
    grep -E '^(eof|raw-closed|recycled)' "$TMP/$v.out" | sed "s/^/  $v server: /"
done

wait_until $((GRACE + 4000)) grep -q '^ok conn=1 round=2' "$TMP/live-second.out" ||
    fail "live: the new connection stopped answering heartbeats"
echo "  live: the new connection answered a heartbeat after the grace"
assert_eq 1 "$(count_state established "$live" server)" "live: ESTABLISHED on the server side"
assert_eq 1 "$(count_client established "$live" live-second)" "live: ESTABLISHED on the client side"
assert_eq 0 "$(count_lines '(shutdown|close) fd=' "$TMP/live.log")" "live: actions logged"
wait_bg live-second || fail "live: second client failed"

wait_bg half-second || fail "half: the half-closed newcomer lost its reply"
echo "  half: the half-closed newcomer got its reply after the grace"
# Its own EOF, read after the reply, is a real leak: exactly that one gets reclaimed. Two
# TIME_WAITs: the old connection (ended by the raw close) and the newcomer.
wait_until $((GRACE + 3000)) reclaimed "$half" 2 half-first half-second || true
echo "  half: $(report_states "$half" half-first half-second)"
reclaimed "$half" 2 half-first half-second || fail "half: the newcomer's own leak was not reclaimed"
assert_eq 1 "$(count_lines '(shutdown|close) fd=' "$TMP/half.log")" "half: actions logged"
assert_eq "$(client_ports half-second)" \
    "$(grep -Eo 'peer=[^ ]*' "$TMP/half.log" | sed 's/.*://')" "half: peer port acted on"
pass "a recycled descriptor's new connection was left alone, live or half-closed"
