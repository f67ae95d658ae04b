#!/usr/bin/env bash
# AUTOCLOSE_DRY_RUN=1 reports each connection it would reclaim and touches none of them.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
LOG=$TMP/shim.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_DRY_RUN=1 \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/mos_server" --style read --port-file "$TMP/server.port"
port=$(await_port server)
client clients --port "$port" --count "$N" || fail "client exchanges failed"

# The lines are written when the grace expires, so they also show that it has passed.
wait_until $((GRACE + 3000)) has_lines "$N" 'would shutdown' "$LOG" || true
report_states "$port" clients
assert_eq "$N" "$(count_lines 'would shutdown' "$LOG")" "'would shutdown' lines in the log"
assert_eq 0 "$(grep -v 'would' "$LOG" | grep -Ec '(shutdown|close) fd=' || true)" \
    "lines reporting an action taken"
leaking "$port" "$N" clients ||
    fail "dry run changed socket states: $(report_states "$port" clients)"
assert_eq "$N" "$(count_state close-wait "$port" server)" "CLOSE_WAIT after the grace"
pass "$N would-shutdown lines, $N sockets still in CLOSE_WAIT"
