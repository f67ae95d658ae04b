#!/usr/bin/env bash
# The sweep when the kernel has no socket in CLOSE_WAIT at all, which on a busy machine almost
# never happens (sock_diag answers for every process of the network namespace): here it is
# made certain, in a network namespace of the test's own with only loopback. A server under the
# shim, sweeping every 50 ms, holds a live connection for a while, so sweep after sweep finds
# nothing; then a client leaves and its connection must still be reclaimed, and the server must
# be alive. Under make test-asan an empty sweep must not trip UBSan either (a library function
# handed a null pointer with a zero count is undefined behaviour all the same).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

if [ -z "${IN_OWN_NETNS:-}" ]; then
    for how in "--net" "--user --map-root-user --net"; do
        # shellcheck disable=SC2086 # $how is a list of options
        if unshare $how true 2>/dev/null; then
            # shellcheck disable=SC2086
            exec unshare $how env IN_OWN_NETNS=1 bash "$0"
        fi
    done
    skip "cannot make a network namespace (unshare --net)"
fi
ip link set lo up 2>/dev/null || skip "cannot bring up loopback in the new namespace"
assert_eq 0 "$(ss -Htan state close-wait | wc -l)" "sockets in CLOSE_WAIT in this namespace"

LOG=$TMP/shim.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=300 AUTOCLOSE_SWEEP_MS=50 \
    AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/mos_server" --style thread \
    --port-file "$TMP/server.port"
port=$(await_port server)
pid=$(main_pid server)
# A live connection starts the shim's timer; for 1.5 s every sweep finds nothing.
client live --port "$port" --hold-ms 1500 || fail "the live client failed"
kill -0 "$pid" 2>/dev/null || fail "the server died while the sweep found nothing"
client leaver --port "$port" || fail "the leaving client failed"
wait_until 3000 reclaimed "$port" 1 leaver ||
    fail "the leaver's connection was not reclaimed: $(report_states "$port" leaver)"
kill -0 "$pid" 2>/dev/null || fail "the server died"
echo "  $(actions "$LOG" | wc -l) action(s): $(actions "$LOG" | sed 's/.*]: //')"
pass "sweeps with nothing in CLOSE_WAIT: server alive, the next leak still reclaimed"
