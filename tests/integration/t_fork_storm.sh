#!/usr/bin/env bash
# t_fork's fork storm, again and again: a threaded program forks while its other threads are
# inside the shim's slow path (lock, table, timer), in both modes, with a grace of 0 and 1 ms so
# the timer acts during the forks too, and the sweep every 50 ms. A deadlock inherited through a
# fork shows up only now and then, so one run proves little: this repeats, 8 runs at most within
# a time budget (STORM_BUDGET_S, 15 s; at least one run of each setting), and fails on the first
# stuck or failed child. Not more: each run leaves some 4,000 TIME_WAITs behind for a minute, and
# the kernel's table (tcp_max_tw_buckets) is shared with every other test on the machine.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

BUDGET_S=${STORM_BUDGET_S:-15}
FORKS=100
configs=("shutdown 1" "close 0" "shutdown 0" "close 1")
runs=0
start=$SECONDS
while :; do
    for cfg in "${configs[@]}"; do
        read -r mode grace <<<"$cfg"
        timeout 50 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_MODE="$mode" \
            AUTOCLOSE_GRACE_MS="$grace" AUTOCLOSE_SWEEP_MS=50 AUTOCLOSE_LOG=off \
            "$FIXTURES/fork_storm" --forks $FORKS --threads 4 >"$TMP/storm.out" 2>&1 ||
            fail "run $((runs + 1)) (mode=$mode grace=${grace}ms): $(tail -n 5 "$TMP/storm.out")"
        grep -q "^forks=$FORKS stuck=0 failed=0\$" "$TMP/storm.out" ||
            fail "run $((runs + 1)) (mode=$mode grace=${grace}ms) did not complete"
        runs=$((runs + 1))
    done
    if [ $((SECONDS - start)) -ge "$BUDGET_S" ] || [ $runs -ge 8 ]; then
        break
    fi
done
echo "  $runs runs of $FORKS forks against 4 threads in $((SECONDS - start)) s"
pass "$((runs * FORKS)) forks in $runs runs (both modes, grace 0 and 1 ms): no stuck or failed child"
