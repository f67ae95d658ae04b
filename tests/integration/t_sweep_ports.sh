#!/usr/bin/env bash
# The sweep asks the kernel about this process's own ports only. Another process, without the
# shim, holds 400 connections in CLOSE_WAIT on its port; a server under the shim, sweeping every
# 100 ms, leaks three connections it never reads on its own port. Under strace, every netlink
# read of the sweep must be small (the kernel's filter kept the other process's 400 sockets,
# about 35 KB a sweep, out of it), the server's three connections must still be reclaimed by the
# sweep, and the other process's must all still be there.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
command -v strace >/dev/null || skip "strace is not installed"

OTHER=400
MINE=3
GRACE=300
start_bg other "$FIXTURES/neglect_server" --case ignore --port-file "$TMP/other.port"
other_port=$(await_port other)
client pileup --port "$other_port" --count $OTHER --no-message || fail "the pile-up's clients failed"
wait_until 10000 state_is close-wait "$other_port" server $OTHER ||
    fail "the other process holds $(count_state close-wait "$other_port" server) in CLOSE_WAIT, not $OTHER"

LOG=$TMP/server.log
start_bg server strace -f -qq -e trace=recvfrom -o "$TMP/server.strace" \
    -E LD_PRELOAD="$AUTOCLOSE_LIB" -E AUTOCLOSE_GRACE_MS=$GRACE -E AUTOCLOSE_SWEEP_MS=100 \
    -E AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/neglect_server" --case ignore \
    --port-file "$TMP/server.port"
port=$(await_port server)
client mine --port "$port" --count $MINE --no-message || fail "the server's clients failed"
# shellcheck disable=SC2317 # called through wait_until
reclaimed_all() { [ "$(actions "$LOG" | wc -l)" -ge "$MINE" ] && state_is close-wait "$port" server 0; }
wait_until $((GRACE + 5000)) reclaimed_all ||
    fail "the server's connections were not reclaimed: $(report_states "$port")"
sleep 1 # ten more sweeps, with nothing of the server's left in CLOSE_WAIT
kill -TERM "$(pgrep -o -f "neglect_server --case ignore --port-file $TMP/server.port")"
wait_bg server || true

# The sweep's reads: recv with MSG_TRUNC on its netlink socket (the server itself never calls
# recvfrom). The size each returned.
mapfile -t sizes < <(awk '/recvfrom/ && /MSG_TRUNC/ && /= [0-9]+$/ { print $NF }' "$TMP/server.strace")
[ ${#sizes[@]} -ge 10 ] || fail "only ${#sizes[@]} netlink reads traced: the sweep did not run"
largest=$(printf '%s\n' "${sizes[@]}" | sort -n | tail -n 1)
total=$(printf '%s\n' "${sizes[@]}" | awk '{ s += $1 } END { print s }')
echo "  ${#sizes[@]} netlink reads by the sweep, $total bytes in all, the largest $largest bytes"
# Three connections of the server's are at most three messages of about 100 bytes and the end
# of the dump; the other process's 400 would be about 35,000 bytes at every sweep.
[ "$largest" -le 1024 ] || fail "a sweep read $largest bytes: it was given other processes' sockets"
assert_eq "read=0 ready=0 sweep=$MINE" "$(found_summary "$LOG")" "how the server's FINs were found"
assert_eq $OTHER "$(count_state close-wait "$other_port" server)" \
    "the other process's connections still in CLOSE_WAIT"
pass "the sweep read at most $largest bytes a time beside $OTHER CLOSE_WAIT sockets of another process; its own $MINE reclaimed"
