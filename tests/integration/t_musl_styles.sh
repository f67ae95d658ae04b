#!/usr/bin/env bash
# A server linked against musl, run as `autoclose -- server`: every read style musl has (plain,
# vectored, message, threaded, forked) and every readiness style it has (poll, ppoll, select,
# pselect, epoll_wait, epoll_pwait; the FIONREAD leak, with the sweep off so that only the
# readiness and FIONREAD wrappers can see the FIN) keeps its leaked connections for the grace
# (N in CLOSE_WAIT each) and then ends them cleanly (0 CLOSE_WAIT, peers in TIME_WAIT), with the
# musl library loaded. Skipped without the musl build (musl-gcc, from Debian's musl-tools).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
[ -f "$AUTOCLOSE_LIBMUSL" ] || skip "no musl library at $AUTOCLOSE_LIBMUSL ('make' builds it where" \
    "musl-gcc is: Debian's musl-tools)"
for f in mos_server ready_server; do
    [ -x "$FIXTURES_MUSL/$f" ] || skip "no musl $f in $FIXTURES_MUSL (make integration builds it)"
done
use_wrapper

# As t_styles: long enough for every client and the snapshot below on a loaded machine.
GRACE=4000
N=5
READS=(read recv recvfrom recvmsg readv recvmmsg thread fork)
READIES=(poll ppoll select pselect epoll epoll_pwait)
VARIANTS=("${READS[@]}" "${READIES[@]}")

declare -A port
for v in "${READS[@]}"; do
    start_bg "$v" "$AUTOCLOSE" --grace-ms $GRACE --log-file "$TMP/$v.log" -- \
        "$FIXTURES_MUSL/mos_server" --style "$v" --port-file "$TMP/$v.port"
done
for v in "${READIES[@]}"; do
    start_bg "$v" "$AUTOCLOSE" --grace-ms $GRACE --sweep-ms 0 --log-file "$TMP/$v.log" -- \
        "$FIXTURES_MUSL/ready_server" --style "$v" --port-file "$TMP/$v.port"
done
for v in "${VARIANTS[@]}"; do
    port[$v]=$(await_port "$v")
    maps_has "$(main_pid "$v")" "$AUTOCLOSE_LIBMUSL" || fail "$v: the musl library is not loaded"
done
echo "  the musl library is loaded in all ${#VARIANTS[@]} servers"

# All at once, so that the graces overlap; every FIN comes after `started`.
started=$(now_ms)
# The read styles serve one connection after another; the event loops hold them all at once.
for v in "${READS[@]}"; do
    client_bg "client-$v" --port "${port[$v]}" --count "$N"
done
for v in "${READIES[@]}"; do
    client_bg "client-$v" --port "${port[$v]}" --count "$N" --parallel
done
for v in "${VARIANTS[@]}"; do
    wait_bg "client-$v" || fail "$v: client exchanges failed"
done
snapshot_now "${port[@]}"
echo "clients done after $(($(now_ms) - started)) ms (grace ${GRACE} ms); before the grace:"
ports=()
for v in "${VARIANTS[@]}"; do
    ports+=("${port[$v]}")
done
leaks_before_grace "$started" "$GRACE" "$N" "${ports[@]}"

# shellcheck disable=SC2317 # called through wait_until
all_settled() {
    local v
    for v in "${VARIANTS[@]}"; do
        clients_settled "${port[$v]}" "client-$v" || return 1
    done
}
wait_until $((GRACE + 4000)) all_settled || true
echo "$(($(now_ms) - started)) ms after the clients started:"
for v in "${VARIANTS[@]}"; do
    echo "  $v: $(clients_report "${port[$v]}" "client-$v"); found: $(found_summary "$TMP/$v.log")"
done
for v in "${VARIANTS[@]}"; do
    require_settled "${port[$v]}" "$v: not reclaimed within grace + 4 s" "client-$v"
done
for v in "${READIES[@]}"; do
    [ "$(count_lines '^rdhup-visible' "$TMP/$v.out")" -eq 0 ] ||
        fail "$v: the application saw the RDHUP flag the library added"
done
pass "${#VARIANTS[@]} styles of a musl server under autoclose: $N CLOSE_WAIT each before the" \
    "grace, 0 after, peers in TIME_WAIT"
