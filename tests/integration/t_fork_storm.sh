#!/usr/bin/env bash
# t_fork's fork storm, again and again: a threaded program forks while its other threads are
# inside the shim's slow path (lock, table, timer), in both modes, with a grace of 0 and 1 ms so
# the timer acts during the forks too, and the sweep every 50 ms. A deadlock inherited through a
# fork shows up only now and then, so one run proves little: this repeats, 8 runs at most within
# a time budget (STORM_BUDGET_S, 15 s; at least one run of each setting), and fails on the first
# stuck or failed child. Not more: each run leaves some 4,000 TIME_WAITs behind for a minute, and
# the kernel's table (tcp_max_tw_buckets) is shared with every other test on the machine.
#
# A stuck child's stacks are recorded (gdb) and shown. Under ThreadSanitizer one kind of hang is
# the runtime's, not the shim's: gcc 12's libtsan does not hold its internal allocator's lock
# across fork, so a child whose parent was inside that allocator at the fork spins forever when
# it starts a thread (ProcCreate -> InternalAlloc -> StaticSpinMutex, with die_after_fork=0,
# which the TSan documentation warns "may deadlock"). Such a run is shown and repeated, at most
# three times; a hang with any thread waiting in the shim fails at once, sanitizer or not.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

BUDGET_S=${STORM_BUDGET_S:-15}
FORKS=100
runtime_hangs=0

# True when every stuck child hung inside the TSan runtime's own locks, with no thread waiting
# on a lock of the shim's.
tsan_runtime_hang() {
    case $AUTOCLOSE_LIB in *libtsan*) ;; *) return 1 ;; esac
    local f
    for f in "$TMP"/stacks/stuck.*; do
        [ -f "$f" ] || return 1
        grep -q '__sanitizer::.*Mutex::Lock' "$f" || return 1
        grep -Eq ' (ac_tracker_lock|ac_log|___?pthread_mutex_lock|__lll_lock_wait) \(' "$f" && return 1
    done
    return 0
}

configs=("shutdown 1" "close 0" "shutdown 0" "close 1")
runs=0
start=$SECONDS
while :; do
    for cfg in "${configs[@]}"; do
        read -r mode grace <<<"$cfg"
        rm -rf "$TMP/stacks" && mkdir "$TMP/stacks"
        what="run $((runs + 1)) (mode=$mode grace=${grace}ms)"
        if timeout 50 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_MODE="$mode" \
            AUTOCLOSE_GRACE_MS="$grace" AUTOCLOSE_SWEEP_MS=50 AUTOCLOSE_LOG=off \
            "$FIXTURES/fork_storm" --forks $FORKS --threads 4 --stacks "$TMP/stacks" \
            >"$TMP/storm.out" 2>&1; then
            grep -q "^forks=$FORKS stuck=0 failed=0\$" "$TMP/storm.out" || fail "$what did not complete"
        elif grep -q " stuck=[1-9][0-9]* failed=0\$" "$TMP/storm.out" && tsan_runtime_hang &&
            [ $runtime_hangs -lt 3 ]; then
            runtime_hangs=$((runtime_hangs + 1))
            echo "  $what: a child hung inside the TSan runtime (not the shim); its stacks:"
            grep -E '^#[0-9]+ ' "$TMP"/stacks/stuck.* | grep -E 'sanitizer::|ac_|pthread_create' |
                head -n 8 | sed 's/^/    /'
            continue
        else
            cat "$TMP"/stacks/stuck.* 2>/dev/null | grep -E '^(Thread|#[0-9]+ )' | head -n 60 |
                sed 's/^/    | /' >&2
            fail "$what: $(tail -n 5 "$TMP/storm.out")"
        fi
        runs=$((runs + 1))
    done
    if [ $((SECONDS - start)) -ge "$BUDGET_S" ] || [ $runs -ge 8 ]; then
        break
    fi
done
echo "  $runs runs of $FORKS forks against 4 threads in $((SECONDS - start)) s"
pass "$((runs * FORKS)) forks in $runs runs (both modes, grace 0 and 1 ms): no stuck or failed child"
