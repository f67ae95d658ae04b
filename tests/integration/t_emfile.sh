#!/usr/bin/env bash
# A server at its RLIMIT_NOFILE limit with a pending reclaim. Close mode needs two spare
# descriptors for its placeholder: with none or one free it must fall back to shutdown and say
# so, with two or three it releases the socket; shutdown mode needs none. The connection must
# end every time, and the program must live through it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=200
for mode in close shutdown; do
    timeout 40 env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_MODE=$mode AUTOCLOSE_GRACE_MS=$GRACE \
        "$FIXTURES/fd_limits" --case emfile --grace-ms $GRACE >"$TMP/$mode.out" \
        2>"$TMP/$mode.err" || fail "$mode: fd_limits failed or crashed (exit $?)"
    echo "$mode mode:"
    sed 's/^/  /' "$TMP/$mode.out"
    sed -n 's/^.*libautoclose\[[0-9]*\]: /  shim: /p' "$TMP/$mode.err"
    for free in 0 1 2 3; do
        fd=$(sed -n "s/^round free=$free fd=\\([0-9]*\\) .*/\\1/p" "$TMP/$mode.out")
        want=shutdown
        [ "$mode" = close ] && [ "$free" -ge 2 ] && want=close
        grep -q "^round free=$free fd=$fd outcome=$want table_full=EMFILE\$" "$TMP/$mode.out" ||
            fail "$mode, $free free: expected outcome=$want with the table full"
        [ "$mode" = close ] && [ "$free" -lt 2 ] && want="shutdown fd=$fd .*fell back to shutdown"
        [ "$(count_lines "libautoclose\\[[0-9]+\\]: $want" "$TMP/$mode.err")" -ge 1 ] ||
            fail "$mode, $free free: no log line '$want'"
    done
done
assert_eq 2 "$(count_lines 'fell back to shutdown' "$TMP/close.err")" "close mode fall-backs logged"
pass "at the descriptor limit close mode fell back to shutdown and said so; every connection ended"
