#!/usr/bin/env bash
# autoclosed without the right to reach a process: run as nobody with no capability at all, it is
# told to watch a leaking server of root's. For that process it must say so in one line naming
# CAP_SYS_PTRACE (once, not at every scan), reclaim nothing of it, and keep running; with --once
# it exits 1 (something could not be reclaimed), not 2 or a crash. Where the kernel lets a user
# reach his own processes (no Yama ptrace_scope above 0), the same daemon also watches a leaking
# server of nobody's, and reclaims that one: it keeps serving what it can.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a root-owned server and a daemon run as another user"

N=2
GRACE=300
INTERVAL=100

start_bg root_srv "$FIXTURES/mos_server" --style read --port-file "$TMP/root_srv.port"
rport=$(await_port root_srv)
rpid=$(main_pid root_srv)
watched=$rpid

scope=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo none)
own=
also=
if [ "$scope" = none ] || [ "$scope" = 0 ]; then
    own=yes
    also=" and reclaimed nobody's own leaks"
    open_to_all "$TMP/nobody"
    start_bg own_srv "${UNPRIVILEGED[@]}" "$FIXTURES/mos_server" --style read \
        --port-file "$TMP/nobody/own_srv.port"
    wait_for_file "$TMP/nobody/own_srv.port" || fail "nobody's server published no port"
    cp "$TMP/nobody/own_srv.port" "$TMP/own_srv.port"
    oport=$(await_port own_srv)
    opid=$(main_pid own_srv)
    watched="$rpid,$opid"
    client own --port "$oport" --count $N || fail "client exchanges with nobody's server failed"
    wait_until 3000 leaking "$oport" $N own || fail "nobody's server did not leak"
    echo "Yama ptrace_scope: $scope: nobody's own server (pid $opid) is watched too"
else
    echo "Yama ptrace_scope: $scope: a user cannot reach his own processes; only root's is watched"
fi
client root --port "$rport" --count $N || fail "client exchanges with root's server failed"
wait_until 3000 leaking "$rport" $N root || fail "root's server did not leak"

started=$(now_ms)
start_bg daemon "${UNPRIVILEGED[@]}" "$AUTOCLOSED" --pid "$watched" --grace-ms $GRACE \
    --interval-ms $INTERVAL
wait_until 2000 main_pid daemon >/dev/null || fail "autoclosed did not start"
dpid=$(main_pid daemon)
assert_eq "$(id -u nobody)" "$(stat -c %u "/proc/$dpid")" "the daemon's uid"
wait_until 3000 has_lines 1 'CAP_SYS_PTRACE' "$TMP/daemon.err" ||
    fail "no line naming CAP_SYS_PTRACE within 3 s"
if [ -n "$own" ]; then
    wait_until $((GRACE + 5000)) clients_settled "$oport" own || true
    require_settled "$oport" "the unprivileged daemon did not reclaim its own user's leaks" own
    echo "  nobody's own server: reclaimed $(($(now_ms) - started)) ms after the daemon started"
else
    sleep_ms $((GRACE + 5 * INTERVAL))
fi
# More scans: the line is not repeated, nothing of root's is touched, the daemon lives on.
sleep_ms $((5 * INTERVAL + 200))
sed 's/^/    /' "$TMP/daemon.err"
assert_eq 1 "$(not_permitted_lines "$TMP/daemon.err" "$rpid" | wc -l)" \
    "lines naming CAP_SYS_PTRACE for root's server (pid $rpid)"
assert_eq 0 "$(count_shutdowns "$TMP/daemon.err" "$rpid")" "actions on root's server"
leaking "$rport" $N root || fail "root's server's leaks were touched: $(report_states "$rport" root)"
alive "$dpid" || fail "autoclosed died: $(tail -n 3 "$TMP/daemon.err")"
echo "  still running $(($(now_ms) - started)) ms after it started; root's leaks untouched"
stop_daemon daemon

echo "--once, as nobody:"
rc=0
timeout 30 "${UNPRIVILEGED[@]}" "$AUTOCLOSED" --once --pid "$watched" --grace-ms $GRACE \
    --interval-ms $INTERVAL >"$TMP/once.out" 2>"$TMP/once.err" || rc=$?
sed 's/^/    /' "$TMP/once.err"
assert_eq 1 "$rc" "  exit status (root's leaks could not be reclaimed)"
assert_eq 1 "$(not_permitted_lines "$TMP/once.err" "$rpid" | wc -l)" "  lines naming CAP_SYS_PTRACE"
leaking "$rport" $N root || fail "root's server's leaks were touched: $(report_states "$rport" root)"
pass "no CAP_SYS_PTRACE: one line for root's server, nothing of it reclaimed, the daemon kept\
 running${also}; --once exits 1"
