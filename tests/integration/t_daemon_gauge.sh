#!/usr/bin/env bash
# autoclosed --stats-file: the gauge autoclosed_close_wait{pid,comm,port} counts the CLOSE_WAIT
# sockets of each watched process on each local port, as ss -p counts them, and follows a new
# leak; the file is replaced whole (no temporary file left) and only when something changed; and
# autoclosed_reclaimed_total counts the reclaims. With only --ports, every process owning a
# CLOSE_WAIT socket on those ports is counted: here the simulator (3 leaks on its port) and two
# children of a forking one (one leak each on another port), under a grace of a minute so that
# nothing is reclaimed. Then a dry run on the first server's pid says once for each leak what it
# would do, and does nothing; and a third daemon, with a short grace, reclaims the leaks and
# counts them.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

INTERVAL=100
GRACE=300
mkdir "$TMP/stats"
A="$TMP/stats/watch.prom"
B="$TMP/stats/reclaim.prom"

# Ports below the clients' range: --ports alone refuses those clients may pick for themselves.
q1=$(pick_port)
q2=$(pick_port "$q1")
start_bg srv "$FIXTURES/mos_server" --style read --port "$q1" --port-file "$TMP/srv.port"
start_bg forking "$FIXTURES/mos_server" --style fork --port "$q2" --port-file "$TMP/forking.port"
p1=$(await_port srv)
p2=$(await_port forking)
spid=$(main_pid srv)

client s1 --port "$p1" --count 3 || fail "s1 failed"
client f1 --port "$p2" --count 2 || fail "f1 failed"
wait_until 3000 leaking "$p1" 3 s1 || fail "srv did not leak: $(report_states "$p1" s1)"
wait_until 3000 leaking "$p2" 2 f1 || fail "the forked children did not leak: $(report_states "$p2" f1)"
mapfile -t children < <(sed -n 's/^forked pid=\([0-9]*\) .*/\1/p' "$TMP/forking.out")
[ ${#children[@]} -eq 2 ] || fail "the forking server forked ${#children[@]} children, not 2"

echo "--ports $p1,$p2, grace 60 s:"
start_daemon watch --ports "$p1,$p2" --grace-ms 60000 --interval-ms $INTERVAL --stats-file "$A" \
    --log-file "$TMP/watch.log"
wait_until 3000 prom_is "$A" 3 autoclosed_close_wait pid="$spid" comm=mos_server port="$p1" ||
    fail "the gauge never showed srv's 3 leaks:"$'\n'"$(cat "$A" 2>/dev/null)"
grep -v '^#' "$A" | sed 's/^/    /'
assert_eq 3 "$(ss_close_wait_of "$spid" "$p1")" "  ss: srv ($spid) in CLOSE_WAIT on $p1"
for c in "${children[@]}"; do
    assert_eq "$(ss_close_wait_of "$c" "$p2")" \
        "$(prom_sum "$A" autoclosed_close_wait pid="$c" comm=mos_server port="$p2")" \
        "  gauge of child $c on $p2 (as ss counts)"
done
total=$(($(count_state close-wait "$p1" server) + $(count_state close-wait "$p2" server)))
assert_eq "$total" "$(prom_sum "$A" autoclosed_close_wait)" "  the gauge's total (ss: both ports)"
assert_eq 0 "$(prom_sum "$A" autoclosed_reclaimed_total)" "  autoclosed_reclaimed_total"
assert_eq 0 "$(prom_sum "$A" autoclosed_errors_total)" "  autoclosed_errors_total"

# Nothing changes: the file is left as it is, scan after scan.
written=$(date -r "$A" +%s%N)
sleep_ms $((5 * INTERVAL))
assert_eq "$written" "$(date -r "$A" +%s%N)" "  the file's time after 5 scans with no change"
# A new leak shows within a few scans.
client s2 --port "$p1" --count 1 || fail "s2 failed"
wait_until 3000 prom_is "$A" 4 autoclosed_close_wait pid="$spid" comm=mos_server port="$p1" ||
    fail "the gauge did not follow a new leak:"$'\n'"$(cat "$A")"
assert_eq 4 "$(ss_close_wait_of "$spid" "$p1")" "  ss: srv in CLOSE_WAIT after one more leak"
echo "  the gauge followed the new leak: 4"
assert_eq 0 "$(count_shutdowns "$TMP/watch.log")" "  actions under a grace of a minute"
stop_daemon watch

echo "--pid $spid --dry-run, grace ${GRACE} ms:"
start_daemon dry --pid "$spid" --dry-run --grace-ms $GRACE --interval-ms $INTERVAL \
    --stats-file "$TMP/stats/dry.prom" --log-file "$TMP/dry.log"
wait_until $((GRACE + 5000)) has_lines 4 "autoclosed\[[0-9]+\]: dry-run: would shutdown pid=$spid fd=[0-9]+ " \
    "$TMP/dry.log" || fail "the dry run did not say it would shut down 4 connections"
sleep_ms $((5 * INTERVAL))
grep 'dry-run' "$TMP/dry.log" | sed 's/^/    /'
leaking "$p1" 4 s1 s2 || fail "a dry run touched the leaks: $(report_states "$p1" s1 s2)"
assert_eq 4 "$(count_lines 'dry-run: would shutdown' "$TMP/dry.log")" "  dry-run lines (once each)"
assert_eq 0 "$(count_shutdowns "$TMP/dry.log")" "  actions"
assert_eq 0 "$(prom_sum "$TMP/stats/dry.prom" autoclosed_reclaimed_total)" "  autoclosed_reclaimed_total"
stop_daemon dry

# gauge_cleared FILE PID: no CLOSE_WAIT counted for PID any more (a series at 0, or none).
# shellcheck disable=SC2317 # called through wait_until
gauge_cleared() { [[ "$(prom_sum "$1" autoclosed_close_wait pid="$2")" =~ ^(0|none)$ ]]; }

echo "--pid $spid, grace ${GRACE} ms:"
start_daemon reclaim --pid "$spid" --grace-ms $GRACE --interval-ms $INTERVAL --stats-file "$B" \
    --log-file "$TMP/reclaim.log"
wait_until $((GRACE + 5000)) clients_settled "$p1" s1 s2 || true
require_settled "$p1" "srv's leaks were not reclaimed" s1 s2
wait_until 3000 prom_is "$B" 4 autoclosed_reclaimed_total ||
    fail "autoclosed_reclaimed_total never reached 4:"$'\n'"$(cat "$B" 2>/dev/null)"
wait_until 3000 gauge_cleared "$B" "$spid" ||
    fail "the gauge still counts srv's reclaimed connections:"$'\n'"$(cat "$B")"
grep -v '^#' "$B" | sed 's/^/    /'
assert_eq 4 "$(count_shutdowns "$TMP/reclaim.log" "$spid")" "  actions"
assert_eq 0 "$(prom_sum "$B" autoclosed_errors_total)" "  autoclosed_errors_total"
stop_daemon reclaim
left=$(find "$TMP/stats" -mindepth 1 -printf '%f\n' | sort | tr '\n' ' ')
assert_eq "dry.prom reclaim.prom watch.prom " "$left" "files in the stats directory"
pass "the gauge counted 3, 1 and 1 CLOSE_WAIT as ss did, then 4; 4 reclaims counted"
