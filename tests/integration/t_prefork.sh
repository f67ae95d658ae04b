#!/usr/bin/env bash
# A forking server whose children do everything right (serve to EOF, close their copy, exit)
# while the parent never closes its own copy of each connection: the leak is the parent's, and
# the parent never reads or polls those descriptors, so only the sweep can find them. The
# parent has forked since accepting each one, so it must not shut the socket down (a child
# might still be using it): it must release its own copy (log "close ... shared=yes"), which,
# the children being gone, ends the connection.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=4
LOG="$TMP/server.log"
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=200 \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/neglect_server" --case prefork \
    --port-file "$TMP/server.port"
port=$(await_port server)
parent=$(main_pid server)

started=$(now_ms)
client clients --port "$port" --count "$N" --parallel || fail "heartbeat exchanges failed"
# Whether or not the children have closed yet, the sockets stay in CLOSE_WAIT: the parent's
# copies hold them. The children's lines below show they did close.
snapshot_now "$port"
wait_until 2000 has_lines "$N" '^child pid=[0-9]+ fd=[0-9]+ served to eof, closed its copy' \
    "$TMP/server.out" || fail "the children did not all finish"
echo "clients done and $N children finished after $(($(now_ms) - started)) ms" \
    "(grace ${GRACE} ms); before the grace:"
leaks_before_grace "$(earliest_stamp "$TMP/server.out")" $GRACE "$N" "$port"

wait_until 4000 clients_settled "$port" clients || true
echo "$(($(now_ms) - started)) ms after the clients started: $(clients_report "$port" clients)"
echo "  shim actions:"
actions "$LOG" | sed 's/^/    /'
mapfile -t fds < <(sed -n 's/^forked pid=[0-9]* fd=\([0-9]*\) .*/\1/p' "$TMP/server.out")
kinds=$(for fd in "${fds[@]}"; do fd_holds "$parent" "$fd"; done | sort | uniq -c | xargs)
echo "  the parent's (pid $parent) copies, fds ${fds[*]}, now hold: $kinds"

require_settled "$port" "the parent's copies were not reclaimed within 4 s" clients
assert_eq 0 "$(actions "$LOG" | grep -c ': shutdown fd=' || true)" \
    "shutdowns of sockets the parent shared with a child"
assert_eq "$N" "$(actions "$LOG" |
    grep -c "libautoclose\[$parent\]: close fd=.* found=sweep .*shared=yes" || true)" \
    "copies released by the parent (close, found=sweep, shared=yes)"
assert_eq "$N unix" "$kinds" "the parent's descriptors, now placeholders"
pass "the parent's $N copies released (shared=yes, found=sweep); peers in TIME_WAIT"
