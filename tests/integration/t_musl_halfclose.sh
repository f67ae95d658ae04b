#!/usr/bin/env bash
# A legal half-close in a musl server run as `autoclose -- server`: the peer sends its request
# and shuts down its sending side; the server reads to the EOF and streams its reply for 1.8 s,
# more than four graces. The reply must arrive whole (every byte and the checksum), and once it
# has ended and a grace has passed the connection must be reclaimed (peer in TIME_WAIT). Skipped
# without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$FIXTURES_MUSL/halfclose_server" ] ||
    skip "no musl halfclose_server in $FIXTURES_MUSL (make integration builds it)"
use_wrapper

GRACE=400
REPLY_MS=1800
LOG="$TMP/server.log"
start_bg server "$AUTOCLOSE" --grace-ms $GRACE --sweep-ms 200 --log debug --log-file "$LOG" -- \
    "$FIXTURES_MUSL/halfclose_server" --reply-ms $REPLY_MS --chunk-ms 60 \
    --port-file "$TMP/server.port"
port=$(await_port server)
maps_has "$(main_pid server)" "$AUTOCLOSE_LIBMUSL" || fail "the musl library is not loaded"

rc=0
timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$port" --expect stream --wait 8 \
    >"$TMP/client.out" 2>"$TMP/client.err" || rc=$?
line=$(grep '^reply_bytes=' "$TMP/client.out" || true)
echo "client: $line (exit $rc)"
[ $rc -ne 3 ] || fail "the reply to a half-closed peer was damaged or cut: $line"
[ $rc -eq 0 ] || fail "client exit $rc: no EOF after the reply: $(clients_report "$port" client)"
last_data=$(sed -n 's/.* last_data_ms=\([0-9-]*\).*/\1/p' <<<"$line")
[ "$last_data" -ge $((REPLY_MS - 100)) ] ||
    fail "the reply ended after ${last_data} ms, not after ~${REPLY_MS} ms"

wait_until 3000 clients_settled "$port" client || true
echo "after the reply: $(clients_report "$port" client)"
require_settled "$port" "the finished connection was not reclaimed" client
[ "$(count_lines 'waiting fd=[0-9]+: still sending' "$LOG")" -ge 1 ] ||
    fail "the library never said it waited for a connection still sending"
since_fin=$(actions "$LOG" | sed -n 's/.* since_fin_ms=\([0-9]*\).*/\1/p')
{ [ -n "$since_fin" ] && [ "$since_fin" -ge "$REPLY_MS" ]; } ||
    fail "acted ${since_fin:-never} ms after the FIN, within the reply"
pass "a ${REPLY_MS} ms reply from a musl server (grace ${GRACE} ms) arrived whole; reclaimed" \
    "${since_fin} ms after the FIN, peer in TIME_WAIT"
