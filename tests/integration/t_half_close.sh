#!/usr/bin/env bash
# A peer may send its request, shut down its sending side and wait for the reply: a legal
# half-close. However long the server takes to read or to answer, the reply must arrive; only
# once the server has answered and read the EOF is the connection a leak to reclaim.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
DELAY=$((GRACE + 1200))
CASES=(slow-read slow-reply)
declare -A port
failed=()
for c in "${CASES[@]}"; do
    start_bg "$c" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_LOG_FILE="$TMP/$c.log" "$FIXTURES/edge_server" --case "$c" \
        --after-ms $DELAY --port-file "$TMP/$c.port"
done
for c in "${CASES[@]}"; do
    port[$c]=$(await_port "$c")
    client_bg "$c-client" --port "${port[$c]}" --half-close
done

for c in "${CASES[@]}"; do
    if wait_bg "$c-client"; then
        echo "$c: reply received ${DELAY} ms after the half-close (grace ${GRACE} ms)"
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
