#!/usr/bin/env bash
# scripts/mos-close-test: FAIL (exit 1) on a leaking MOS server, whose socket it shows in
# CLOSE_WAIT, naming both remedies (the wrapper, and autoclosed with the server's pid); PASS
# (exit 0) on the same server run under scripts/autoclose with a short grace; with no --wait it
# waits for the grace (--grace-ms, else the library's default) plus a daemon's interval, so a
# server that closes half a second after the default grace passes; exit 2 on a port nobody
# listens on and on bad arguments. The kernel's own states (ss) must agree with each verdict.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tools_lib.sh
. "$(dirname "$0")/tools_lib.sh"
need_shim
use_wrapper
MCT=$TOOLS/mos-close-test
GRACE=300
rc=0 # each run_rc sets it

start_bg leak "$FIXTURES/mos_server" --style read --port-file "$TMP/leak.port"
start_bg guarded "$AUTOCLOSE" --grace-ms $GRACE -- "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/guarded.port"
# Closes half a second after the default grace, as autoclosed (which looks once a second) may.
start_bg late "$AUTOCLOSE" --grace-ms 5500 -- "$FIXTURES/mos_server" --style read \
    --port-file "$TMP/late.port"
leak=$(await_port leak)
guarded=$(await_port guarded)
late=$(await_port late)
leak_pid=$(main_pid leak)

# The leaking server: FAIL, exit 1, with the server's CLOSE_WAIT and who holds it.
run_rc rc "$MCT" 127.0.0.1 "$leak" --wait 2
sed 's/^/    | /' "$TMP/rc.out"
assert_eq 1 "$rc" "exit status on the leaking server"
grep -qx FAIL "$TMP/rc.out" || fail "no FAIL verdict on the leaking server"
grep -q 'FIN_WAIT_2' "$TMP/rc.out" || fail "the report does not show FIN_WAIT_2"
grep -q "CLOSE_WAIT, held by mos_server (pid $leak_pid)" "$TMP/rc.out" ||
    fail "the report does not name the server's CLOSE_WAIT socket and its process"
grep -q 'does not close its sockets' "$TMP/rc.out" || fail "the report does not explain the failure"
grep -q -- '--wait' "$TMP/rc.out" || fail "the report does not advise a longer --wait"
assert_eq 1 "$(count_state close-wait "$leak" server)" "leaking server: sockets in CLOSE_WAIT (ss)"
grep -q 'mos heartbeat\|MOS heartbeat' "$TMP/rc.out" || fail "no heartbeat was sent"
grep -q 'eof fd=' "$TMP/leak.out" || fail "the server never saw the test's close"

# The same server under the wrapper: PASS, exit 0, this end in TIME_WAIT.
run_rc rc "$MCT" 127.0.0.1 "$guarded" --wait 2
sed 's/^/    | /' "$TMP/rc.out"
assert_eq 0 "$rc" "exit status on the protected server"
grep -qx PASS "$TMP/rc.out" || fail "no PASS verdict on the protected server"
grep -q 'this end, .*TIME_WAIT' "$TMP/rc.out" || fail "the states seen do not end in TIME_WAIT"
wait_until 2000 state_is close-wait "$guarded" server 0 ||
    fail "protected server: $(count_state close-wait "$guarded" server) sockets still in CLOSE_WAIT"
echo "  protected server: CLOSE_WAIT=0 (ss)"

# Several runs, and the bare telnet test (nothing sent).
run_rc rc "$MCT" 127.0.0.1 "$guarded" --wait 2 --count 3
assert_eq 0 "$rc" "exit status of --count 3 on the protected server"
grep -q 'total: 3 runs, 3 passed, 0 failed' "$TMP/rc.out" || fail "no total for --count 3: $(tail -n 2 "$TMP/rc.out")"
run_rc rc "$MCT" 127.0.0.1 "$leak" --wait 0.5 --count 2 --no-message
assert_eq 1 "$rc" "exit status of --count 2 --no-message on the leaking server"
grep -q 'total: 2 runs, 0 passed, 2 failed' "$TMP/rc.out" || fail "no total for the failing runs"
grep -q 'sent a MOS heartbeat' "$TMP/rc.out" && fail "--no-message sent a heartbeat"
assert_eq 3 "$(count_state close-wait "$leak" server)" "leaking server: sockets in CLOSE_WAIT after 3 tests (ss)"

# No --wait: the grace given (--grace-ms 300) plus a daemon's interval and a second to spare;
# the FAIL names both remedies, autoclosed with the pid of the process holding the leak.
run_rc rc "$MCT" 127.0.0.1 "$leak" --grace-ms 300
sed -n 's/^/    | /; /remed\|autoclose\|within/p' "$TMP/rc.out"
assert_eq 1 "$rc" "exit status of --grace-ms 300 on the leaking server"
grep -q 'watching .* for up to 2\.3 s$' "$TMP/rc.out" || fail "--grace-ms 300 did not wait 2.3 s"
grep -qF "'autoclose --grace-ms 2000 -- SERVER'" "$TMP/rc.out" || fail "the FAIL does not name the wrapper"
grep -qF "'autoclosed --pid $leak_pid'" "$TMP/rc.out" ||
    fail "the FAIL does not name autoclosed for the server's pid $leak_pid"

# No option at all: the library's default grace (5 s) plus 2 s; the server that closes at 5.5 s
# passes (with a wait of exactly the grace it would fail).
run_rc rc "$MCT" 127.0.0.1 "$late"
sed 's/^/    | /' "$TMP/rc.out"
assert_eq 0 "$rc" "exit status on a server that closes 5.5 s after the FIN, default wait"
grep -q 'watching .* for up to 7 s$' "$TMP/rc.out" || fail "the default wait is not 7 s"

# Nobody listening, and bad arguments: exit 2 with a message.
closed=$(pick_port "$leak" "$guarded")
run_rc rc "$MCT" 127.0.0.1 "$closed" --wait 1
assert_eq 2 "$rc" "exit status on a closed port"
grep -q 'cannot connect' "$TMP/rc.err" || fail "no clear message for a closed port: $(cat "$TMP/rc.err")"
for args in "127.0.0.1" "127.0.0.1 70000" "127.0.0.1 $leak --wait soon" "127.0.0.1 $leak --wait 0" \
    "127.0.0.1 $leak --count 0" "127.0.0.1 $leak --bogus" "127.0.0.1 $leak --grace-ms 5s" \
    "127.0.0.1 $leak --grace-ms 86400001"; do
    # shellcheck disable=SC2086 # each case is a word list
    run_rc rc "$MCT" $args
    [ "$rc" = 2 ] || fail "mos-close-test $args: exit $rc, expected 2"
    [ -s "$TMP/rc.err" ] || fail "mos-close-test $args: no message"
done
echo "  bad arguments: exit 2 each"
pass "FAIL on the leak naming both remedies, PASS under the wrapper, the wait following the grace, 2 on a closed port and bad arguments"
