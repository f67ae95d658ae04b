#!/usr/bin/env bash
# While a program has no thread of its own, the shim makes the cancellable system calls itself,
# and gives glibc's functions back at the program's first pthread_create. A thread can be born
# without that call: C11 thrd_create, or the thread that runs a timer_create(SIGEV_THREAD)
# notification (glibc starts both internally). Such a thread, blocked in read() on an idle TCP
# connection, must still be cancellable as read promises.
#   control   the same program without the shim: both threads are cancelled
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
# ThreadSanitizer's runtime does not follow a thread made by thrd_create: cancelling one ends in
# a crash inside the runtime, with or without the shim.
[[ $AUTOCLOSE_LIB == *libtsan* ]] && skip "ThreadSanitizer does not follow threads made by thrd_create"

VIAS=(thrd timer)
bad=()
for via in "${VIAS[@]}"; do
    for run in bare shim; do
        if [ "$run" = bare ]; then
            cmd=("$FIXTURES/thrd_cancel" --via "$via" --bare)
        else
            cmd=(env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/thrd_cancel" --via "$via")
        fi
        status=0
        timeout 20 "${cmd[@]}" >"$TMP/$via-$run.out" 2>&1 || status=$?
        echo "$via, $run: $(xargs <"$TMP/$via-$run.out"); exit status $status"
        grep -qx reading "$TMP/$via-$run.out" || fail "$via, $run: the thread never started"
        if [ "$run" = shim ]; then
            grep -qx 'timer=yes' "$TMP/$via-$run.out" ||
                fail "$via: the shim's timer never started: nothing was tested"
        fi
        grep -qx cancelled "$TMP/$via-$run.out" && [ "$status" -eq 0 ] || bad+=("$via ($run)")
    done
done
[ ${#bad[@]} -eq 0 ] || fail "a thread blocked in read() could not be cancelled: ${bad[*]}"
pass "threads from thrd_create and SIGEV_THREAD timers blocked in read() are cancellable"
