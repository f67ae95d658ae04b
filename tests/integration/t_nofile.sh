#!/usr/bin/env bash
# A server that never closes keeps serving. The shim ends each CLOSE_WAIT, but the program still
# holds a number per connection (the placeholder's); AUTOCLOSE_NOFILE=max raises the soft
# descriptor limit at load so those numbers last. A thread-per-connection MOS server that
# answers each heartbeat and never closes, soft limit 256, hard 20,000:
#   with the shim and AUTOCLOSE_NOFILE=max, in both modes: 3,000 sessions one after another,
#     none failed; afterwards nothing in CLOSE_WAIT, at most 5 distinct sockets held (the
#     listener, the placeholder), autoclose_descriptors_reclaimed_held >= 2,900;
#   without the shim: sessions fail from about the 250th on (EMFILE);
#   a select() server under AUTOCLOSE_NOFILE=max keeps its 256 and says why;
#   so does a program that never calls select() but starts a program that does (system,
#   posix_spawn, fork + execv) or loads a plugin that does (dlopen): the select() user, built
#   fortified, sees 256 and gets no number from 1024 up (with the limit raised it would abort,
#   "bit out of range 0 - FD_SETSIZE");
#   with the limit left at 256, the log says when the open count passes 50% and 80% of it.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=hygiene_lib.sh
. "$(dirname "$0")/hygiene_lib.sh"
need_shim

SESSIONS=${NOFILE_SESSIONS:-3000}
HARD=20000
[ "$(ulimit -Hn)" -ge $HARD ] || skip "the hard descriptor limit here is $(ulimit -Hn), below $HARD"
limits=(prlimit "--nofile=256:$HARD" --)

# stat_at_least FILE PID SERIES N: the stats file shows SERIES at N or more.
# shellcheck disable=SC2317 # called through wait_until
stat_at_least() {
    local v
    [ -e "$1" ] || return 1
    v=$(sed -n "s/^$3{pid=\"$2\"} //p" "$1")
    [ -n "$v" ] && [ "$v" -ge "$4" ]
}

# distinct_sockets PID: the distinct socket inodes the process holds.
distinct_sockets() {
    find "/proc/$1/fd" -maxdepth 1 -type l -printf '%l\n' 2>/dev/null | grep '^socket:' |
        sort -u | wc -l
}

for mode in shutdown close; do
    start_bg "$mode" "${limits[@]}" env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_NOFILE=max \
        AUTOCLOSE_MODE=$mode AUTOCLOSE_GRACE_MS=100 AUTOCLOSE_LOG_FILE="$TMP/$mode.log" \
        AUTOCLOSE_STATS_FILE="$TMP/$mode.prom" "$FIXTURES/mos_server" --style thread \
        --port-file "$TMP/$mode.port"
done
start_bg bare "${limits[@]}" "$FIXTURES/mos_server" --style thread --port-file "$TMP/bare.port"
start_bg select "${limits[@]}" env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_NOFILE=max \
    AUTOCLOSE_LOG_FILE="$TMP/select.log" "$FIXTURES/ready_server" --style select \
    --port-file "$TMP/select.port"
start_bg headroom "${limits[@]}" env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=100 \
    AUTOCLOSE_LOG_FILE="$TMP/headroom.log" "$FIXTURES/mos_server" --style thread \
    --port-file "$TMP/headroom.port"
declare -A via_symbol=([system]=system [spawn]=posix_spawn [exec]=execv [dlopen]=dlopen)
for how in "${!via_symbol[@]}"; do
    user=$FIXTURES/select_user
    [ "$how" != dlopen ] || user=$FIXTURES/select_user.so
    start_bg "via-$how" "${limits[@]}" env LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_NOFILE=max \
        AUTOCLOSE_LOG_FILE="$TMP/via-$how.log" "$FIXTURES/nofile_via_$how" "$user"
done
declare -A port
for r in shutdown close bare select headroom; do
    port[$r]=$(await_port "$r")
done

# The select server: its limit stays, and one line says why.
select_pid=$(main_pid select)
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$select_pid/limits")
assert_eq 256 "$soft" "select server: soft descriptor limit under AUTOCLOSE_NOFILE=max"
assert_eq 1 "$(count_lines 'AUTOCLOSE_NOFILE: the descriptor limit stays 256: .* uses (select|pselect|__fdelt_chk)' \
    "$TMP/select.log")" "select server: lines saying why the limit stays"

