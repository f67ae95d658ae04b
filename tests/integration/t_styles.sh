#!/usr/bin/env bash
# Every read entry point the shim wraps (plain, vectored, message, threaded, forked, fortified)
# must reclaim the leaked connections, and only once the grace period has passed.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# Long enough that eleven clients and the checks below fit inside it on a loaded machine under a
# sanitizer (their FINs start the grace; 1.6 s was seen for the clients alone).
GRACE=4000
N=10
VARIANTS=(read recv recvfrom recvmsg readv recvmmsg thread fork
    fortified-read fortified-recv fortified-recvfrom)

declare -A port
for v in "${VARIANTS[@]}"; do
    bin=mos_server
    if [[ $v == fortified-* ]]; then
        bin=mos_server_fortified
    fi
    start_bg "$v" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE \
        "$FIXTURES/$bin" --style "${v#fortified-}" --port-file "$TMP/$v.port"
done
for v in "${VARIANTS[@]}"; do
    port[$v]=$(await_port "$v")
done

# All variants at once, so their grace periods overlap and the test stays short.
started=$(now_ms)
for v in "${VARIANTS[@]}"; do
    client_bg "client-$v" --port "${port[$v]}" --count "$N"
done
for v in "${VARIANTS[@]}"; do
    wait_bg "client-$v" || fail "$v: client exchanges failed"
done
elapsed=$(($(now_ms) - started))
echo "clients done after ${elapsed} ms (grace ${GRACE} ms)"

echo "before the grace has passed:"
for v in "${VARIANTS[@]}"; do
    echo "  $v: CLOSE_WAIT=$(count_state close-wait "${port[$v]}" server)"
    state_is close-wait "${port[$v]}" server "$N" ||
        fail "$v: acted before the grace: $(report_states "${port[$v]}" "client-$v")"
done
# Every FIN came after `started`: the counts above were all read before any grace could end.
checked=$(($(now_ms) - started))
[ "$checked" -lt "$GRACE" ] ||
    fail "the clients and checks took ${checked} ms, past the grace: they prove nothing"

all_reclaimed() {
    local v
    for v in "${VARIANTS[@]}"; do
        reclaimed "${port[$v]}" "$N" "client-$v" || return 1
    done
}
wait_until $((GRACE + 3000)) all_reclaimed || true
echo "$(($(now_ms) - started)) ms after the clients started:"
for v in "${VARIANTS[@]}"; do
    echo "  $v: $(report_states "${port[$v]}" "client-$v")"
done
all_reclaimed || fail "some variants were not reclaimed within grace + 3 s"
pass "${#VARIANTS[@]} variants: $N CLOSE_WAIT each before the grace, 0 after, peers in TIME_WAIT"
