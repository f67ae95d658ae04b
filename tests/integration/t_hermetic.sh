#!/usr/bin/env bash
# What run.sh's network namespaces are for: another workload that fills the machine's TIME_WAIT
# table (a benchmark of short connections) cannot fail the tests that count TIME_WAIT, and a test
# does not see the sockets of the namespace that started it.
#
# The real host is never touched (other runs may share it): a network namespace of this test's
# own stands in for it. There tcp_max_tw_buckets (one per namespace) is lowered to TW_MAX and a
# filler (tests/fixtures/tw_fill.py) makes short connections until the kernel counts TIME_WAIT
# overflows, and goes on making them: the table stays full. From inside, run.sh runs
# hermetic_probe.sh (it must see neither the filler's listener nor a TIME_WAIT) and tests that
# count TIME_WAIT: all must pass, and the filler's connections must have kept overflowing
# meanwhile. The control: the probe and t_stalled again with INTEGRATION_NAMESPACES=off, sharing
# the full table; both must fail, or this test would prove nothing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

if [ -z "${HERMETIC_STAND_IN:-}" ]; then
    command -v unshare >/dev/null || skip "no network namespace here: unshare is not installed"
    for how in "--net" "--user --map-root-user --net"; do
        # shellcheck disable=SC2086 # $how is a list of options
        if unshare $how true 2>/dev/null; then
            rc=0
            # shellcheck disable=SC2086
            unshare $how env HERMETIC_STAND_IN=1 bash "$0" || rc=$?
            exit $rc
        fi
    done
    skip "no network namespace here (unshare --net: $(unshare --net true 2>&1 | head -n 1))"
fi

TW_MAX=256
ip link set lo up || skip "cannot bring up loopback in the stand-in namespace"
echo $TW_MAX >/proc/sys/net/ipv4/tcp_max_tw_buckets ||
    skip "cannot set tcp_max_tw_buckets in a network namespace of its own"
here=$(dirname "$0")

tw_count() { ss -Htan state time-wait | wc -l; }
# shellcheck disable=SC2317 # called through wait_until
table_full() { [ "$(tw_count)" -ge "$TW_MAX" ] && [ "$(tw_overflows)" -gt 0 ]; }

start_bg filler python3 "$SCRIPT_FIXTURES/tw_fill.py" --port-file "$TMP/filler.port" \
    --burst $((TW_MAX + 100))
port=$(await_port filler)
wait_until 10000 table_full ||
    fail "the stand-in's TIME_WAIT table is not full:" \
        "$(tw_count) of $TW_MAX, $(tw_overflows) overflows"
echo "stand-in host: TIME_WAIT=$(tw_count) (tcp_max_tw_buckets=$TW_MAX)," \
    "overflows=$(tw_overflows); the filler goes on"

# nested MODE BOUND_S TEST...: run.sh from here with INTEGRATION_NAMESPACES=MODE; its output
# in $TMP/MODE.run, its summary shown indented; its exit status.
nested() {
    local mode=$1 bound=$2 rc=0
    shift 2
    INTEGRATION_NAMESPACES=$mode HERMETIC_LISTENER_PORT=$port timeout "$bound" \
        "$here/run.sh" "$@" >"$TMP/$mode.run" 2>&1 || rc=$?
    grep -E '^(ok|FAIL|skip|integration:|[0-9]+ passed)' "$TMP/$mode.run" | sed 's/^/  | /'
    return $rc
}

echo "run.sh with a namespace per test, the stand-in's table full:"
before=$(tw_overflows)
nested on 40 hermetic_probe t_baseline_leak t_stalled t_close_mode ||
    fail "a test failed in a namespace of its own:"$'\n'"$(cat "$TMP/on.run")"
grep -q '^integration: no network namespace' "$TMP/on.run" &&
    fail "run.sh made no namespace where this test could"
during=$(($(tw_overflows) - before))
echo "  the filler's TIME_WAIT overflows meanwhile: $during"
[ "$during" -gt 0 ] || fail "the stand-in's table did not stay full during the run"

echo "control: the same without namespaces, in the full table (must fail):"
nested off 30 hermetic_probe t_stalled && fail "without namespaces the control passed too"
for t in hermetic_probe t_stalled; do
    grep -q "^FAIL  $t" "$TMP/off.run" ||
        fail "control: $t did not fail:"$'\n'"$(cat "$TMP/off.run")"
done
grep -q 'TIME_WAIT table overflowed' "$TMP/off.run" ||
    fail "control: t_stalled failed, but not for the full table:"$'\n'"$(cat "$TMP/off.run")"
pass "with the table full, the tests pass in namespaces of their own and fail without"
