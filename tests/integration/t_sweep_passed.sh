#!/usr/bin/env bash
# The sweep asks the kernel only about this process's ports, so it must learn the port of a
# connection handed to it by another process: here an acceptor (forked before it listens) passes
# each connection over a UNIX socket with SCM_RIGHTS and closes its copy, and the server never
# reads what it receives. The port is one the server never listened on nor connected to; the
# sweep must still find those connections in CLOSE_WAIT and reclaim them.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=3
LOG=$TMP/server.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=100 \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/passed_server" --port-file "$TMP/server.port"
port=$(await_port server)
client passed --port "$port" --count $N --no-message || fail "the clients failed"
wait_until 5000 has_lines $N '^received fd=' "$TMP/server.out" ||
    fail "the server did not receive $N connections"
# shellcheck disable=SC2317 # called through wait_until
swept() { [ "$(actions "$LOG" | wc -l)" -ge "$N" ] && state_is close-wait "$port" server 0; }
wait_until $((GRACE + 5000)) swept ||
    fail "connections received with SCM_RIGHTS not reclaimed: $(report_states "$port" passed)"
echo "  $(report_states "$port" passed)"
assert_eq "read=0 ready=0 sweep=$N" "$(found_summary "$LOG")" "how the FINs were found"
pass "$N connections received with SCM_RIGHTS, on a port the process never used, reclaimed by the sweep"
