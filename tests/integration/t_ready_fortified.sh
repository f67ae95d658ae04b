#!/usr/bin/env bash
# A fortified build (-O2 -D_FORTIFY_SOURCE=2) of the FIONREAD server waits through __poll_chk and
# __ppoll_chk, not poll and ppoll: the binary is checked for that first, so the test cannot pass
# on a build that does not exercise those entry points. Then, with FIONREAD out of the shim's
# sight (--raw-ioctl) and the sweep off, only the _chk wrappers can notice the FINs.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# Long enough that every client (a Python process each, all at once) has answered and sent its
# FIN, and the snapshot that proves the leak is read, before the grace ends on a loaded machine.
GRACE=3000
N=8
BIN="$FIXTURES/ready_server_fortified"
[ -x "$BIN" ] || fail "$BIN is not built"

imports=$(nm -D --undefined-only "$BIN" | awk '{ print $NF }' | sed 's/@.*//')
for sym in __poll_chk __ppoll_chk; do
    grep -qx "$sym" <<<"$imports" || fail "the fortified build does not call $sym"
done
for sym in poll ppoll; do
    ! grep -qx "$sym" <<<"$imports" || fail "the fortified build still calls plain $sym"
done
echo "  $BIN imports: $(grep -E '^(__)?p?poll(_chk)?$' <<<"$imports" | xargs)"

VARIANTS=(poll ppoll poll-fionread)
declare -A port args
args[poll]="--style poll --raw-ioctl"
args[ppoll]="--style ppoll --raw-ioctl"
args[poll-fionread]="--style poll"
for v in "${VARIANTS[@]}"; do
    read -r -a a <<<"${args[$v]}"
    start_bg "$v" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
        AUTOCLOSE_LOG_FILE="$TMP/$v.log" "$BIN" "${a[@]}" --port-file "$TMP/$v.port"
done
for v in "${VARIANTS[@]}"; do
    port[$v]=$(await_port "$v")
    grep -q 'build=fortified' "$TMP/$v.out" || fail "$v: not the fortified build"
done

disconnect_variants "$N" "$GRACE" "${VARIANTS[@]}"
started=$DISCONNECT_STARTED

# shellcheck disable=SC2317 # called through wait_until
all_settled() {
    local w
    for w in "${VARIANTS[@]}"; do
        clients_settled "${port[$w]}" "client-$w" || return 1
    done
}
wait_until $((GRACE + 3000)) all_settled || true
echo "$(($(now_ms) - started)) ms after the clients started:"
for v in "${VARIANTS[@]}"; do
    echo "  $v (${args[$v]}): $(clients_report "${port[$v]}" "client-$v");" \
        "found: $(found_summary "$TMP/$v.log");" \
        "rdhup-visible=$(count_lines '^rdhup-visible' "$TMP/$v.out")"
done
for v in "${VARIANTS[@]}"; do
    require_settled "${port[$v]}" "$v: not reclaimed within grace + 3 s" "client-$v"
    assert_eq "read=0 ready=$N sweep=0" "$(found_summary "$TMP/$v.log")" "$v: how found"
    assert_eq 0 "$(count_lines '^rdhup-visible' "$TMP/$v.out")" "$v: RDHUP seen by the application"
done
pass "__poll_chk and __ppoll_chk callers reclaimed by readiness alone (found=ready)"
