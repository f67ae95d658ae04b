#!/usr/bin/env bash
# Run by t_hermetic through run.sh, as a test (not a t_*.sh: never run on its own). Passes only
# if the namespace run.sh gave it shows nothing of the namespace run.sh was started from: not the
# listener HERMETIC_LISTENER_PORT names, not a socket in TIME_WAIT, not a TIME_WAIT overflow.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

port=${HERMETIC_LISTENER_PORT:?run by t_hermetic only: HERMETIC_LISTENER_PORT names its listener}
listed=$(ss -Htln "( sport = :$port )" | wc -l)
echo "  listeners on port $port seen here: $listed"
[ "$listed" -eq 0 ] || fail "the listener on port $port of the calling namespace is visible here"
# shellcheck disable=SC2016 # $1 is the inner shell's
if timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$port" 2>/dev/null; then
    fail "a connection to 127.0.0.1:$port succeeded: this is the calling namespace's loopback"
fi
assert_eq 0 "$(ss -Htan state time-wait | wc -l)" "sockets in TIME_WAIT seen here"
assert_eq 0 "$TW_OVERFLOWS_AT_START" "TIME_WAIT overflows counted here"
pass "a namespace of its own: no listener, TIME_WAIT or overflow of the caller's"
