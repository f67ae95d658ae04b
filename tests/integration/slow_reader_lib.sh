# shellcheck shell=bash
# Shared by t_slow_reader.sh (the library) and t_daemon_slow_reader.sh (autoclosed), sourced after
# lib.sh: two slow_reader servers, each sent a 100 kB request by a client that then half-closes
# (request_client.py), so the peer's FIN waits behind unread data while the server reads 1000 B
# every 50 ms, five seconds in all, far beyond the ten graces (2 s) unread data used to be held.
#   reader:  reads to the EOF, answers with the byte count and checksum, closes.
#   quitter: reads 60 kB (3 s, itself past the old hold), then never reads again.
# Nothing may cut the reader (every byte read, the answer received, no action); the quitter must
# still be reclaimed ten graces after its last read (not sooner, not much later).

GRACE=200
HOLD=$((10 * GRACE))
REQUEST=100000
QUIT_AFTER=60000

# start_slow_readers: the two servers, each with READER_ENV (VAR=VALUE words: the library's
# settings, NAME in them replaced by the server's name); their ports in RPORT and QPORT.
READER_ENV=()
start_slow_readers() {
    local name extra
    for name in reader quitter; do
        extra=()
        [ $name = reader ] || extra=(--stop-after "$QUIT_AFTER")
        start_bg $name "${READER_ENV[@]//NAME/$name}" "$FIXTURES/slow_reader" --chunk 1000 \
            --every-ms 50 --port-file "$TMP/$name.port" "${extra[@]}"
    done
    RPORT=$(await_port reader)
    QPORT=$(await_port quitter)
}

# send_requests: both clients at once, in the background (asker to the reader, abandoner to the
# quitter); returns when both are done.
send_requests() {
    start_bg asker python3 "$SCRIPT_FIXTURES/request_client.py" --port "$RPORT" \
        --bytes $REQUEST --wait 20
    start_bg abandoner python3 "$SCRIPT_FIXTURES/request_client.py" --port "$QPORT" \
        --bytes $REQUEST --wait 20
    ASKER_RC=0 ABANDONER_RC=0
    wait_bg asker || ASKER_RC=$?
    wait_bg abandoner || ABANDONER_RC=$?
}

# check_reader: every byte read, the answer received, the connection ended by the server itself.
check_reader() {
    local line got sum ms
    line=$(grep '^sent=' "$TMP/asker.out" || true)
    echo "  asker: $line (exit $ASKER_RC)"
    sed -n 's/^/  reader: /p' "$TMP/reader.out"
    sum=$(sed -n 's/.* fnv1a=\([0-9a-f]*\) .*/\1/p' <<<"$line")
    got=$(grep -E '^request fd=[0-9]+ bytes=' "$TMP/reader.out" || true)
    [ -n "$got" ] || fail "the reader never reached the end of the request"
    [[ $got == *" bytes=$REQUEST fnv1a=$sum "* ]] ||
        fail "the reader got EOF before the end of the request (the read was cut): $got"
    [[ $line == *"reply='bytes=$REQUEST fnv1a=$sum'"* ]] ||
        fail "the asker did not get the reader's answer: $line"
    [ "$ASKER_RC" -eq 0 ] || fail "the reader never closed its side (exit $ASKER_RC)"
    ms=$(sed -n 's/.* ms=\([0-9]*\) eof$/\1/p' <<<"$got")
    echo "  the reader read ${REQUEST} B in ${ms} ms (unread data used to be held ${HOLD} ms)"
    [ "$ms" -gt $((HOLD + 1000)) ] || fail "the reading took ${ms} ms: too short to test the hold"
}

# check_quitter: reclaimed, ten graces after its last read; QUIT_CUT_MS says when.
check_quitter() {
    local line stopped eof
    line=$(grep '^sent=' "$TMP/abandoner.out" || true)
    echo "  abandoner: $line (exit $ABANDONER_RC)"
    sed -n 's/^/  quitter: /p' "$TMP/quitter.out"
    stopped=$(grep -E "^stopped fd=[0-9]+ bytes=$QUIT_AFTER " "$TMP/quitter.out" || true)
    [ -n "$stopped" ] ||
        fail "the quitter did not read its ${QUIT_AFTER} B before stopping (the read was cut)"
    [ "$ABANDONER_RC" -eq 0 ] || fail "the abandoned connection was never reclaimed"
    [[ $line == *"reply='' "* ]] || fail "the quitter answered: $line"
    stopped=$(sed -n 's/.* at_ms=\([0-9]*\)$/\1/p' <<<"$stopped")
    eof=$(sed -n 's/.* eof_at_ms=\([0-9]*\)$/\1/p' <<<"$line")
    QUIT_CUT_MS=$((eof - stopped))
    echo "  the quitter's FIN came ${QUIT_CUT_MS} ms after its last read (hold: ${HOLD} ms)"
    [ "$QUIT_CUT_MS" -ge $((HOLD - 50)) ] ||
        fail "cut ${QUIT_CUT_MS} ms after the last read: less than ten graces"
    [ "$QUIT_CUT_MS" -le $((HOLD + GRACE + 1500)) ] ||
        fail "cut ${QUIT_CUT_MS} ms after the last read: well past ten graces"
    wait_until 2000 clients_settled "$QPORT" abandoner || true
    require_settled "$QPORT" "the abandoned connection did not end cleanly" abandoner
}
