#!/usr/bin/env bash
# A descriptor number reused between the daemon's discovery and its action is left alone.
# reuse_server keeps its first connection half-closed until told (SIGUSR1), then closes that
# number itself and at once accepts a waiting connection onto it. Two of them, watched by one
# daemon:
#   closed  the half-closed connection is closed with its number: it is gone;
#   kept    it is moved to another number first (--keep): still in CLOSE_WAIT, now elsewhere,
#           while its old number holds the new connection.
# The daemon has seen each first connection (its gauge counts it) before the swap, and its grace
# (4 s) runs out after it: then each old number holds a healthy connection, which must stay
# ESTABLISHED and keep working (a second heartbeat exchange after the deadline), while the kept
# connection is reclaimed under its new number. A witness leak of a third server, half-closed
# after both first connections, is reclaimed meanwhile: the grace has demonstrably run out. Once
# the new connections' own peers close, they are reclaimed a grace later, as themselves.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=4000
INTERVAL=100
STATS="$TMP/daemon.prom"
LOG="$TMP/daemon.log"
VARIANTS=(closed kept)

declare -A port pid number
start_bg closed "$FIXTURES/reuse_server" --port-file "$TMP/closed.port"
start_bg kept "$FIXTURES/reuse_server" --keep --port-file "$TMP/kept.port"
start_bg witness "$FIXTURES/mos_server" --style read --port-file "$TMP/witness.port"
for v in "${VARIANTS[@]}"; do
    port[$v]=$(await_port "$v")
    pid[$v]=$(main_pid "$v")
done
wport=$(await_port witness)
wpid=$(main_pid witness)
start_daemon daemon --pid "${pid[closed]},${pid[kept]},$wpid" --grace-ms $GRACE \
    --interval-ms $INTERVAL --stats-file "$STATS" --log-file "$LOG" --log debug
await_watching "$LOG"

fin=$(now_ms) # every FIN comes after this
for v in "${VARIANTS[@]}"; do
    client "first-$v" --port "${port[$v]}" --count 1 || fail "$v: the first session failed"
done
client wit --port "$wport" --count 1 || fail "the witness session failed"
for v in "${VARIANTS[@]}"; do
    wait_until 3000 has_lines 1 '^half-closed fd=' "$TMP/$v.out" || fail "$v: no EOF seen"
    number[$v]=$(sed -n 's/^half-closed fd=\([0-9]*\).*/\1/p' "$TMP/$v.out")
    wait_until 3000 prom_is "$STATS" 1 autoclosed_close_wait pid="${pid[$v]}" port="${port[$v]}" ||
        fail "$v: the daemon never counted the half-closed connection:"$'\n'"$(cat "$STATS" 2>/dev/null)"
    echo "  $v: the daemon counts the half-closed connection on fd ${number[$v]}" \
        "$(($(now_ms) - fin)) ms after the first FIN"
done

# The new connections wait in the backlogs; the swaps put them on the same numbers.
for v in "${VARIANTS[@]}"; do
    client_bg "second-$v" --port "${port[$v]}" --count 1 --rounds 2 --gap-ms $((GRACE + 5000))
    wait_until 3000 has_lines 1 '^local_port=' "$TMP/second-$v.out" || fail "$v: no second client"
done
kill -USR1 "${pid[closed]}" "${pid[kept]}"
for v in "${VARIANTS[@]}"; do
    wait_until 3000 has_lines 2 '^accepted fd=' "$TMP/$v.out" || fail "$v: reuse_server did not swap"
    assert_eq "${number[$v]}" "$(sed -n 's/^accepted fd=\([0-9]*\).*/\1/p' "$TMP/$v.out" | tail -n 1)" \
        "  $v: the new connection's number"
    wait_until 3000 has_lines 1 '^ok conn=1 round=1' "$TMP/second-$v.out" ||
        fail "$v: the new connection's first exchange failed"
