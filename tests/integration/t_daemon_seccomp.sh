#!/usr/bin/env bash
# autoclosed as root under a seccomp filter that refuses pidfd_getfd with EPERM (the system calls
# of SystemCallFilter=@system-service, pidfd_getfd not among them, SystemCallErrorNumber=EPERM):
# the refusal is no permission matter for a daemon with CAP_SYS_PTRACE, and the line must say what
# it is (a seccomp filter or an LSM), once, and that the process is tried again later; the leak
# stays, the daemon keeps running, and --once exits 1. Everything else the daemon does (the
# taker's fork, pipe2, waitid, pidfd_open) is within the list.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a daemon with CAP_SYS_PTRACE"
command -v systemd-analyze >/dev/null 2>&1 ||
    skip "systemd-analyze (Debian package systemd) is missing: no @system-service list to apply"
[ -x "$FIXTURES/hardened_exec" ] || fail "$FIXTURES/hardened_exec is not built (make fixtures)"

GRACE=300
INTERVAL=100
LOG="$TMP/daemon.log"
SAID='refused although autoclosed has CAP_SYS_PTRACE: a seccomp filter \(SystemCallFilter=\) or an LSM forbids pidfd_getfd;'

# expand_group GROUP: appends the system calls of a filter group to $TMP/expanded, nested groups
# expanded. Not in a pipeline, so that skip ends the test.
declare -A expanded
expand_group() {
    local line names
    [ -z "${expanded[$1]:-}" ] || return 0
    expanded[$1]=1
    names=$(systemd-analyze syscall-filter "$1" 2>"$TMP/analyze.err") ||
        skip "systemd-analyze syscall-filter $1 failed: $(head -n 1 "$TMP/analyze.err")"
    while read -r line; do
        case $line in
        "" | "#"* | "$1") ;;
        @*) expand_group "$line" ;;
        *) echo "$line" >>"$TMP/expanded" ;;
        esac
    done <<<"$names"
}
expand_group @system-service
sort -u "$TMP/expanded" | grep -vx pidfd_getfd >"$TMP/allowed.list"
grep -qx pidfd_open "$TMP/allowed.list" || fail "@system-service has no pidfd_open here"

start_bg srv "$FIXTURES/mos_server" --style read --port-file "$TMP/srv.port"
port=$(await_port srv)
pid=$(main_pid srv)
client leak --port "$port" --count 1 || fail "client exchange failed"
wait_until 3000 leaking "$port" 1 leak || fail "the server did not leak"

start_bg daemon "$FIXTURES/hardened_exec" --allow-file "$TMP/allowed.list" --eperm -- \
    "$AUTOCLOSED" --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL --log-file "$LOG"
wait_until $((GRACE + 3000)) has_lines 1 "$SAID tried again in 60 s" "$LOG" ||
    fail "no line saying a seccomp filter or an LSM forbids pidfd_getfd"
dpid=$(main_pid daemon)
sleep_ms $((5 * INTERVAL)) # more intervals: the line is not repeated within the back-off
sed 's/^/    /' "$LOG"
assert_eq 1 "$(grep -c "pid=$pid comm=" "$LOG")" "lines about the server"
grep -q "cannot reach pid=$pid comm=\"mos_server\": taking its descriptors (pidfd_getfd) is" \
    "$LOG" || fail "the line does not name the process and the step"
! grep -q 'needs CAP_SYS_PTRACE' "$LOG" || fail "the daemon blames a missing capability"
alive "$dpid" || fail "autoclosed died under the filter: $(tail -n 3 "$TMP/daemon.err")"
leaking "$port" 1 leak || fail "the leak was touched: $(report_states "$port" leak)"
stop_daemon daemon

rc=0
timeout 30 "$FIXTURES/hardened_exec" --allow-file "$TMP/allowed.list" --eperm -- \
    "$AUTOCLOSED" --once --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL \
    >"$TMP/once.out" 2>"$TMP/once.err" || rc=$?
sed 's/^/    /' "$TMP/once.err"
assert_eq 1 "$rc" "--once: exit status"
assert_eq 1 "$(count_lines "$SAID its sockets are left alone" "$TMP/once.err")" \
    "--once: lines naming the filter"
pass "a refused pidfd_getfd is put down to a seccomp filter or an LSM, once per back-off"
