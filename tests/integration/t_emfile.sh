#!/usr/bin/env bash
# A server at its RLIMIT_NOFILE limit with a pending reclaim, for 0 to 3 free descriptors. The
# placeholder every reclaimed number is refilled with exists from the process's first connection,
# so the release needs no spare descriptor: the number holds the placeholder (outcome=close)
# every time, in both modes; shutdown mode sends its FIN first and logs "shutdown". The program
# must live through it.
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
        grep -Eq "^round free=$free fd=[0-9]+ outcome=close table_full=EMFILE\$" "$TMP/$mode.out" ||
            fail "$mode, $free free: expected the number released (outcome=close) with the table full"
    done
    action=close
    [ "$mode" = shutdown ] && action=shutdown
    assert_eq 4 "$(count_lines "libautoclose\[[0-9]+\]: $action fd=" "$TMP/$mode.err")" \
        "$mode: reclaims logged as $action"
done
pass "at the descriptor limit every leaked number was released to the placeholder, in both modes"
