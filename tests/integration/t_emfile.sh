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
    # With one or two free, a sanitizer runtime that opens and closes a file of its own now and
    # then can free one more: either outcome is right then, as long as the log says which.
    for free in 0 1 2 3; do
        want=shutdown
        [ "$mode" = close ] && [ "$free" -ge 2 ] && want=close
        [ "$mode" = close ] && [ "$free" -ge 1 ] && [ "$free" -le 2 ] && want='(shutdown|close)'
        grep -Eq "^round free=$free fd=[0-9]+ outcome=$want table_full=EMFILE\$" "$TMP/$mode.out" ||
            fail "$mode, $free free: expected outcome=$want with the table full"
    done
    shutdowns=$(count_lines 'outcome=shutdown' "$TMP/$mode.out")
    closes=$(count_lines 'outcome=close' "$TMP/$mode.out")
    assert_eq "$shutdowns" "$(count_lines 'libautoclose\[[0-9]+\]: shutdown fd=' "$TMP/$mode.err")" \
        "$mode: shutdowns logged"
    assert_eq "$closes" "$(count_lines 'libautoclose\[[0-9]+\]: close fd=' "$TMP/$mode.err")" \
        "$mode: releases logged"
    if [ "$mode" = close ]; then
        assert_eq "$shutdowns" "$(count_lines 'fell back to shutdown' "$TMP/$mode.err")" \
            "close mode: shutdowns that say they fell back"
    fi
done
pass "at the descriptor limit close mode fell back to shutdown and said so; every connection ended"
