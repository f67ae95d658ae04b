#!/usr/bin/env bash
# Descriptor numbers past the shim's 65,536-entry table (65535, 65536, 70000): a half-closed
# connection dup2()ed there and read to EOF is reclaimed, a late write gets EPIPE (no SIGPIPE
# death), the program's close frees the number, a live connection put there afterwards is left
# alone, and the number can be reclaimed again. Needs RLIMIT_NOFILE above 70000, which takes
# CAP_SYS_RESOURCE when the hard limit is lower: skipped, saying so, where it cannot be raised.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=200
for mode in shutdown close; do
    rc=0
    timeout 50 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_MODE=$mode AUTOCLOSE_GRACE_MS=$GRACE \
        "$FIXTURES/fd_limits" --case high-fd --grace-ms $GRACE >"$TMP/$mode.out" \
        2>"$TMP/$mode.err" || rc=$?
    [ $rc -ne 77 ] || skip "$(sed -n 's/^skip: //p' "$TMP/$mode.out")"
    echo "$mode mode:"
    sed 's/^/  /' "$TMP/$mode.out"
    [ $rc -eq 0 ] || fail "$mode: fd_limits failed (exit $rc; 141 is a SIGPIPE death)"
    for fd in 65535 65536 70000; do
        grep -Eq "^high fd=$fd first_read=0 outcome=$mode late_write=-1/EPIPE closed=yes \
live=intact again=$mode\$" "$TMP/$mode.out" || fail "$mode: fd $fd not handled as expected"
        [ "$(count_lines "libautoclose\\[[0-9]+\\]: $mode fd=$fd " "$TMP/$mode.err")" -eq 2 ] ||
            fail "$mode: expected two actions logged on fd $fd"
    done
done
pass "numbers 65535, 65536 and 70000: reclaimed, EPIPE on late writes, forgotten on close"
