#!/usr/bin/env bash
# A leaking server run as a hardened systemd unit would run it: NoNewPrivileges and
# SystemCallFilter=@system-service, without SystemCallErrorNumber= (a call outside the list kills
# the process with SIGSYS), with SystemCallErrorNumber=EPERM, and with RestrictAddressFamilies=
# AF_INET AF_INET6 AF_UNIX besides (no netlink, so no sock_diag sweep). In each the shim must stay
# within the list: the server lives on, its leaked connections are reclaimed, and it serves a
# second round. Without netlink the shim says once that the sweep cannot work, and reclaims on
# the read path.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_shim

command -v systemd-analyze >/dev/null 2>&1 ||
    skip "systemd-analyze (Debian package systemd) is missing: no @system-service list to apply"
[ -x "$FIXTURES/hardened_exec" ] || fail "$FIXTURES/hardened_exec is not built (make fixtures)"

# A server killed by SIGSYS would leave its core wherever this runs.
ulimit -c 0

GRACE=300
N=5
CLIENT_BOUND_S=10
RUNS=(kill eperm no-netlink)
declare -A port pid opts
opts[kill]="--kill"
opts[eperm]="--eperm"
opts[no-netlink]="--kill --no-netlink"
NO_SWEEP='sweep.*netlink|netlink.*sweep'

# expand_group GROUP: appends the system calls of a filter group to $TMP/expanded, nested groups
# expanded (systemd-analyze names them as @group lines). Not in a pipeline, so that skip ends
# the test.
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
sort -u "$TMP/expanded" >"$TMP/system-service.list"
allowed=$(wc -l <"$TMP/system-service.list")
echo "@system-service: $allowed system calls, groups expanded" \
    "($(systemd-analyze --version | head -n 1))"
[ "$allowed" -gt 100 ] || fail "@system-service expanded to only $allowed names"

for r in "${RUNS[@]}"; do
    # shellcheck disable=SC2086 # opts holds separate options
    start_bg "$r" LD_PRELOAD="$AUTOCLOSE_LIB" AUTOCLOSE_GRACE_MS=$GRACE AUTOCLOSE_LOG=info \
        AUTOCLOSE_LOG_FILE="$TMP/$r.log" "$FIXTURES/hardened_exec" \
        --allow-file "$TMP/system-service.list" ${opts[$r]} -- \
        "$FIXTURES/mos_server" --style read --port-file "$TMP/$r.port"
done
for r in "${RUNS[@]}"; do
    port[$r]=$(await_port "$r")
    pid[$r]=$(main_pid "$r") || fail "$r: no server process below the launcher"
done

# alive RUN WHEN: the server must still run; if it died, how (159 = 128 + SIGSYS).
alive() {
    local r=$1 st rc
    st=$(ps -o stat= -p "${pid[$r]}" 2>/dev/null || true)
    [ -n "$st" ] && [[ $st != Z* ]] && return 0
    rc=0
    wait_bg "$r" || rc=$?
    if [ "$rc" -eq 159 ]; then
        fail "$r: the server died $2: exit $rc, SIGSYS (Bad system call): the shim made a" \
            "system call outside @system-service"
    fi
    fail "$r: the server died $2: exit $rc"
}

# round NAME: N heartbeat exchanges with every server at once, each client bounded.
round() {
    local r c=() rcs=()
    for r in "${RUNS[@]}"; do
        timeout "$CLIENT_BOUND_S" "$FIXTURES/ncs_client" --port "${port[$r]}" --count "$N" \
            >"$TMP/$1-$r.out" 2>"$TMP/$1-$r.err" &
        c+=("$!")
    done
    for r in "${!c[@]}"; do
        rcs[r]=0
        wait "${c[$r]}" || rcs[r]=$?
    done
    for r in "${!RUNS[@]}"; do
        alive "${RUNS[$r]}" "during the $1 exchanges"
        [ "${rcs[$r]}" -eq 0 ] || fail "${RUNS[$r]}: $1 exchanges failed (ncs_client exit ${rcs[$r]})"
    done
}

# shellcheck disable=SC2317 # called through wait_until
all_reclaimed() {
    local r
    for r in "${RUNS[@]}"; do
        reclaimed "${port[$r]}" "$N" "$1-$r" || return 1
    done
}

# reclaim NAME: every server's N leaks of round NAME end cleanly, and the servers live on.
reclaim() {
    local r
    wait_until $((GRACE + 3000)) all_reclaimed "$1" || true
    for r in "${RUNS[@]}"; do
        echo "  $r ($1): $(report_states "${port[$r]}" "$1-$r"); $(found_summary "$TMP/$r.log")"
        alive "$r" "after the grace ($1)"
        reclaimed "${port[$r]}" "$N" "$1-$r" || fail "$r: the $1 leaks were not reclaimed"
    done
}

round first
echo "first round: $N exchanges with each server; all alive"
reclaim first
round second
echo "second round after the reclaim: $N exchanges with each server; all alive"
reclaim second

# The shim's complaint about the sweep is logged once per process, not once per sweep: waiting
# out two more graces gives a repeat the time to show.
sleep_ms $((GRACE * 2))
for r in "${RUNS[@]}"; do
    alive "$r" "at the end"
done
log=$TMP/no-netlink.log
complaints=$(count_lines "$NO_SWEEP" "$log")
grep -E -- "$NO_SWEEP" "$log" 2>/dev/null | sed 's/^/  no-netlink log: /' || true
assert_eq 1 "$complaints" "no-netlink: log lines saying the sweep has no netlink"
assert_eq "read=$((2 * N)) ready=0 sweep=0" "$(found_summary "$log")" \
    "no-netlink: how the shim found the leaks"
pass "under @system-service (kill, EPERM, no netlink) the server lived, its $((2 * N)) leaks were\
 reclaimed in two rounds; without netlink one line says the sweep is off"
