#!/usr/bin/env bash
# ppoll and pselect promise to leave their const timeout alone. A single-threaded program whose
# shim timer runs (it has a TCP connection) reuses one 100 ms timeout for ten calls of each: the
# ten calls must take the whole second, and the timeout must still read 0.100000000 afterwards.
# The kernel's ppoll writes the time left back into its argument: a wait made with the caller's
# own pointer turns every later call into a zero-length one.
#   control   the same program without the shim: the figures it prints are the right ones
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

CASES=(ppoll-fd ppoll-none pselect-fd pselect-none)
MIN_MS=900 # ten waits of 100 ms, less a margin for a coarse clock

timeout 20 "$FIXTURES/timeout_probe" --bare >"$TMP/bare.out" 2>&1 || fail "the control run failed"
timeout 20 env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/timeout_probe" >"$TMP/shim.out" 2>&1 ||
    fail "the run under the shim failed"
grep -qx 'timer=yes' "$TMP/shim.out" || fail "the shim's timer never started: nothing was tested"

# check RUN CASE: ten calls took the whole second, none reported ready, and the timeout reads as
# it did; every case is checked before the verdict, so a failure names all the broken ones.
bad=()
check() {
    local line elapsed after ready
    line=$(grep "^$2 " "$TMP/$1.out") || fail "$1: no result for $2"
    elapsed=$(sed -n 's/.* elapsed_ms=\([0-9]*\).*/\1/p' <<<"$line")
    after=$(sed -n 's/.* timeout_after=\([0-9.]*\).*/\1/p' <<<"$line")
    ready=$(sed -n 's/.* ready=\([0-9]*\).*/\1/p' <<<"$line")
    echo "  $1 $2: ten calls took ${elapsed} ms (expected >= $MIN_MS), timeout after:" \
        "$after (expected 0.100000000), ready: $ready (expected 0)"
    if [ "${elapsed:-0}" -lt "$MIN_MS" ] || [ "$after" != 0.100000000 ] || [ "$ready" != 0 ]; then
        bad+=("$1 $2")
    fi
}
for run in bare shim; do
    for c in "${CASES[@]}"; do
        check "$run" "$c"
    done
done
[ ${#bad[@]} -eq 0 ] || fail "timeout used up or overwritten in: ${bad[*]}"
pass "ppoll and pselect wait the whole timeout each time and leave it unchanged"
