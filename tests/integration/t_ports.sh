#!/usr/bin/env bash
# AUTOCLOSE_PORTS limits the shim to the listed ports and ranges; everything else is left alone,
# with one line each at debug naming the connection.
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
        AUTOCLOSE_PORTS="${ports[$name]}" AUTOCLOSE_LOG=debug AUTOCLOSE_LOG_FILE="$TMP/$name.log" \
        "$FIXTURES/mos_server" --style read --port "${!name}" --port-file "$TMP/$name.port"
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

# Each connection left alone for its port has one line at debug, with both ends, once however
# often the sweep meets it again.
skipped="left alone fd=[0-9]+ local=127\\.0\\.0\\.1:$other peer=127\\.0\\.0\\.1:[0-9]+: neither port is in AUTOCLOSE_PORTS"
wait_until 3000 has_lines "$N" "$skipped" "$TMP/other.log" || true
sed -n 's/^/  other.log: /p' "$TMP/other.log" | grep -F 'left alone' | head -n 3
assert_eq "$N" "$(count_lines "$skipped" "$TMP/other.log")" "'left alone ... neither port' lines"
logged=$(grep -Eo "$skipped" "$TMP/other.log" | sed 's/.*peer=[^:]*:\([0-9]*\):.*/\1/' | sort -n | xargs)
assert_eq "$(client_ports other-client | sort -n | xargs)" "$logged" "peer ports named vs the clients' own"
assert_eq 0 "$(count_lines 'neither port' "$TMP/exact.log")" "such lines from the listed port's server"
pass "unlisted port keeps $N CLOSE_WAIT, one debug line each; listed port and range reclaimed"
