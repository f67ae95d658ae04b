#!/usr/bin/env bash
# When the kernel's list of sockets cannot be read, autoclosed says so: a server leaks on a
# watched port, and the daemon runs under a seccomp filter (the seccomp_deny fixture) that makes
# the sock_diag request fail as an LSM refusing it would (sendto: EACCES, then EPERM), or that
# refuses the netlink socket itself. --once then exits 1 with one line naming the reason, never 0
# with the leak still there; a daemon that keeps running says it once per reason, not once per
# interval, and its SIGUSR1 status line names the reason too.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
DENY=$FIXTURES/seccomp_deny
[ -x "$DENY" ] || fail "no seccomp_deny fixture at $DENY (make fixtures)"
AF_NETLINK=16

# A port below the clients' range: --ports alone refuses those clients may pick themselves.
start_bg server "$FIXTURES/mos_server" --style read --port "$(pick_port)" --port-file "$TMP/server.port"
port=$(await_port server)
client leak --port "$port" --count 1 || fail "client exchange failed"
wait_until 3000 leaking "$port" 1 leak || fail "the server did not leak: $(report_states "$port" leak)"

refused='cannot read the kernel.s list of TCP sockets \(sock_diag: '
# once_refused NAME PATTERN DENIAL...: --once under the denial: exit 1 and one PATTERN line.
once_refused() {
    local name=$1 pattern=$2
    shift 2
    RUN_RC=0
    timeout 30 "$DENY" "$@" -- "$AUTOCLOSED" --ports "$port" --grace-ms 0 --once \
        >"$TMP/$name.out" 2>"$TMP/$name.err" || RUN_RC=$?
    echo "  --once, $*: exit $RUN_RC: $(grep -E "$pattern" "$TMP/$name.err" | sed 's/^.*]: //')"
    [ "$RUN_RC" -eq 1 ] || fail "--once with sock_diag refused ($*): exit $RUN_RC, not 1"
    assert_eq 1 "$(count_lines "$pattern" "$TMP/$name.err")" "lines saying why ($*)"
    assert_eq 1 "$(count_state close-wait "$port" server)" "the leak, still there"
}
once_refused eacces "${refused}Permission denied\): nothing is found while this lasts" sendto EACCES
once_refused eperm "${refused}Operation not permitted\)" sendto EPERM
once_refused nosocket 'no sock_diag netlink socket here \(Permission denied\)' "socket:$AF_NETLINK" EACCES

# Running: 20 intervals refused, one line; the status line names the reason.
start_bg refused "$DENY" sendto EACCES -- "$AUTOCLOSED" --ports "$port" --interval-ms 20
wait_until 2000 main_pid refused >/dev/null || fail "the daemon did not start"
pid=$(main_pid refused)
wait_until 2000 has_lines 1 "$refused" "$TMP/refused.err" || fail "no line says sock_diag was refused"
sleep 0.4 # 20 intervals more, each refused again
kill -USR1 "$pid"
wait_until 2000 has_lines 1 'status: .* sock_diag=Permission denied$' "$TMP/refused.err" ||
    fail "the status line does not name the reason"
assert_eq 1 "$(count_lines "$refused" "$TMP/refused.err")" "lines saying sock_diag was refused, after 20 intervals"
alive "$pid" || fail "the daemon ended"
kill -TERM "$pid"
wait_until 2000 gone "$pid" || fail "the daemon did not stop"
pass "sock_diag refused: --once exits 1 with one line; a running daemon says it once"
