#!/usr/bin/env bash
# AUTOCLOSE_REUSEADDR=1: the fast restart of a server that never sets SO_REUSEADDR itself. Its
# last connection, which it closed first, leaves a TIME_WAIT on its port for 60 s; restarted at
# once, it fails to bind (EADDRINUSE) unless SO_REUSEADDR is set before bind.
#
# The kernel lets a new socket bind over a TIME_WAIT only when both carry SO_REUSEADDR: the old
# instance must have run with the shim too. So the first restart after the shim is added still
# waits out TIME_WAIT; that case is measured and reported here, not treated as the shim's fault.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

SHIM=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_REUSEADDR=1)

# serve_once NAME PORT [VAR=VALUE...]: plain_listener on PORT serving one connection, which it
# closes first; returns its exit status (3: bind failed with EADDRINUSE).
serve_once() {
    local name=$1 port=$2 rc=0
    shift 2
    start_bg "$name" "$@" "$FIXTURES/plain_listener" --port "$port"
    wait_until 5000 listening_or_gone "$name" || true
    if has_lines 1 '^listening ' "$TMP/$name.out"; then
        client "$name-client" --port "$port" --no-message --hold-ms 100 ||
            fail "$name: the client could not connect"
    fi
    wait_bg "$name" || rc=$?
    echo "  $name: exit $rc: $(cat "$TMP/$name.out" "$TMP/$name.err" | head -n 1)"
    return $rc
}

# listening_or_gone NAME: plain_listener NAME is ready for its client, or already ended (a bind
# that failed).
# shellcheck disable=SC2317 # called through wait_until
listening_or_gone() {
    has_lines 1 '^listening ' "$TMP/$1.out" || ! kill -0 "${BG_PIDS[$1]}" 2>/dev/null
}

# expect_in_use RC WHAT: the run failed to bind with EADDRINUSE (status 3). Succeeding instead
# can also mean the TIME_WAIT was dropped (its table full): tw_fail tells the two apart.
expect_in_use() {
    echo "  $2: exit $1 (expected 3: EADDRINUSE)"
    [ "$1" -eq 3 ] || tw_fail "$2: exit $1, expected 3 (EADDRINUSE)"
}

# time_waits PORT: TIME_WAIT sockets of 127.0.0.1:PORT (the address too: another program's
# socket on another address may have the same port number).
time_waits() { ss -Htan state time-wait "( src 127.0.0.1:$1 )" | wc -l; }

# ---- without the shim: the problem ----------------------------------------------------------
p1=$(pick_port)
echo "port $p1, no shim:"
serve_once first "$p1" || fail "the first run failed"
grep -q 'reuseaddr=0' "$TMP/first.out" || fail "the fixture set SO_REUSEADDR on its own"
tw=$(time_waits "$p1")
echo "  TIME_WAIT on port $p1 after the first run: $tw"
[ "$tw" -ge 1 ] || tw_fail "no TIME_WAIT left on $p1: the restart would prove nothing"
rc=0
serve_once restart "$p1" || rc=$?
expect_in_use "$rc" "restart without the shim"
grep -q 'Address already in use' "$TMP/restart.err" || fail "unexpected failure"

# The shim added for the restart only: the TIME_WAIT was left without SO_REUSEADDR.
rc=0
serve_once restart_shim_only "$p1" "${SHIM[@]}" || rc=$?
if [ $rc -eq 3 ]; then
    echo "  note: AUTOCLOSE_REUSEADDR=1 on the restart alone does not help: the TIME_WAIT" \
        "left by a run without it refuses to share the port (the kernel needs both sides)"
else
    echo "  note: AUTOCLOSE_REUSEADDR=1 on the restart alone: exit $rc"
fi

# ---- with the shim: the fast restart --------------------------------------------------------
p2=$(pick_port "$p1")
echo "port $p2, both runs with AUTOCLOSE_REUSEADDR=1:"
serve_once shim_first "$p2" "${SHIM[@]}" || fail "the first run with the shim failed"
grep -q 'reuseaddr=1' "$TMP/shim_first.out" ||
    fail "SO_REUSEADDR was not set before bind: $(cat "$TMP/shim_first.out")"
tw=$(time_waits "$p2")
echo "  TIME_WAIT on port $p2 after the first run: $tw"
[ "$tw" -ge 1 ] || tw_fail "no TIME_WAIT left on $p2: the restart would prove nothing"
# The same TIME_WAIT refuses a restart whose bind lacks the option (no shim, or the variable
# off), so what follows is the variable's doing.
rc=0
serve_once shim_restart_plain "$p2" || rc=$?
expect_in_use "$rc" "restart without the shim"
rc=0
serve_once shim_restart_off "$p2" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_REUSEADDR=0 || rc=$?
expect_in_use "$rc" "restart with AUTOCLOSE_REUSEADDR=0"
tw_before=$(time_waits "$p2")
serve_once shim_restart "$p2" "${SHIM[@]}" || fail "the restart with the shim failed to serve"
grep -q 'reuseaddr=1' "$TMP/shim_restart.out" || fail "SO_REUSEADDR missing on the restart"
echo "  the restart bound while $tw_before TIME_WAIT sat on the port;" \
    "now $(time_waits "$p2") (its own connection added one)"
[ "$tw_before" -ge 1 ] || tw_fail "the TIME_WAIT was gone before the restart"
for name in first shim_first shim_restart; do
    [ ! -s "$TMP/$name.err" ] || fail "$name wrote to stderr: $(cat "$TMP/$name.err")"
done
pass "a restart over TIME_WAIT fails with EADDRINUSE without the shim (and with the variable\
 off), serves at once with AUTOCLOSE_REUSEADDR=1"
