#!/usr/bin/env bash
# While a program has no thread of its own, the shim makes the cancellable system calls itself
# (glibc's multi-threaded path is for cancellations only another thread could ask for). The
# program's first pthread_create must give glibc's functions back before the new thread runs:
# that thread, blocked in read(), is then cancellable as read promises.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

timeout 20 env LD_PRELOAD="$AUTOCLOSE_LIB" "$FIXTURES/cancel_probe" >"$TMP/probe.out" 2>&1
status=$?
sed 's/^/  /' "$TMP/probe.out"
grep -qx 'timer=yes' "$TMP/probe.out" || fail "the shim's timer never started: nothing was tested"
grep -qx 'cancelled' "$TMP/probe.out" || fail "the thread blocked in read() could not be cancelled"
assert_eq 0 "$status" "cancel_probe's exit status"
pass "the program's first thread gets glibc's cancellable read back"
