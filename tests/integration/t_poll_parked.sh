#!/usr/bin/env bash
# An event-loop server parks a finished connection in its wait set with no event asked for
# (events = 0) and never closes it. In CLOSE_WAIT such a socket reports nothing and the loop
# sleeps in its 100 ms waits; the reclaim must not change that. A socket shut down both ways
# reports POLLHUP, which poll and epoll deliver whatever the events mask: a reclaimed socket
# left parked there would turn the loop into a busy spin.
#   poll    poll() on {listener: POLLIN, parked: 0}
#   epoll   level-triggered epoll_wait, listener EPOLLIN, parked registered with events 0
# each in shutdown and close mode: after the reclaim (nothing in CLOSE_WAIT, the peer in
# TIME_WAIT), a half second that began after it must see fewer than MAX_WAKEUPS wake-ups.
#   controls   the same servers without the shim: the parked socket stays in CLOSE_WAIT, and
#              the loop sleeps (the fixture itself does not spin)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
MAX_WAKEUPS=5
SHIM_RUNS=(poll-shutdown poll-close epoll-shutdown epoll-close)
RUNS=(poll-bare epoll-bare "${SHIM_RUNS[@]}")
declare -A port figure

for r in "${RUNS[@]}"; do
    shim=() flag=()
    [ "${r%%-*}" = epoll ] && flag=(--epoll)
    if [ "${r#*-}" != bare ]; then
        shim=(LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS="$GRACE" AUTOCLOSE_MODE="${r#*-}"
            AUTOCLOSE_LOG_FILE="$TMP/$r.log")
    fi
    start_bg "$r" "${shim[@]}" "$FIXTURES/parked_server" "${flag[@]}" --port-file "$TMP/$r.port"
done
for r in "${RUNS[@]}"; do
    port[$r]=$(await_port "$r")
done
for r in "${RUNS[@]}"; do
    client "client-$r" --port "${port[$r]}" || fail "$r: heartbeat exchange failed"
done

windows() { count_lines '^wakeups_per_half_second=' "$TMP/$1.out"; }
# window RUN N: the wake-up count of RUN's Nth half second.
window() { grep '^wakeups_per_half_second=' "$TMP/$1.out" | sed -n "$2{s/^[^=]*=\([0-9]*\).*/\1/p}"; }
# settled_window RUN: waits for the second half second to begin after now, and takes its figure:
# the whole of it lies after whatever the caller has just established.
settled_window() {
    local n
    n=$(windows "$1")
    wait_until 3000 has_lines $((n + 2)) '^wakeups_per_half_second=' "$TMP/$1.out" ||
        fail "$1: the loop reported no half second in 3 s"
    window "$1" $((n + 2))
}

for r in "${SHIM_RUNS[@]}"; do
    wait_until $((GRACE + 3000)) reclaimed "${port[$r]}" 1 "client-$r" ||
        fail "$r: not reclaimed: $(report_states "${port[$r]}" "client-$r")"
done
for r in "${SHIM_RUNS[@]}"; do
    figure[$r]=$(settled_window "$r")
done
for r in poll-bare epoll-bare; do
    leaking "${port[$r]}" 1 "client-$r" ||
        fail "$r: the control did not leak: $(report_states "${port[$r]}" "client-$r")"
    figure[$r]=$(settled_window "$r")
done

bad=()
for r in "${RUNS[@]}"; do
    line=$(grep '^wakeups_per_half_second=' "$TMP/$r.out" | tail -n 1)
    echo "$r: $(report_states "${port[$r]}" "client-$r"); wake-ups in a half second after that:" \
        "${figure[$r]} (expected < $MAX_WAKEUPS); latest: $line"
    [ -f "$TMP/$r.log" ] && actions "$TMP/$r.log" | sed 's/^/    /'
    [ "${figure[$r]}" -lt "$MAX_WAKEUPS" ] || bad+=("$r=${figure[$r]}")
done
[ ${#bad[@]} -eq 0 ] || fail "the parked descriptor wakes the loop up after the reclaim: ${bad[*]}"
pass "a reclaimed descriptor parked with events 0 leaves poll and epoll asleep, in both modes"
