#!/usr/bin/env bash
# The library's own descriptors never take a number the program expects back. A single-threaded
# program runs "close(0); open() gives 0" in a tight loop for 3 s while the shim sweeps every
# 10 ms (its one half-closed connection, never read, is what the sweep finds). Each miss is a
# moment when something else held number 0: the sweep's netlink socket or /proc directory, when
# it made them anew at every sweep (about 150 misses in 3 s here). The library now makes them
# once, before the program goes on from its first connect, and keeps them above its numbers.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# The shim's lines go to stderr: a log file would be opened, at its first line, by the library.
LOG=$TMP/idiom.err
timeout 30 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_SWEEP_MS=10 AUTOCLOSE_GRACE_MS=300 \
    "$FIXTURES/fd_idiom" --ms 3000 >"$TMP/idiom.out" 2>"$LOG" || fail "fd_idiom failed (status $?)"
cat "$TMP/idiom.out"
result=$(grep '^iterations=' "$TMP/idiom.out") || fail "fd_idiom printed no result"
iterations=${result#iterations=}
iterations=${iterations%% *}
[ "$iterations" -gt 1000 ] || fail "only $iterations iterations"
# The sweep ran throughout: it found the never-read connection and reclaimed it.
assert_eq "read=0 ready=0 sweep=1" "$(found_summary "$LOG")" "how the leak was found"
assert_eq 0 "${result##*misses=}" "open() not returning the number just closed"
pass "$iterations close(0)+open() pairs while sweeping every 10 ms: open always gave 0 back"
