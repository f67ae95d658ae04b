#!/usr/bin/env bash
# pthread_cancel in musl programs run as `autoclose -- program`. musl's cancellation does not
# unwind the stack (it runs the pthread_cleanup_push handlers and exits the thread), so what a
# wrapper holds during a cancellable call is given back by a handler of its own there
# (AC_ON_CANCEL in libc_compat.h), not by the cleanup that glibc's unwinding runs: (1) a close
# cancelled before its system call ends its close mark (without it the leaked connection is
# never reclaimed); (2) a poll cancelled while it waits leaves the program's array as the
# program set it, on one entry and on two (without it POLLRDHUP stays added); (3) a thread
# blocked in read through the wrapper is still cancelled; (4) a poll, ppoll or two-entry poll left
# by a signal handler's siglongjmp, three times, leaves no handler behind (the thread's exit called
# one from a dead frame: SIGSEGV); arrays up to 64 entries are polled as a copy. Skipped without the musl build
# (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
for f in cancel_close cancel_poll cancel_probe longjmp_poll longjmp_close; do
    [ -x "$FIXTURES_MUSL/$f" ] || skip "no musl $f in $FIXTURES_MUSL (make integration builds it)"
done
use_wrapper
rc=0 # each run_rc sets it

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
echo "  (1) the connection whose close was cancelled was reclaimed"

run_rc rc "$AUTOCLOSE" -- "$FIXTURES_MUSL/cancel_poll"
sed 's/^/  (2) /' "$TMP/rc.out"
grep -qx ok "$TMP/rc.out" || fail "a cancelled poll left the program's array changed: $(cat "$TMP/rc.out")"
assert_eq 0 "$rc" "cancel_poll's exit status"

run_rc rc "$AUTOCLOSE" -- "$FIXTURES_MUSL/cancel_probe"
sed 's/^/  (3) /' "$TMP/rc.out"
grep -qx 'timer=yes' "$TMP/rc.out" || fail "the library's timer never started: nothing was tested"
grep -qx cancelled "$TMP/rc.out" || fail "the thread blocked in read() could not be cancelled"
assert_eq 0 "$rc" "cancel_probe's exit status"
for m in poll ppoll many; do
    run_rc rc "$AUTOCLOSE" -- "$FIXTURES_MUSL/longjmp_poll" "$m"
    assert_eq 0 "$rc" "  (4) $m left three times by siglongjmp, then the thread's exit: exit status"
    grep -qx 'joined: ok' "$TMP/rc.out" || fail "longjmp_poll $m: $(cat "$TMP/rc.out" "$TMP/rc.err")"
done
run_rc rc "$AUTOCLOSE" -- "$FIXTURES_MUSL/longjmp_close"
sed 's/^/  (5) /' "$TMP/rc.out"
grep -qx 'close left by siglongjmp' "$TMP/rc.out" ||
    fail "longjmp_close: the close was not left by siglongjmp: nothing was tested: $(cat "$TMP/rc.out")"
grep -qx 'joined: ok' "$TMP/rc.out" || fail "longjmp_close: $(cat "$TMP/rc.out" "$TMP/rc.err")"
assert_eq 0 "$rc" "  (5) a lingering close left by siglongjmp, then the thread's exit: exit status"
pass "musl: a cancelled close leaves no mark, a cancelled poll leaves the array as it was, a" \
    "read through the wrapper stays a cancellation point, a poll or a close left by" \
    "siglongjmp leaves nothing behind"
