#!/usr/bin/env bash
# A half-close conversation the shim must not cut: the peer sends its request and shuts down its
# sending side; the server reads to the EOF (so the shim knows of the FIN at once) and then
# streams its reply for 1.8 s, more than four graces. The reply must arrive whole (every byte and
# the checksum), the shim must say it waited because the connection was still sending, and once
# the reply has ended and a grace has passed, the connection must still be reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=400
REPLY_MS=1800
LOG="$TMP/server.log"
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/halfclose_server" \
    --reply-ms $REPLY_MS --chunk-ms 60 --port-file "$TMP/server.port"
port=$(await_port server)

rc=0
timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$port" --expect stream --wait 8 \
    >"$TMP/client.out" 2>"$TMP/client.err" || rc=$?
line=$(grep '^reply_bytes=' "$TMP/client.out" || true)
echo "client: $line (exit $rc)"
sed -n 's/^/  server: /p' "$TMP/server.out"
[ $rc -ne 3 ] || fail "the reply to a half-closed peer was damaged or cut: $line"
[ $rc -eq 0 ] || fail "client exit $rc: no EOF after the reply: $(clients_report "$port" client)"

last_data=$(sed -n 's/.* last_data_ms=\([0-9-]*\).*/\1/p' <<<"$line")
eof_after=$(sed -n 's/.* eof_after_ms=\([0-9-]*\).*/\1/p' <<<"$line")
echo "  reply streamed until ${last_data} ms after the half-close; EOF at ${eof_after} ms;" \
    "grace ${GRACE} ms"
[ "$last_data" -ge $((REPLY_MS - 100)) ] ||
    fail "the reply ended after ${last_data} ms, not after ~${REPLY_MS} ms"
# The shim acts about a grace after the last send: not sooner, and not much later.
[ $((eof_after - last_data)) -ge $((GRACE - 100)) ] ||
    fail "EOF came $((eof_after - last_data)) ms after the last data: less than the grace"
[ $((eof_after - last_data)) -le $((GRACE + 1000)) ] ||
    fail "EOF came $((eof_after - last_data)) ms after the last data: far more than the grace"

wait_until 3000 clients_settled "$port" client || true
echo "after the reply: $(clients_report "$port" client)"
require_settled "$port" "the finished connection was not reclaimed" client

# The wording after "still sending" has varied; the prefix is what says why it waited.
waits=$(count_lines 'waiting fd=[0-9]+: still sending' "$LOG")
echo "  shim log: $waits 'still sending' lines; actions:"
actions "$LOG" | sed 's/^/    /'
[ "$waits" -ge 1 ] || fail "the shim never said it waited for a connection still sending"
assert_eq 1 "$(actions "$LOG" | wc -l)" "actions"
since_fin=$(actions "$LOG" | sed -n 's/.* since_fin_ms=\([0-9]*\).*/\1/p')
[ "$since_fin" -ge "$REPLY_MS" ] || fail "acted ${since_fin} ms after the FIN, within the reply"
pass "a ${REPLY_MS} ms reply (grace ${GRACE} ms) arrived whole; reclaimed ${since_fin} ms after\
 the FIN, peer in TIME_WAIT"
