#!/usr/bin/env bash
# A user who leaks many connections on a watched port (his own server; in a namespace of his own
# he may bind any port) used up the lines' rate limit (200 at once, then 50 a second), and the
# lines of root's server's reclaims, made in the same look, were not shown. The actions on other
# users' processes now have a bucket of their own: nobody's 400 leaks and root's 3, reclaimed in
# one look, show root's 3 lines, and the other users' lines dropped are counted in a line of
# their own.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a server of nobody's and pidfd_getfd on it"

N=400 # nobody's leaks: more than the burst of 200
GRACE=300
INTERVAL=100

open_to_all "$TMP/nobody"
# shellcheck disable=SC2119 # no port to keep clear of
uport=$(pick_port)
rport=$(pick_port "$uport")
start_bg user_srv "${UNPRIVILEGED[@]}" "$FIXTURES/mos_server" --style read --port "$uport" \
    --port-file "$TMP/nobody/user_srv.port"
wait_for_file "$TMP/nobody/user_srv.port" 5000 || fail "nobody's server published no port"
upid=$(main_pid user_srv)
start_bg root_srv "$FIXTURES/mos_server" --style read --port "$rport" --port-file "$TMP/root_srv.port"
await_port root_srv >/dev/null
rpid=$(main_pid root_srv)
client user --port "$uport" --count $N || fail "client of nobody's server failed"
client root --port "$rport" --count 3 || fail "client of root's server failed"
wait_until 5000 leaking "$uport" $N user || fail "no leak: $(report_states "$uport" user)"
wait_until 5000 leaking "$rport" 3 root || fail "no leak: $(report_states "$rport" root)"

LOG=$TMP/daemon.log
run_daemon once --once --ports "$uport,$rport" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$LOG"
grep -v ": shutdown pid=" "$LOG" | sed "s/^/  /"
assert_eq 0 "$RUN_RC" "autoclosed --once: exit status"
require_settled "$uport" "nobody's leaks were not reclaimed" user
require_settled "$rport" "root's leaks were not reclaimed" root
grep 'lines not shown' "$LOG" | sed 's/^/  /'
assert_eq 3 "$(count_shutdowns "$LOG" "$rpid")" "root's shutdown lines shown"
shown=$(count_shutdowns "$LOG" "$upid")
dropped=$(sed -n "s/.*\]: \([0-9]*\) other users' lines not shown .*/\1/p" "$LOG" | paste -sd+ | bc)
assert_eq $N "$((shown + ${dropped:-0}))" "nobody's lines shown ($shown) and counted as not shown"
pass "nobody's $N reclaims used up their own lines ($shown shown), root's 3 were all shown"