done
swapped=$(($(now_ms) - fin))
moved_to=$(sed -n 's/^moved fd=[0-9]* to fd=\([0-9]*\)$/\1/p' "$TMP/kept.out")
[ -n "$moved_to" ] || fail "kept: reuse_server did not move its half-closed connection"
[ "$swapped" -lt "$GRACE" ] || fail "the swaps were done ${swapped} ms after the FIN, past the grace"
echo "  swapped within ${swapped} ms of the first FIN (grace ${GRACE} ms); kept: moved to fd $moved_to"

# The grace runs out: the witness is reclaimed, and the kept connection under its new number.
wait_until $((GRACE + 5000)) clients_settled "$wport" wit || true
require_settled "$wport" "the witness leak was not reclaimed" wit
wait_until 3000 clients_settled "${port[kept]}" first-kept || true
require_settled "${port[kept]}" "kept: the half-closed connection, moved, was not reclaimed" first-kept
sleep_ms $((5 * INTERVAL)) # a few scans more
after=$(($(now_ms) - fin))
for v in "${VARIANTS[@]}"; do
    mapfile -t second_port < <(client_ports "second-$v")
    echo "  $v, ${after} ms after the first FIN: the new connection on fd ${number[$v]}:" \
        "$(servers_in established "${port[$v]}" "${second_port[@]}") ESTABLISHED (server side)," \
        "$(peers_in established "${port[$v]}" "${second_port[@]}") (client side)"
    assert_eq 1 "$(servers_in established "${port[$v]}" "${second_port[@]}")" "  $v: server side ESTABLISHED"
    assert_eq 1 "$(peers_in established "${port[$v]}" "${second_port[@]}")" "  $v: client side ESTABLISHED"
    assert_eq tcp "$(fd_holds "${pid[$v]}" "${number[$v]}")" "  $v: what fd ${number[$v]} holds"
    ! grep -q '^ok conn=1 round=2' "$TMP/second-$v.out" ||
        fail "$v: the second exchange came before this check: the test checked too late"
done
shutdowns "$LOG" | sed 's/^/    /'
assert_eq 0 "$(count_shutdowns "$LOG" "${pid[closed]}")" "closed: actions"
assert_eq 1 "$(count_shutdowns "$LOG" "${pid[kept]}")" "kept: actions"
shutdowns "$LOG" "${pid[kept]}" | grep -q " fd=$moved_to " ||
    fail "kept: not reclaimed under its new number $moved_to"

# Their sessions go on after the deadline: the second exchange, then each client closes; half-
# closed in their turn, they are reclaimed a grace after their own FIN.
for v in "${VARIANTS[@]}"; do
    wait_bg "second-$v" || fail "$v: the new connection's session failed: $(cat "$TMP/second-$v.err")"
    grep -q '^ok conn=1 round=2' "$TMP/second-$v.out" || fail "$v: no second exchange"
done
closed_at=$(now_ms) # the second clients' FINs came before this
echo "  the second exchanges completed $((closed_at - fin)) ms after the first FIN"
for v in "${VARIANTS[@]}"; do
    wait_until $((GRACE + 5000)) clients_settled "${port[$v]}" "second-$v" || true
    require_settled "${port[$v]}" "$v: the new connection, closed by its peer, was not reclaimed" "second-$v"
    wait_until 2000 has_shutdowns 1 "$LOG" "${pid[$v]}" || true
    shutdowns "$LOG" "${pid[$v]}" | grep -q " fd=${number[$v]} " ||
        fail "$v: no action line for the new connection on fd ${number[$v]}"
    check_actions "$LOG" "${pid[$v]}" "${port[$v]}" reuse_server "$GRACE" "first-$v" "second-$v"
done
pass "numbers reused within ${swapped} ms of the FIN left alone past the ${GRACE} ms grace (a\
 moved connection reclaimed under its new number); the new connections reclaimed after their own FIN"
