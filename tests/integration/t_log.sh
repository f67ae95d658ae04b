#!/usr/bin/env bash
# AUTOCLOSE_LOG_FILE gets one line per reclaimed connection, naming both ends, the descriptor
# and how long the connection sat half-closed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
LOG=$TMP/shim.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG_FILE="$LOG" \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)
client clients --port "$port" --count "$N" || fail "client exchanges failed"
wait_until $((GRACE + 3000)) reclaimed "$port" "$N" clients ||
    fail "not reclaimed: $(report_states "$port" clients)"
wait_until 2000 has_lines "$N" 'shutdown fd=' "$LOG" || true
echo "log:"
sed 's/^/  /' "$LOG"

assert_eq "$N" "$(count_lines 'shutdown fd=' "$LOG")" "'shutdown fd=' lines"
for field in 'fd=[0-9]+' "local=127\\.0\\.0\\.1:$port" 'peer=127\.0\.0\.1:[0-9]+' \
    'since_fin_ms=[0-9]+'; do
    assert_eq "$N" "$(grep 'shutdown fd=' "$LOG" | grep -Ec "(^| )$field( |$)")" \
        "lines with $field"
done
logged_peers=$(grep -o 'peer=[^ ]*' "$LOG" | sed 's/.*://' | sort -n | xargs)
client_ports=$(client_ports clients | sort -n | xargs)
assert_eq "$client_ports" "$logged_peers" "peer ports logged vs the client's own ports"
min_since=$(grep -o 'since_fin_ms=[0-9]*' "$LOG" | cut -d= -f2 | sort -n | head -n 1)
echo "  smallest since_fin_ms: $min_since (grace $GRACE)"
[ "$min_since" -ge "$GRACE" ] || fail "since_fin_ms=$min_since is shorter than the grace"
pass "$N lines with fd, local, peer and since_fin_ms"
