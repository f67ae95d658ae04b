#!/usr/bin/env bash
# A legacy daemon closes every descriptor it did not open, while it has connections, and goes on
# serving: the library's own descriptors (its netlink socket, its /proc directory) are closed
# with the rest. The server (closeall_server) leaks every connection without reading it, so only
# the sweep can reclaim them; it closes everything from 3 up three times, with a loop of close(),
# with closefrom and with close_range. After each round its new leaks must be reclaimed by the
# sweep all the same (the library made its descriptors again), the program's own descriptors must
# be what it opened and its data file hold exactly what it wrote, and while the server is idle
# nothing may come and go among its low numbers (the sweeps run on the library's own numbers,
# high up), and the library's netlink socket and directory must be above them.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

GRACE=300
SWEEP=10
LOG=$TMP/server.log
start_bg server LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_SWEEP_MS=$SWEEP \
    AUTOCLOSE_LOG_FILE="$LOG" "$FIXTURES/closeall_server" --port-file "$TMP/server.port" \
    --data "$TMP/data"
port=$(await_port server)
pid=$(main_pid server)

# shellcheck disable=SC2317 # called through wait_until
swept() { [ "$(actions "$LOG" | grep -c ' found=sweep' || true)" -ge "$1" ] && state_is close-wait "$port" server 0; }
reclaimed_total=0
for round in 0 1 2 3; do
    if [ "$round" -gt 0 ]; then
        kill -USR1 "$pid"
        wait_until 5000 has_lines 1 "^round $round " "$TMP/server.out" ||
            fail "round $round did not start"
        grep "^round $round " "$TMP/server.out" | sed 's/^/  /'
    fi
    client "round$round" --port "$port" --count 2 --no-message || fail "round $round: clients failed"
    reclaimed_total=$((reclaimed_total + 2))
    wait_until $((GRACE + 5000)) swept $reclaimed_total ||
        fail "round $round: leaks not reclaimed by the sweep: $(report_states "$port")"
    # Quiet now: a sweep every 10 ms, nothing for it to do.
    python3 "$SCRIPT_FIXTURES/fd_watch.py" --pid "$pid" --ms 1000 >"$TMP/watch$round.out" ||
        fail "round $round: the server is gone"
    echo "  round $round: $(head -n 1 "$TMP/watch$round.out"); library's:" \
        "$(grep -E '^(netlink|fddir) ' "$TMP/watch$round.out" | xargs)"
    { grep '^changed ' "$TMP/watch$round.out" || true; } | head -n 5 | sed 's/^/    /'
    grep -q '^scans=[0-9]* changes=0$' "$TMP/watch$round.out" ||
        fail "round $round: descriptors came and went among the program's numbers while it was idle"
    while read -r kind fd; do
        [ "${fd#fd=}" -ge 512 ] || fail "round $round: a $kind descriptor at ${fd#fd=}, among the program's numbers"
    done < <(grep -E '^(netlink|fddir) ' "$TMP/watch$round.out")
    assert_eq "netlink fddir" "$(grep -Eo '^(netlink|fddir)' "$TMP/watch$round.out" | xargs)" \
        "round $round: the library's descriptors, kept above the program's"
done
! grep '^violation' "$TMP/server.out" || fail "the program found a descriptor it did not open as it left it"
kill -TERM "$pid"
wait_bg server || fail "the server ended with status $?"
grep -q '^data ok ' "$TMP/server.out" || fail "the data file: $(grep '^data' "$TMP/server.out")"
assert_eq "read=0 ready=0 sweep=$reclaimed_total" "$(found_summary "$LOG")" "how the leaks were found"
pass "closed every descriptor three ways; leaks still reclaimed by the sweep, nothing of the library's among the program's numbers, its data intact"
