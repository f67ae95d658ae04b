#!/usr/bin/env bash
# With no AUTOCLOSE_LOG_FILE the shim's lines go to stderr. A daemon that closes fd 2 and opens
# its data file there has no stderr any more: number 2 is the data file, and a line written to
# number 2 corrupts it. The server leaks one connection, the shim reclaims it (and, at debug,
# also reports finding the FIN); afterwards the data file must hold only the program's own line.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
LEVELS=(info debug)
declare -A port
for level in "${LEVELS[@]}"; do
    start_bg "$level" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG="$level" \
        AUTOCLOSE_LOG_FILE= "$FIXTURES/stderr_reuse" --data "$TMP/$level.data" \
        --port-file "$TMP/$level.port"
done
for level in "${LEVELS[@]}"; do
    port[$level]=$(await_port "$level")
    grep -qx 'data fd=2' "$TMP/$level.out" || fail "$level: the data file did not get fd 2"
    client "client-$level" --port "${port[$level]}" || fail "$level: heartbeat exchange failed"
done
for level in "${LEVELS[@]}"; do
    wait_until $((GRACE + 3000)) reclaimed "${port[$level]}" 1 "client-$level" ||
        fail "$level: not reclaimed: $(report_states "${port[$level]}" "client-$level")"
    echo "$level: reclaimed: $(report_states "${port[$level]}" "client-$level")"
done
# The line about the action is written right after it; give it time to land wherever it goes.
sleep 0.5

bad=()
for level in "${LEVELS[@]}"; do
    echo "$level: the data file holds:"
    sed 's/^/  | /' "$TMP/$level.data"
    strays=$(count_lines 'libautoclose' "$TMP/$level.data")
    echo "  libautoclose lines in it: $strays (expected 0)"
    cmp -s <(printf 'data\n') "$TMP/$level.data" || bad+=("$level")
done
[ ${#bad[@]} -eq 0 ] || fail "the shim wrote into the data file that took fd 2 (AUTOCLOSE_LOG=${bad[*]})"
pass "with fd 2 reused for a data file, the data file holds only the program's own line"
