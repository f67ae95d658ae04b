#!/usr/bin/env bash
# The peer's unread data holds a half-closed connection back, but not for ever. A server that
# accepts and never reads leaves the peer's request in the receive queue: the shim waits ten
# graces (the server might still read and answer it), then treats the connection as abandoned.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=100
HOLD=$((10 * GRACE))
start_bg ignored LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/ignored.log" "$FIXTURES/neglect_server" \
    --case ignore --port-file "$TMP/ignored.port"
port=$(await_port ignored)

# The heartbeat goes out, then the half-close; the server never reads either.
rc=0
timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$port" --expect none \
    --wait $((HOLD / 1000 + 5)) >"$TMP/client.out" 2>"$TMP/client.err" || rc=$?
cat "$TMP/client.out"
[ $rc -eq 0 ] || fail "the server's FIN never came (exit $rc)"
eof=$(sed -n 's/.* eof_after_ms=\([0-9]*\).*/\1/p' "$TMP/client.out")
echo "  the server's FIN came ${eof} ms after the half-close (hold: ten graces = ${HOLD} ms)"
[ "$eof" -ge $((HOLD - 50)) ] || fail "cut after ${eof} ms, while the request was unread"
[ "$eof" -le $((HOLD + SWEEP + 1500)) ] || fail "held ${eof} ms, well past ten graces"
grep -q 'waiting fd=.*unread' "$TMP/ignored.log" || fail "the log never said it was waiting"
wait_until 2000 state_is close-wait "$port" server 0 ||
    fail "CLOSE_WAIT remains: $(report_states "$port")"
pass "unread request held the connection ${eof} ms (ten graces), then it was reclaimed"
