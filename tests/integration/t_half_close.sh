#!/usr/bin/env bash
# A peer may send its request, shut down its sending side and wait for the reply: a legal
# half-close. While the request sits unread the connection is never cut, however long the server
# takes to read it (slow-read); a server that reads the request and answers within the grace gets
# its reply through (slow-reply). Only then is the connection a leak to reclaim. (A server
# silent for longer than the grace after reading looks exactly like a leak: the README says to
# size the grace for it.)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=600
declare -A DELAY=([slow-read]=$((GRACE + 1200)) [slow-reply]=$((GRACE / 2)))
CASES=(slow-read slow-reply)
declare -A port
failed=()
for c in "${CASES[@]}"; do
    start_bg "$c" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=100 \
        AUTOCLOSE_LOG_FILE="$TMP/$c.log" "$FIXTURES/edge_server" --case "$c" \
        --after-ms "${DELAY[$c]}" --port-file "$TMP/$c.port"
done
for c in "${CASES[@]}"; do
    port[$c]=$(await_port "$c")
    client_bg "$c-client" --port "${port[$c]}" --half-close
done

for c in "${CASES[@]}"; do
    if wait_bg "$c-client"; then
        echo "$c: reply received ${DELAY[$c]} ms after the half-close (grace ${GRACE} ms)"
    else
        echo "$c: reply lost: $(head -n 1 "$TMP/$c-client.err")"
        sed 's/^/  shim: /' "$TMP/$c.log" 2>/dev/null || true
        failed+=("$c")
    fi
done
[ ${#failed[@]} -eq 0 ] || fail "a half-closed peer lost its reply: ${failed[*]}"

for c in "${CASES[@]}"; do
    wait_until $((GRACE + 3000)) reclaimed "${port[$c]}" 1 "$c-client" || true
    echo "$c after the reply: $(report_states "${port[$c]}" "$c-client")"
    reclaimed "${port[$c]}" 1 "$c-client" || fail "$c: the finished connection was not reclaimed"
done
pass "replies delivered to half-closed peers; connections reclaimed afterwards"
