#!/usr/bin/env bash
# --pid names a process, not a number. autoclosed watches G (a process that will exit) and K (a
# leaking server that stays). G exits; a process of nobody's then gets G's number (at_pid: through
# ns_last_pid) and is halfclose_server: a peer sends its request and half-closes, and the reply
# comes in chunks with pauses longer than the grace, then the server never closes (CLOSE_WAIT).
# The newcomer is never touched: the reply arrives whole, its connection is still in CLOSE_WAIT
# after a leak of K's made later has been reclaimed (a grace has demonstrably passed), no action
# line names the number, and the daemon said in one line that G has exited. Once K exits too,
# the daemon says so and stops with status 0.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a process of nobody's put under an exited process's number (ns_last_pid)"

GRACE=300
INTERVAL=100
CHUNK_MS=700 # the reply's pauses: each longer than the grace
REPLY_MS=2100
LOG="$TMP/daemon.log"

start_bg gone sleep 60
start_bg keeper "$FIXTURES/mos_server" --style read --port-file "$TMP/keeper.port"
kport=$(await_port keeper)
wait_until 2000 main_pid gone >/dev/null || fail "sleep did not start"
gpid=$(main_pid gone)
kpid=$(main_pid keeper)
start_daemon daemon --pid "$gpid,$kpid" --grace-ms $GRACE --interval-ms $INTERVAL \
    --log-file "$LOG" --log debug
await_watching "$LOG"

kill "$gpid"
wait_until 2000 gone "$gpid" || fail "sleep ($gpid) did not end"
wait_bg gone || true
open_to_all "$TMP/nobody"
start_bg succ "$FIXTURES/at_pid" --pid "$gpid" -- "${UNPRIVILEGED[@]}" \
    "$FIXTURES/halfclose_server" --reply-ms $REPLY_MS --chunk-ms $CHUNK_MS \
    --port-file "$TMP/nobody/succ.port"
if ! wait_until 5000 has_lines 1 "^pid=$gpid\$" "$TMP/succ.out"; then
    # Outside a PID namespace of the test's own, the host's other forks may always come first.
    ! grep -q 'could not be had' "$TMP/succ.err" || skip "$(cat "$TMP/succ.err")"
    fail "no process got number $gpid: $(cat "$TMP/succ.err")"
fi
sport=$(await_port nobody/succ)
owner=$(awk '/^Uid:/ { print $2 }' "/proc/$gpid/status")
echo "  pid $gpid is now $(cat "/proc/$gpid/comm") of uid $owner, serving port $sport"
assert_eq "$(id -u nobody)" "$owner" "the newcomer's user"

start_bg asker timeout 20 python3 "$SCRIPT_FIXTURES/reply_client.py" --port "$sport" \
    --expect stream --wait $((REPLY_MS / 1000 + 2))
wait_until 3000 has_lines 1 '^request fd=.* then eof' "$TMP/succ.out" ||
    fail "the newcomer never read the request to its EOF"
rc=0
wait_bg asker || rc=$?
line=$(grep '^reply_bytes=' "$TMP/asker.out" || true)
echo "  client: $line (exit $rc)"
sed -n 's/^/  newcomer: /p' "$TMP/succ.out"
[[ $line == *" valid=True "* ]] || fail "the newcomer's reply was cut or damaged: $line"
grep -q '^reply done' "$TMP/succ.out" || fail "the newcomer's reply did not complete"
[ $rc -eq 1 ] || fail "client exit $rc: the newcomer never closes, so no FIN was to come"

# A leak of K's, after the reply: once it is reclaimed, a grace has passed for the newcomer too.
client witness --port "$kport" --count 1 || fail "the keeper's session failed"
wait_until $((GRACE + 5000)) clients_settled "$kport" witness || true
require_settled "$kport" "the keeper's leak was not reclaimed" witness
assert_eq 1 "$(ss_close_wait_of "$gpid" "$sport")" \
    "  the newcomer's connection in CLOSE_WAIT after the keeper's leak was reclaimed"
shutdowns "$LOG" | sed 's/^/    /'
assert_eq 0 "$(count_shutdowns "$LOG" "$gpid")" "actions on number $gpid"
grep -F "pid=$gpid comm=\"sleep\" has exited: no longer watched" "$LOG" ||
    fail "the daemon never said that $gpid exited"
grep -qE "(scan|shutdown|waiting|left alone) pid=$gpid\b" "$LOG" &&
    fail "the daemon looked into or acted on number $gpid after it changed hands"

# The last selected process exits: the daemon says so and stops, status 0. Its pid is taken
# first: it may be gone before a lookup after the kill.
dpid=$DAEMON_PID
kill "$kpid"
wait_until 3000 gone "$dpid" || fail "the daemon still runs with every selected process gone"
rc=0
wait_bg daemon || rc=$?
grep -F "every selected process has exited: stopping" "$LOG" ||
    fail "the daemon did not say why it stopped"
assert_eq 0 "$rc" "the daemon's exit status once every selected process has exited"
pass "number $gpid, taken over by nobody's server, never touched (its reply whole, its\
 connection left in CLOSE_WAIT); the exit said; the daemon stopped with 0 when all had exited"
