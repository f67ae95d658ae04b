#!/usr/bin/env bash
# Runs one integration test for run.sh, inside whatever namespaces run.sh could make, and then
# makes sure the test left no process behind.
#   isolate.sh [--lo] TOKEN LEFT_FILE TEST     run TEST (exit status: the test's)
#   isolate.sh --sweep TOKEN LEFT_FILE         only look for leftovers (after a timeout)
# --lo: this is a fresh network namespace; bring its loopback up first.
#
# A leftover is any process still alive once the test has ended: in a PID namespace of the
# test's own (this script is its init, pid 1) every other process in it; elsewhere every process
# whose environment holds INTEGRATION_RUN_TOKEN=TOKEN, which the test and all it starts inherit.
# Each is written to LEFT_FILE as "pid comm args" and killed. In a PID namespace the kernel
# would kill them anyway when this script exits; they are named so that the test gets fixed.
set -uo pipefail

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# leftovers TOKEN: sets LEFT to the pids of the live leftovers. Builtins only, in this shell: a
# command or subshell would itself be a process of the namespace.
leftovers() {
    local d pid stat state entries e ours
    LEFT=()
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" != "$$" ] || continue
        read -r stat 2>/dev/null <"$d/stat" || continue
        # The state follows the command name, which is in parentheses and may hold spaces.
        stat=${stat##*) }
        state=${stat%% *}
        # Z and X: it has exited and only waits to be reaped.
        [[ $state != [ZX] ]] || continue
        if [ "$$" -ne 1 ]; then
            mapfile -d '' entries 2>/dev/null <"$d/environ" || continue
            ours=
            for e in "${entries[@]}"; do
                [ "$e" != "INTEGRATION_RUN_TOKEN=$1" ] || ours=yes
            done
            [ -n "$ours" ] || continue
        fi
        LEFT+=("$pid")
    done
}

# describe PID: "pid comm args".
describe() {
    local comm args=()
    read -r comm 2>/dev/null <"/proc/$1/comm" || comm='?'
    mapfile -d '' args 2>/dev/null <"/proc/$1/cmdline" || true
    echo "$1 $comm ${args[*]}"
}

# check TOKEN LEFT_FILE: the test's processes are being killed by its own clean-up as it ends;
# those still alive after a bounded wait are leftovers.
check() {
    local token=$1 left=$2 deadline pid
    deadline=$(($(now_ms) + 2000))
    while :; do
        leftovers "$token"
        if [ ${#LEFT[@]} -eq 0 ] || [ "$(now_ms)" -ge "$deadline" ]; then
            break
        fi
        sleep 0.05
    done
    for pid in "${LEFT[@]}"; do
        describe "$pid" >>"$left"
        kill -KILL "$pid" 2>/dev/null
    done
}

lo=
if [ "${1:-}" = --lo ]; then
    lo=yes
    shift
fi
if [ "${1:-}" = --sweep ]; then
    check "$2" "$3"
    exit 0
fi
token=$1 left=$2 test=$3

if [ -n "$lo" ] && ! ip link set lo up; then
    echo "isolate: cannot bring up loopback in the test's network namespace" >&2
    exit 1
fi
# run.sh's timeout signals the whole process group: the test gets it directly and cleans up.
# Here it only must not end this script before the check (as init of a PID namespace, a signal
# from outside without a handler would not be delivered at all). A handler, not an ignored
# signal: the test would inherit that and could not trap it.
trap ':' TERM INT HUP
INTEGRATION_RUN_TOKEN=$token bash "$test"
rc=$?
check "$token" "$left"
exit $rc
