#!/usr/bin/env bash
# AUTOCLOSE_PORTS limits the shim to the listed ports and ranges; everything else is left alone.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
N=10
other=$(pick_port)
exact=$(pick_port "$other")
ranged=$(pick_port "$other" "$exact")
declare -A ports=(
    [other]="$((other + 1)),$((other + 100))-$((other + 200))"
    [exact]="$exact"
    [ranged]="1,$((ranged - 5))-$((ranged + 5))"
)
for name in other exact ranged; do
    start_bg "$name" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        AUTOCLOSE_PORTS="${ports[$name]}" "$FIXTURES/mos_server" --style read --port "${!name}" \
        --port-file "$TMP/$name.port"
done
for name in other exact ranged; do
    [ "$(await_port "$name")" = "${!name}" ] || fail "$name: server did not bind ${!name}"
    client "$name-client" --port "${!name}" --count "$N" || fail "$name: client exchanges failed"
done

# The unlisted server's clients went first, so the listed ones being reclaimed shows that its
# grace period has passed too.
wait_until $((GRACE + 3000)) reclaimed "$exact" "$N" exact-client || true
wait_until 2000 reclaimed "$ranged" "$N" ranged-client || true
for name in other exact ranged; do
    echo "AUTOCLOSE_PORTS=${ports[$name]}: $(report_states "${!name}" "$name-client")"
done
reclaimed "$exact" "$N" exact-client || fail "port listed exactly, not reclaimed"
reclaimed "$ranged" "$N" ranged-client || fail "port inside a listed range, not reclaimed"
leaking "$other" "$N" other-client || fail "port not listed, yet its connections changed state"
pass "unlisted port keeps $N CLOSE_WAIT; listed port and range reclaimed"
