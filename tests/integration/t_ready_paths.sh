#!/usr/bin/env bash
# Each readiness detection path alone, with the periodic sweep off. The FIONREAD server is run so
# that only one wrapper can see the FIN:
#   --raw-ioctl (FIONREAD by syscall(2)): only poll/ppoll can notice, and must log
#       found=ready; under epoll only the sweep that epoll_wait asks for can: found=sweep.
#   --raw-wait (poll by a raw ppoll system call): only the FIONREAD wrapper can: found=ready.
#   select, pselect: not wrapped (an fd_set cannot ask for the FIN, and a select wrapper would
#       have to make another system call than the program's): the FIONREAD wrapper notices.
#   both: nothing the shim wraps sees the FIN. This control must still be leaking once every
#       other variant has been reclaimed: the catches above are the wrappers' doing, not some
#       other path's.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# Long enough that every client (a Python process each, all at once) has answered and sent its
# FIN, and the snapshot that proves the leak is read, before the grace ends on a loaded machine.
GRACE=3000
N=6
declare -A args expect port
args[poll]="--style poll --raw-ioctl"
args[ppoll]="--style ppoll --raw-ioctl"
args[select]="--style select"
args[pselect]="--style pselect"
args[epoll]="--style epoll --raw-ioctl"
args[epoll_pwait]="--style epoll_pwait --raw-ioctl"
args[epoll_pwait2]="--style epoll_pwait2 --raw-ioctl"
args[fionread]="--style poll --raw-wait"
args[blind]="--style poll --raw-wait --raw-ioctl"
for v in poll ppoll select pselect fionread; do
    expect[$v]="read=0 ready=$N sweep=0"
done
for v in epoll epoll_pwait epoll_pwait2; do
    expect[$v]="read=0 ready=0 sweep=$N"
done
CAUGHT=(poll ppoll select pselect epoll epoll_pwait epoll_pwait2 fionread)
VARIANTS=("${CAUGHT[@]}" blind)

for v in "${VARIANTS[@]}"; do
    read -r -a a <<<"${args[$v]}"
    start_bg "$v" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
        AUTOCLOSE_LOG_FILE="$TMP/$v.log" "$FIXTURES/ready_server" "${a[@]}" \
        --port-file "$TMP/$v.port"
done
for v in "${VARIANTS[@]}"; do
    port[$v]=$(await_port "$v")
done

disconnect_variants "$N" "$GRACE" "${VARIANTS[@]}"
started=$DISCONNECT_STARTED

# shellcheck disable=SC2317 # called through wait_until
caught_settled() {
    local w
    for w in "${CAUGHT[@]}"; do
        clients_settled "${port[$w]}" "client-$w" || return 1
    done
}
wait_until $((GRACE + 3000)) caught_settled || true
# Two more graces for the control: had anything seen its FINs, it would have acted by then.
sleep_ms $((GRACE * 2))
echo "$(($(now_ms) - started)) ms after the clients started:"
for v in "${VARIANTS[@]}"; do
    echo "  $v (${args[$v]}): $(clients_report "${port[$v]}" "client-$v");" \
        "found: $(found_summary "$TMP/$v.log");" \
        "dropped(fionread=0)=$(count_lines '^dropped fd=[0-9]+ fionread=0 ' "$TMP/$v.out")" \
        "rdhup-visible=$(count_lines '^rdhup-visible' "$TMP/$v.out")"
done

for v in "${VARIANTS[@]}"; do
    [ "$(count_lines '^dropped fd=[0-9]+ fionread=0 ' "$TMP/$v.out")" -eq "$N" ] ||
        fail "$v: the server did not drop every connection on FIONREAD=0"
    [ "$(count_lines '^rdhup-visible' "$TMP/$v.out")" -eq 0 ] ||
        fail "$v: the application saw the RDHUP flag the shim added"
done
for v in "${CAUGHT[@]}"; do
    require_settled "${port[$v]}" "$v: not reclaimed within grace + 3 s" "client-$v"
    assert_eq "${expect[$v]}" "$(found_summary "$TMP/$v.log")" "$v: how the FINs were found"
done
assert_eq "$N" "$(count_state close-wait "${port[blind]}" server)" \
    "blind control: CLOSE_WAIT with no wrapped call seeing the FIN"
assert_eq 0 "$(actions "$TMP/blind.log" | wc -l)" "blind control: actions logged"
pass "poll, ppoll alone, and FIONREAD after select, pselect: found=ready; epoll_wait, epoll_pwait, epoll_pwait2\
 alone: found=sweep; FIONREAD alone: found=ready; with neither, nothing"
