#!/usr/bin/env bash
# A server that locks itself down after start-up with its own seccomp allow-list (libseccomp,
# anything else kills it with SIGSYS): the library must not make it die. Three ways:
#   - the filter after the listener exists (the common pattern): the library's thread starts
#     just before the filter and runs outside it; the server lives and its leaks are reclaimed;
#   - the filter for every thread (TSYNC): the library stops, says so in one line, and the
#     server lives with its leaks;
#   - the filter before any TCP socket exists: no thread can be started under it; the server
#     lives with its leaks;
#   - a minimal list for a single-threaded loop (no futex, no rt_sigprocmask), with a grace
#     shorter than the sweep's interval (the case where an EOF would wake the library's thread)
#     and with the sweep off: the server lives and its leaks are reclaimed;
#   - a filter that is not this process's (a vfork child's, for every thread of the child), and
#     one the kernel refuses: the library goes on, and the leaks are reclaimed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim
[ -x "$FIXTURES/lockdown_server" ] || fail "$FIXTURES/lockdown_server is not built (make fixtures)"
# Under a sanitizer the runtime's own system calls (and threads) meet the filter first.
[[ $AUTOCLOSE_LIB != *" "* ]] || skip "a sanitizer runtime's own system calls meet the program's filter"
ulimit -c 0 # a server killed by SIGSYS would leave its core here

GRACE=300
N=3
declare -A expect_reclaim=([after]=yes [tsync]=no [before]=no [minimal]=yes [minimal-nosweep]=yes
    [vfork]=yes [refused]=yes)
declare -A opts=([after]="" [tsync]="--tsync" [before]="--before-listen" [minimal]="--minimal"
    [minimal-nosweep]="--minimal" [vfork]="--vfork-filter" [refused]="--refused-filter")
declare -A sweep=([minimal-nosweep]=0)
for run in after tsync before minimal minimal-nosweep vfork refused; do
    # shellcheck disable=SC2086 # the options are words
    start_bg "$run" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG=debug \
        AUTOCLOSE_SWEEP_MS="${sweep[$run]:-1000}" \
        "$FIXTURES/lockdown_server" --port-file "$TMP/$run.port" ${opts[$run]}
    port=$(await_port "$run")
    wait_until 5000 grep -Eq '^(locked down|a vfork child installed|the filter was refused)' \
        "$TMP/$run.out" || fail "$run: the server never got to its loop: $(cat "$TMP/$run.err")"
    client "$run-client" --port "$port" --count "$N" --no-message || fail "$run: client failed"
    # Long enough for the read path and the sweep (1 s) to have acted, had they been going to.
    sleep 1.5
    kill -0 "$(main_pid "$run")" 2>/dev/null ||
        fail "$run: the server died under its own seccomp filter (SIGSYS): $(cat "$TMP/$run.err")"
    if [ "${expect_reclaim[$run]}" = yes ]; then
        wait_until 5000 reclaimed "$port" "$N" "$run-client" ||
            fail "$run: leaks not reclaimed: $(report_states "$port" "$run-client")"
    else
        leaking "$port" "$N" "$run-client" ||
            fail "$run: expected the leaks to stay: $(report_states "$port" "$run-client")"
    fi
    echo "  $run: alive; $(report_states "$port" "$run-client")"
done
grep -q 'off: the program installs a seccomp filter for every thread' "$TMP/tsync.err" ||
    fail "tsync: no line saying the library stopped"
grep -q 'seccomp filter before any TCP connection' "$TMP/before.err" ||
    fail "before: no line saying no thread can be started"
pass "a server locking itself down lives in every case; reclaimed where the library's thread came first"
