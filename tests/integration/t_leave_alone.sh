#!/usr/bin/env bash
# Zero-length reads that are not a TCP peer's FIN must not trigger anything: UDP's empty
# datagrams, AF_UNIX EOF, read(fd, buf, 0) on a live connection; nor may the listener suffer.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
command -v strace >/dev/null || skip "strace is not installed"

GRACE=300
CALLS='(shutdown|dup2|dup3)\('

# traced NAME MODE CMD ARGS...: runs CMD under the shim, recording the calls that act on sockets.
traced() {
    local name=$1 mode=$2
    shift 2
    start_bg "$name" strace -f -qq -e trace=shutdown,dup2,dup3 -o "$TMP/$name.strace" \
        -E LD_PRELOAD="$AUTOCLOSE_LIB" -E AUTOCLOSE_GRACE_MS=$GRACE -E AUTOCLOSE_MODE="$mode" "$@"
}

# The control proves that the tracing sees the shim act, and that a grace period has passed.
traced witness shutdown "$FIXTURES/mos_server" --style read --port-file "$TMP/witness.port"
traced unix-shutdown shutdown "$FIXTURES/edge_server" --case unix --path "$TMP/s.sock" \
    --port-file "$TMP/unix-shutdown.port"
traced unix-close close "$FIXTURES/edge_server" --case unix --path "$TMP/c.sock" \
    --port-file "$TMP/unix-close.port"
traced udp shutdown "$FIXTURES/edge_server" --case udp --port-file "$TMP/udp.port"
start_bg zero LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
    "$FIXTURES/edge_server" --case zero-read --after-ms $((GRACE + 1200)) \
    --port-file "$TMP/zero.port"
WITNESS_PORT=$(await_port witness)
udp_port=$(await_port udp)
zero_port=$(await_port zero)
await_port unix-shutdown >/dev/null
await_port unix-close >/dev/null

client unix-shutdown-client --unix "$TMP/s.sock" --count 2 || fail "unix exchanges failed"
client unix-close-client --unix "$TMP/c.sock" --count 2 || fail "unix exchanges failed"
python3 "$SCRIPT_FIXTURES/udp_probe.py" --port "$udp_port" --empty 3 >"$TMP/udp-empty.out" ||
    fail "could not send empty datagrams"
# The reply only comes once the server's zero-length reads have outlasted the grace.
client_bg zero-client --port "$zero_port" --hold-ms 1500
client witness_client --port "$WITNESS_PORT" || fail "control exchange failed"
wait_witness $((GRACE + 3000))

echo "traced calls:"
wait_until 2000 has_lines 1 'shutdown\(' "$TMP/witness.strace" || true
for name in witness unix-shutdown unix-close udp; do
    echo "  $name: $(count_lines "$CALLS" "$TMP/$name.strace")"
    grep -E "$CALLS" "$TMP/$name.strace" | sed 's/^/    /' || true
done
has_lines 1 'shutdown\(' "$TMP/witness.strace" || fail "strace did not see the control's shutdown"
for name in unix-shutdown unix-close udp; do
    assert_eq 0 "$(count_lines "$CALLS" "$TMP/$name.strace")" "$name: shutdown/dup2/dup3 calls"
done
assert_eq 2 "$(count_lines '^eof fd=' "$TMP/unix-close.out")" "unix EOFs seen by the server"
assert_eq 3 "$(count_lines '^empty datagram' "$TMP/udp.out")" "empty datagrams received"
python3 "$SCRIPT_FIXTURES/udp_probe.py" --port "$udp_port" --echo ping >"$TMP/udp-echo.out" ||
    fail "UDP server stopped echoing after empty datagrams"
echo "  udp after the grace: $(cat "$TMP/udp-echo.out")"

wait_until 5000 grep -q '^ok conn=1' "$TMP/zero-client.out" || fail "zero-read: no reply"
grep '^zero-length' "$TMP/zero.out" | sed 's/^/  /'
assert_eq 1 "$(count_state established "$zero_port" server)" "zero-read: ESTABLISHED (server)"
assert_eq 1 "$(count_client established "$zero_port" zero-client)" "zero-read: ESTABLISHED (client)"
wait_bg zero-client || fail "zero-read: client failed"

client witness-again --port "$WITNESS_PORT" || fail "listener stopped accepting after the grace"
assert_eq 1 "$(ss -Htln "( sport = :$WITNESS_PORT )" | wc -l)" "listening sockets on the control"
pass "udp, unix, zero-length reads and the listener left alone"
