#!/usr/bin/env bash
# --ports is matched on local and peer ports, so a list that reaches into the ports clients pick
# for themselves (this host's ip_local_port_range, and 32768-65535 where other systems pick
# theirs) selects unrelated connections. An unrelated client (its server, on a port below the
# range, closed first: the client's socket is in CLOSE_WAIT on an ephemeral port) is there when
# `autoclosed --ports 32768-60999` (the issue's reproducer; today's code shut that socket down)
# starts: it must refuse at once, exit 2, one line naming the ports and the fix. So must a list
# reaching above the local range (61000-65535) or holding one such port. A list below them is
# accepted; with --pid the same list is accepted with a line saying what it reaches. The
# unrelated client's socket is still in CLOSE_WAIT at the end, untouched.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon

GRACE=300
INTERVAL=100
read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
echo "ip_local_port_range: $lo-$hi"

# The unrelated connection: its server closes first, its client keeps its socket open.
# shellcheck disable=SC2119 # no port to keep clear of
sport=$(pick_port)
start_bg server "$FIXTURES/plain_listener" --port "$sport"
wait_until 3000 has_lines 1 '^listening port=' "$TMP/server.out" || fail "plain_listener did not listen"
start_bg unrelated python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("local_port=%d" % s.getsockname()[1], flush=True)
while s.recv(4096):
    pass
print("eof", flush=True)
time.sleep(60)
' "$sport"
wait_until 3000 has_lines 1 '^eof$' "$TMP/unrelated.out" || fail "the server's FIN never came"
cport=$(client_ports unrelated)
client_state() { ss -Htn "( sport = :$cport and dport = :$sport )" | awk '{ print $1 }'; }
echo "  the unrelated client's socket: port $cport, $(client_state)"
assert_eq CLOSE-WAIT "$(client_state)" "  its state"
if [ "$cport" -lt "$lo" ] || [ "$cport" -gt "$hi" ]; then
    fail "the client's port $cport is not ephemeral"
fi

# refused_ports LIST: autoclosed --ports LIST (grace and interval short) exits 2 at once, one
# line on stderr naming the ports and the fix.
refused_ports() {
    local list=$1 rc=0
    timeout 3 "$AUTOCLOSED" --ports "$list" --grace-ms $GRACE --interval-ms $INTERVAL \
        >"$TMP/refused.out" 2>"$TMP/refused.err" || rc=$?
    [ $rc -ne 124 ] || fail "autoclosed --ports $list ran (stopped after 3 s); the unrelated" \
        "client's socket: '$(client_state)'"
    echo "  --ports $list: exit $rc: $(cat "$TMP/refused.err")"
    assert_eq 2 "$rc" "  --ports $list: exit status"
    assert_eq 1 "$(wc -l <"$TMP/refused.err")" "  --ports $list: lines on stderr"
    grep -qF -- "--pid" "$TMP/refused.err" || fail "--ports $list: the line does not offer --pid"
    grep -qi "narrow" "$TMP/refused.err" || fail "--ports $list: the line does not say to narrow it"
}
refused_ports 32768-60999
grep -qF -- "--ports 32768-60999:" "$TMP/refused.err" || fail "the line does not name the ports"
refused_ports 61000-65535
refused_ports "10540,$cport"
grep -qF -- "--ports $cport:" "$TMP/refused.err" || fail "the line does not name port $cport alone"

# Below the ranges: accepted (--once: nothing is half-closed there, it ends at once).
run_daemon low --ports 10540,10541 --once
echo "  --ports 10540,10541 --once: exit $RUN_RC"
assert_eq 0 "$RUN_RC" "  --ports below the clients' ranges: exit status"

# With --pid: accepted, and said.
start_bg quiet sleep 60
wait_until 2000 main_pid quiet >/dev/null || fail "sleep did not start"
start_daemon with_pid --pid "$(main_pid quiet)" --ports 32768-60999 --grace-ms $GRACE \
    --interval-ms $INTERVAL --log-file "$TMP/with_pid.log"
wait_until 2000 has_lines 1 'clients pick their own ports there' "$TMP/with_pid.log" ||
    fail "--pid with --ports 32768-60999: no line says what the list reaches"
grep 'clients pick' "$TMP/with_pid.log" | sed 's/^/    /'
stop_daemon with_pid

assert_eq CLOSE-WAIT "$(client_state)" "the unrelated client's socket at the end"
pass "--ports reaching into clients' ports refused without --pid (exit 2, one line), said with\
 --pid; the unrelated client's CLOSE_WAIT socket untouched"
