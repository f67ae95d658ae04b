#!/usr/bin/env bash
# autoclosed never cuts a reply: a peer sends its request and shuts down its sending side, and
# halfclose_server (no shim) reads to the EOF and then streams its reply for 2.4 s, six graces.
# The reply must arrive whole (every byte and the checksum), and the connection be reclaimed about
# a grace after its last byte, not before; meanwhile, in the same daemon run, a silent leak of
# another server must be reclaimed about a grace after it began, while the reply still streams.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=400
INTERVAL=100
REPLY_MS=2400
LOG="$TMP/daemon.log"

start_bg replier "$FIXTURES/halfclose_server" --reply-ms $REPLY_MS --chunk-ms 60 \
    --port-file "$TMP/replier.port"
start_bg silent "$FIXTURES/mos_server" --style read --port-file "$TMP/silent.port"
rport=$(await_port replier)
sport=$(await_port silent)
rpid=$(main_pid replier)
spid=$(main_pid silent)
start_daemon daemon --pid "$rpid,$spid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"

start_bg asker timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$rport" \
    --expect stream --wait 8
wait_until 3000 has_lines 1 '^request fd=.* then eof' "$TMP/replier.out" ||
    fail "halfclose_server never read the request to its EOF"
# The silent leak, once the reply has begun.
silent_at=$(now_ms)
client quiet --port "$sport" --count 1 || fail "the silent server's heartbeat failed"
wait_until $((GRACE + 3000)) clients_settled "$sport" quiet || true
silent_took=$(($(now_ms) - silent_at))
require_settled "$sport" "the silent leak was not reclaimed while the reply streamed" quiet
grep -q '^reply done' "$TMP/replier.out" &&
    fail "the silent leak was reclaimed only after the reply had ended (${silent_took} ms)"
echo "  silent leak reclaimed ${silent_took} ms after its session began, the reply still streaming"

rc=0
wait_bg asker || rc=$?
line=$(grep '^reply_bytes=' "$TMP/asker.out" || true)
echo "client: $line (exit $rc)"
sed -n 's/^/  replier: /p' "$TMP/replier.out"
[ $rc -ne 3 ] || fail "the reply to a half-closed peer was damaged or cut: $line"
[ $rc -eq 0 ] || fail "client exit $rc: no FIN after the reply: $(port_sockets "$rport")"
last_data=$(sed -n 's/.* last_data_ms=\([0-9-]*\).*/\1/p' <<<"$line")
eof_after=$(sed -n 's/.* eof_after_ms=\([0-9-]*\).*/\1/p' <<<"$line")
echo "  reply streamed until ${last_data} ms after the half-close; FIN at ${eof_after} ms;" \
    "grace ${GRACE} ms"
[ "$last_data" -ge $((REPLY_MS - 100)) ] ||
    fail "the reply ended after ${last_data} ms, not after ~${REPLY_MS} ms"
[ $((eof_after - last_data)) -ge $((GRACE - 100)) ] ||
    fail "the FIN came $((eof_after - last_data)) ms after the last data: less than the grace"
[ $((eof_after - last_data)) -le $((GRACE + INTERVAL + 1000)) ] ||
    fail "the FIN came $((eof_after - last_data)) ms after the last data: far more than the grace"
wait_until 2000 clients_settled "$rport" asker || true
require_settled "$rport" "the replier's connection did not end cleanly after the reply" asker

wait_until 2000 has_shutdowns 1 "$LOG" "$rpid" || true
shutdowns "$LOG" | sed 's/^/    /'
assert_eq 1 "$(count_shutdowns "$LOG" "$rpid")" "actions on the replier"
assert_eq 1 "$(count_shutdowns "$LOG" "$spid")" "actions on the silent server"
since_fin=$(shutdowns "$LOG" "$rpid" | sed -n 's/.* since_fin_ms=\([0-9]*\).*/\1/p')
[ "$since_fin" -ge "$REPLY_MS" ] || fail "acted ${since_fin} ms after the FIN, within the reply"
stop_daemon daemon
pass "a ${REPLY_MS} ms reply (grace ${GRACE} ms) arrived whole, FIN $((eof_after - last_data)) ms\
 after its last byte; a silent leak reclaimed meanwhile in ${silent_took} ms"