# Programs that start or load a select() user: their limit stays, the select() user sees it.
for how in "${!via_symbol[@]}"; do
    rc=0
    wait_bg "via-$how" || rc=$?
    sed "s/^/  via $how: /" "$TMP/via-$how.out"
    [ "$rc" -eq 0 ] || fail "via $how: exit $rc; the select() user got a limit its fd_set cannot hold"
    grep -qx 'select_user soft=256 high_fd=none ok' "$TMP/via-$how.out" ||
        fail "via $how: the select() user did not see the soft limit of 256"
    assert_eq 1 "$(count_lines "AUTOCLOSE_NOFILE: the descriptor limit stays 256: the program uses ${via_symbol[$how]}, whose (children|code loaded later)" \
        "$TMP/via-$how.log")" "via $how: lines saying the limit stays for ${via_symbol[$how]}"
done

for mode in shutdown close; do
    soft=$(awk '/^Max open files/ { print $4 }' "/proc/$(main_pid "$mode")/limits")
    assert_eq $HARD "$soft" "$mode: soft descriptor limit under AUTOCLOSE_NOFILE=max"
    client_bg "client-$mode" --port "${port[$mode]}" --count "$SESSIONS"
done
# Without the shim the client stops at its first failure (each costs its bounded wait for a
# reply).
client_bg client-bare --port "${port[bare]}" --count 300 --stop-on-failure
client_bg client-headroom --port "${port[headroom]}" --count 230

rc=0
wait_bg client-bare || rc=$?
ok=$(count_lines '^ok conn=' "$TMP/client-bare.out")
first_fail=$(sed -n 's/^ncs_client: conn \([0-9]*\): .*/\1/p' "$TMP/client-bare.err" | head -n 1)
echo "without the shim: $ok of 300 sessions served; the first failure was session ${first_fail:-none}"
[ "$rc" -ne 0 ] && [ -n "$first_fail" ] && [ "$first_fail" -ge 240 ] && [ "$first_fail" -le 256 ] ||
    fail "without the shim the server should fail from about session 250 (EMFILE), not ${first_fail:-never}"

for mode in shutdown close; do
    wait_bg "client-$mode" || fail "$mode: $(grep -c . "$TMP/client-$mode.err") lines of client errors: $(head -n 3 "$TMP/client-$mode.err")"
    assert_eq "$SESSIONS" "$(count_lines '^ok conn=' "$TMP/client-$mode.out")" "$mode: sessions served"
done
for mode in shutdown close; do
    wait_until 3000 state_is close-wait "${port[$mode]}" server 0 ||
        fail "$mode: CLOSE_WAIT left: $(count_state close-wait "${port[$mode]}" server)"
    pid=$(main_pid "$mode")
    wait_until 3000 stat_at_least "$TMP/$mode.prom" "$pid" autoclose_descriptors_reclaimed_held \
        $((SESSIONS - 100)) ||
        fail "$mode: the stats file never showed $((SESSIONS - 100)) reclaimed numbers held: $(grep descriptors "$TMP/$mode.prom")"
    held=$(sed -n 's/^autoclose_descriptors_reclaimed_held{[^}]*} //p' "$TMP/$mode.prom")
    sockets=$(distinct_sockets "$pid")
    echo "$mode: $SESSIONS served, CLOSE_WAIT 0, reclaimed numbers held $held, distinct sockets $sockets"
    [ "$sockets" -le 5 ] || fail "$mode: the server holds $sockets distinct sockets, not at most 5"
done

wait_bg client-headroom || fail "headroom: client errors: $(head -n 3 "$TMP/client-headroom.err")"
wait_until 3000 has_lines 2 'descriptors: [0-9]+ of the limit of 256 are open' "$TMP/headroom.log" ||
    fail "headroom: no lines at 50% and 80% of the limit: $(cat "$TMP/headroom.log")"
grep 'descriptors:' "$TMP/headroom.log" | sed 's/^/  /'
grep -q 'past 50%' "$TMP/headroom.log" && grep -q 'past 80%' "$TMP/headroom.log" ||
    fail "headroom: the lines do not name 50% and 80%"
pass "$SESSIONS sessions served in both modes under AUTOCLOSE_NOFILE=max; without the shim the\
 ${first_fail}th failed; the select server, and programs that start or load select() code, kept\
 256 and said why"
