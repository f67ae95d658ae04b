#!/usr/bin/env bash
# MPTCP on both ends: the server's end of a connection its peer closed is an MPTCP socket in
# CLOSE_WAIT (its TCP subflows stay established), which autoclosed does not reclaim. It says so,
# once: --once at start, or a running daemon when some appear, logs one line that counts them
# and tells how to turn MPTCP off; more of them later add no line. Skips with one line where the
# kernel refuses MPTCP sockets, or lists none (no mptcp_diag).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
MPTCP=$SCRIPT_FIXTURES/mptcp_leak.py
rc=0
python3 "$MPTCP" connect --port 9 --count 0 2>"$TMP/probe.err" || rc=$?
[ "$rc" -ne 3 ] || skip "the kernel refuses MPTCP sockets: $(cat "$TMP/probe.err")"

# A port below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg server python3 "$MPTCP" serve --port "$(pick_port)" --port-file "$TMP/server.port"
port=$(await_port server)
# shellcheck disable=SC2317 # called through wait_until
# mptcp_close_wait N: N MPTCP sockets in CLOSE_WAIT on the server's port, as ss -M lists them.
mptcp_close_wait() { [ "$(ss -HMn state close-wait "( sport = :$port )" | wc -l)" -eq "$1" ]; }

python3 "$MPTCP" connect --port "$port" --count 3 >"$TMP/c1.out" || fail "MPTCP clients failed"
if ! wait_until 3000 mptcp_close_wait 3; then
    # Not even the listener: this kernel answers no MPTCP dump (mptcp_diag not there).
    [ -n "$(ss -HMan)" ] || skip "the kernel lists no MPTCP sockets (no mptcp_diag)"
    fail "no 3 MPTCP sockets in CLOSE_WAIT: $(ss -Man)"
fi
echo "  3 MPTCP connections closed by their clients: $(ss -HMn state close-wait "( sport = :$port )" | wc -l) in CLOSE_WAIT (ss -M)," \
    "$(count_state close-wait "$port" server) TCP sockets in CLOSE_WAIT"
said='3 MPTCP connections in CLOSE_WAIT on the watched ports \(of any process\) are not reclaimed: .*GODEBUG=multipathtcp=0'

run_daemon once --ports "$port" --grace-ms 0 --once
echo "  --once: exit $RUN_RC: $(sed 's/^.*]: //' "$TMP/once.err" | grep MPTCP || true)"
assert_eq 1 "$(count_lines "$said" "$TMP/once.err")" "--once: lines about the 3 MPTCP connections"

LOG=$TMP/daemon.log
start_daemon daemon --ports "$port" --interval-ms 50 --log-file "$LOG"
wait_until 2000 has_lines 1 "$said" "$LOG" || fail "the running daemon did not say it leaves MPTCP alone"
python3 "$MPTCP" connect --port "$port" --count 2 >"$TMP/c2.out" || fail "MPTCP clients failed"
wait_until 3000 mptcp_close_wait 5 || fail "no 5 MPTCP sockets in CLOSE_WAIT"
sleep 0.3 # some intervals that list all 5
kill -USR1 "$DAEMON_PID"
wait_until 2000 has_lines 1 'status: ' "$LOG" || fail "no status line"
assert_eq 1 "$(count_lines 'MPTCP' "$LOG")" "lines about MPTCP after 2 more (said once)"
stop_daemon daemon
pass "MPTCP connections in CLOSE_WAIT: said once, with the way out"
