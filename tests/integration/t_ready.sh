#!/usr/bin/env bash
# The FIONREAD leak in every event-loop style: woken by poll, ppoll, select, pselect, epoll_wait,
# epoll_pwait or epoll_pwait2, the server asks FIONREAD, sees 0 and drops the descriptor without
# reading or closing it. It never reads the EOF, so the read wrappers never see the FIN; with the
# periodic sweep off, only the readiness and FIONREAD wrappers can. Every connection must be left
# alone for the grace and then reclaimed, the server's view of its events must be unchanged (no
# POLLRDHUP/EPOLLRDHUP it did not ask for), and the log must say how each FIN was found.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

# Long enough that every client (a Python process each, all at once) has answered and sent its
# FIN, and the snapshot that proves the leak is read, before the grace ends on a loaded machine.
GRACE=3000
N=12
STYLES=(poll ppoll select pselect epoll epoll_pwait epoll_pwait2)

declare -A port
for s in "${STYLES[@]}"; do
    start_bg "$s" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=0 \
        AUTOCLOSE_LOG_FILE="$TMP/$s.log" "$FIXTURES/ready_server" --style "$s" \
        --port-file "$TMP/$s.port"
done
for s in "${STYLES[@]}"; do
    port[$s]=$(await_port "$s")
done

# N connections per server, all open at once (the event loops juggle them), all styles at once.
disconnect_variants "$N" "$GRACE" "${STYLES[@]}"
started=$DISCONNECT_STARTED

# shellcheck disable=SC2317 # called through wait_until
all_settled() {
    local st
    for st in "${STYLES[@]}"; do
        clients_settled "${port[$st]}" "client-$st" || return 1
    done
}
wait_until $((GRACE + 3000)) all_settled || true
echo "$(($(now_ms) - started)) ms after the clients started:"
for s in "${STYLES[@]}"; do
    echo "  $s: $(clients_report "${port[$s]}" "client-$s"); found: $(found_summary "$TMP/$s.log")"
done

for s in "${STYLES[@]}"; do
    sout="$TMP/$s.out"
    echo "  $s server: answered=$(count_lines '^answered fd=' "$sout")" \
        "dropped(fionread=0)=$(count_lines '^dropped fd=[0-9]+ fionread=0' "$sout")" \
        "other-drops=$(count_lines '^dropped fd=[0-9]+ [^f]' "$sout")" \
        "rdhup-visible=$(count_lines '^rdhup-visible' "$sout")"
    [ "$(count_lines '^answered fd=' "$sout")" -eq "$N" ] || fail "$s: not every heartbeat answered"
    [ "$(count_lines '^dropped fd=[0-9]+ fionread=0 ' "$sout")" -eq "$N" ] ||
        fail "$s: the server did not drop every connection on FIONREAD=0"
    [ "$(count_lines '^dropped fd=[0-9]+ [^f]' "$sout")" -eq 0 ] ||
        fail "$s: a connection was dropped for another reason (it saw an EOF or an error)"
    [ "$(count_lines '^rdhup-visible' "$sout")" -eq 0 ] ||
        fail "$s: the application saw the RDHUP flag the shim added"
done
for s in "${STYLES[@]}"; do
    require_settled "${port[$s]}" "$s: not reclaimed within grace + 3 s" "client-$s"
done

for s in "${STYLES[@]}"; do
    summary=$(found_summary "$TMP/$s.log")
    case $s in
    epoll*)
        # The FIONREAD wrapper, on the application's thread, usually notices before the sweep
        # that epoll asks the timer for; either is a readiness-path catch (t_ready_paths.sh
        # proves each one alone).
        ready=$(actions "$TMP/$s.log" | grep -c ' found=ready' || true)
        sweep=$(actions "$TMP/$s.log" | grep -c ' found=sweep' || true)
        assert_eq "$N" $((ready + sweep)) "$s: actions found by readiness or sweep ($summary)"
        ;;
    *)
        assert_eq "read=0 ready=$N sweep=0" "$summary" "$s: how the FINs were found"
        ;;
    esac
done
pass "${#STYLES[@]} styles, $N connections each: left alone for the grace, then reclaimed\
 with the sweep off; no RDHUP visible to the application"
