#!/usr/bin/env bash
# A bad AUTOCLOSE_* value must cost one clear line on stderr, never the service itself; and
# AUTOCLOSE_DISABLE=1 must leave the program exactly as it was.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=3
BAD=(
    AUTOCLOSE_GRACE_MS=abc
    AUTOCLOSE_GRACE_MS=-5
    AUTOCLOSE_GRACE_MS=99999999999999999999
    AUTOCLOSE_MODE=explode
    AUTOCLOSE_PORTS=70000
    AUTOCLOSE_LOG=loud
)

for i in "${!BAD[@]}"; do
    start_bg "bad$i" LD_PRELOAD="$AUTOCLOSE_LIB" "${BAD[$i]}" \
        "$FIXTURES/mos_server" --style read --port-file "$TMP/bad$i.port"
done
start_bg disabled LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_DISABLE=1 AUTOCLOSE_GRACE_MS=$GRACE \
    "$FIXTURES/mos_server" --style read --port-file "$TMP/disabled.port"

for i in "${!BAD[@]}"; do
    setting=${BAD[$i]}
    var=${setting%%=*} value=${setting#*=}
    port=$(await_port "bad$i")
    client "bad$i-client" --port "$port" || fail "$setting: the server no longer serves"
    kill -0 "$(main_pid "bad$i")" 2>/dev/null || fail "$setting: the server died"
    wait_until 2000 test -s "$TMP/bad$i.err" || true
    echo "$setting -> stderr: $(cat "$TMP/bad$i.err")"
    assert_eq 1 "$(wc -l <"$TMP/bad$i.err")" "  lines on stderr"
    assert_eq 1 "$(grep -F -- "$var" "$TMP/bad$i.err" | grep -Fc -- "$value" || true)" \
        "  lines naming $var and '$value'"
done

# The disabled server's clients go first, so the witness being reclaimed shows that the
# disabled server's grace would have passed too.
disabled=$(await_port disabled)
client disabled-client --port "$disabled" --count "$N" || fail "disabled: exchanges failed"
start_witness $GRACE
wait_witness $((GRACE + 3000))
echo "AUTOCLOSE_DISABLE=1: $(report_states "$disabled" disabled-client)"
leaking "$disabled" "$N" disabled-client || fail "AUTOCLOSE_DISABLE=1 still changed socket states"
assert_eq 0 "$(wc -c <"$TMP/disabled.err")" "bytes on the disabled server's stderr"
pass "${#BAD[@]} bad values: one line each, service intact; AUTOCLOSE_DISABLE=1 inert"
