#!/usr/bin/env bash
# A close cancelled by pthread_cancel in a musl server run as `autoclose -- server`. musl's
# cancellation does not unwind the stack (it runs the pthread_cleanup_push handlers and exits the
# thread), so the library's close mark is ended by a handler of its own there (AC_ON_CANCEL in
# libc_compat.h), not by the cleanup that glibc's unwinding runs. Without it the mark stays: the
# leaked connection is never reclaimed. Skipped without the musl build (musl-gcc, from Debian's
# musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
[ -x "$FIXTURES_MUSL/cancel_close" ] ||
    skip "no musl cancel_close in $FIXTURES_MUSL (make integration builds it)"
use_wrapper

start_bg server "$AUTOCLOSE" --grace-ms 300 --sweep-ms 200 -- "$FIXTURES_MUSL/cancel_close" \
    --port-file "$TMP/server.port"
port=$(await_port server)
maps_has "$(main_pid server)" "$AUTOCLOSE_LIBMUSL" || fail "the musl library is not loaded"
client c --port "$port" --no-message || fail "client failed"
wait_until 5000 grep -q '^close cancelled; fd=[0-9]* still open: yes' "$TMP/server.out" ||
    fail "the fixture's close was not cancelled with the connection still open: $(cat "$TMP/server.out")"
wait_until 4000 reclaimed "$port" 1 c ||
    fail "the connection whose close was cancelled was never reclaimed: $(report_states "$port" c)"
grep -Eq '(shutdown|close) fd=.* found=sweep' "$TMP/server.err" || fail "no reclaim logged"
pass "a close cancelled in a musl program leaves no mark behind: the connection is reclaimed"
