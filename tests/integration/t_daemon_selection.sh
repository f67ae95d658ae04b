#!/usr/bin/env bash
# What autoclosed is not told to look at, it leaves alone. Three leaking servers: A and B (the
# simulator, one process each, ports PA and PB) and F (the simulator forking a child per
# connection, port PF: each child holds one leak). Three daemon runs, each started after every
# leak it could see was already there (so what it leaves alone has been half-closed at least as
# long as what it reclaims), each stopped with status 0 by a signal:
#   --pid A                       A's leaks reclaimed; B's untouched
#   --ports PB                    B's leaks reclaimed; A's new ones untouched
#   --pid C1,A --ports PF         the intersection: child C1's leak on PF reclaimed; child C2's (on
#                                 PF, pid not selected) and A's (pid selected, port not) untouched
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

N=2
GRACE=300
INTERVAL=100
# After what was selected has been reclaimed, a few more scans for the rest to be (wrongly) acted
# on: what was not selected had been half-closed at least as long.
MARGIN=$((5 * INTERVAL + 300))

# B below the clients' range: --ports alone refuses ports clients may pick for themselves.
start_bg a "$FIXTURES/mos_server" --style read --port-file "$TMP/a.port"
# shellcheck disable=SC2119 # no port to keep clear of
start_bg b "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/b.port"
start_bg f "$FIXTURES/mos_server" --style fork --port-file "$TMP/f.port"
pa=$(await_port a)
pb=$(await_port b)
pf=$(await_port f)
apid=$(main_pid a)
bpid=$(main_pid b)
fpid=$(main_pid f)

# acted_only LOG PID...: every action line in LOG is for one of the PIDs.
acted_only() {
    local log=$1 pid others
    shift
    others=$(shutdowns "$log")
    for pid in "$@"; do
        others=$(grep -v " shutdown pid=$pid " <<<"$others" || true)
    done
    [ -z "$others" ] || fail "acted on a process not selected:"$'\n'"$others"
}

echo "--pid A ($apid):"
client b1 --port "$pb" --count $N || fail "b1 failed"
client a1 --port "$pa" --count $N || fail "a1 failed"
wait_until 3000 leaking "$pa" $N a1 || fail "A did not leak: $(report_states "$pa" a1)"
wait_until 3000 leaking "$pb" $N b1 || fail "B did not leak: $(report_states "$pb" b1)"
start_daemon d1 --pid "$apid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$TMP/d1.log"
wait_until $((GRACE + 5000)) clients_settled "$pa" a1 || true
require_settled "$pa" "A's leaks were not reclaimed" a1
sleep_ms $MARGIN
echo "  A: $(clients_report "$pa" a1)"
echo "  B: $(clients_report "$pb" b1)"
leaking "$pb" $N b1 || fail "B's leaks were touched: $(report_states "$pb" b1)"
assert_eq $N "$(count_shutdowns "$TMP/d1.log" "$apid")" "  actions on A"
acted_only "$TMP/d1.log" "$apid"
stop_daemon d1 INT

echo "--ports PB ($pb):"
client a2 --port "$pa" --count $N || fail "a2 failed"
wait_until 3000 leaking "$pa" $N a2 || fail "A did not leak again: $(report_states "$pa" a2)"
start_daemon d2 --ports "$pb" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$TMP/d2.log"
wait_until $((GRACE + 5000)) clients_settled "$pb" b1 || true
require_settled "$pb" "B's leaks were not reclaimed" b1
sleep_ms $MARGIN
echo "  B: $(clients_report "$pb" b1)"
echo "  A: $(clients_report "$pa" a2)"
leaking "$pa" $N a2 || fail "A's leaks were touched: $(report_states "$pa" a2)"
assert_eq $N "$(count_shutdowns "$TMP/d2.log" "$bpid")" "  actions on B"
acted_only "$TMP/d2.log" "$bpid"
stop_daemon d2 TERM

echo "--pid C1,A --ports PF ($pf; F is $fpid, forking a child per connection):"
client f1 --port "$pf" --count 2 || fail "f1 failed"
wait_until 3000 has_lines 2 '^forked pid=' "$TMP/f.out" || fail "F did not fork twice"
mapfile -t children < <(sed -n 's/^forked pid=\([0-9]*\) .*/\1/p' "$TMP/f.out")
wait_until 3000 leaking "$pf" 2 f1 || fail "F's children did not leak: $(report_states "$pf" f1)"
c1=${children[0]} c2=${children[1]}
assert_eq 1 "$(ss_close_wait_of "$c1" "$pf")" "  child C1 ($c1): CLOSE_WAIT sockets"
assert_eq 1 "$(ss_close_wait_of "$c2" "$pf")" "  child C2 ($c2): CLOSE_WAIT sockets"
c1_peer=$(ss -Htnp state close-wait "( sport = :$pf )" | grep "pid=$c1," |
    awk '{ n = split($4, a, ":"); print a[n] }')
c2_peer=$(ss -Htnp state close-wait "( sport = :$pf )" | grep "pid=$c2," |
    awk '{ n = split($4, a, ":"); print a[n] }')
start_daemon d3 --pid "$c1,$apid" --ports "$pf" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$TMP/d3.log"
wait_until $((GRACE + 5000)) peers_settled "$pf" "$c1_peer" || true
echo "  C1: $(peer_report "$pf" "$c1_peer")"
peers_settled "$pf" "$c1_peer" || fail "C1's leak was not reclaimed: $(port_sockets "$pf")"
sleep_ms $MARGIN
echo "  C2: $(peer_report "$pf" "$c2_peer")"
echo "  A: $(clients_report "$pa" a2)"
assert_eq 1 "$(servers_in close-wait "$pf" "$c2_peer")" "  C2's leak in CLOSE_WAIT (pid not selected)"
assert_eq 1 "$(peers_in fin-wait-2 "$pf" "$c2_peer")" "  C2's peer in FIN_WAIT_2"
leaking "$pa" $N a2 || fail "A's leaks on a port not selected were touched: $(report_states "$pa" a2)"
assert_eq 1 "$(count_shutdowns "$TMP/d3.log" "$c1")" "  actions on C1"
acted_only "$TMP/d3.log" "$c1"
stop_daemon d3 TERM
pass "--pid, --ports and both (the intersection) act on what they select and nothing else;\
 SIGINT and SIGTERM end the daemon with status 0"
