#!/usr/bin/env bash
# An AUTOCLOSE_* variable the library does not know (a mistyped name) costs one line at start that
# names it with the nearest known one, and nothing else: the known settings still apply. The
# variables the project's tools set for themselves (make test's AUTOCLOSE_LIB and AUTOCLOSE_LIB32,
# exported to every test) are known: a server with only those beside its settings prints nothing.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
export AUTOCLOSE_LIB AUTOCLOSE_LIB32 # as make integration exports them
# At level error the action lines stay out of stderr; lines about the settings are said at any level.
start_bg typo LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_LOG=error AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_GRACE=2000 \
    AUTOCLOSE_PORT=10540 "$FIXTURES/mos_server" --style read --port-file "$TMP/typo.port"
start_bg plain LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_LOG=error AUTOCLOSE_GRACE_MS=$GRACE \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/plain.port"
typo=$(await_port typo)
plain=$(await_port plain)
client typo-client --port "$typo" || fail "the server with mistyped variables no longer serves"
client plain-client --port "$plain" || fail "the plain server does not serve"
wait_until $((GRACE + 3000)) reclaimed "$typo" 1 typo-client ||
    fail "AUTOCLOSE_GRACE_MS no longer applies beside unknown names: $(report_states "$typo" typo-client)"
wait_until 2000 reclaimed "$plain" 1 plain-client ||
    fail "the plain server was not protected: $(report_states "$plain" plain-client)"

sed 's/^/  typo stderr: /' "$TMP/typo.err"
expect() { # LINE: present exactly once on the server's stderr
    assert_eq 1 "$(grep -cF -- "$1" "$TMP/typo.err" || true)" "lines '$1'"
}
expect "libautoclose[$(main_pid typo)]: unknown variable AUTOCLOSE_GRACE (did you mean AUTOCLOSE_GRACE_MS?); ignored"
expect "unknown variable AUTOCLOSE_PORT (did you mean AUTOCLOSE_PORTS?); ignored"
assert_eq 2 "$(wc -l <"$TMP/typo.err")" "lines on the server's stderr"
assert_eq 0 "$(wc -c <"$TMP/plain.err")" "bytes on the plain server's stderr (AUTOCLOSE_LIB set)"
pass "each unknown name said once with the nearest known one; the tools' own variables are known"
