#!/usr/bin/env bash
# autoclosed --unit NAME selects the processes of a systemd unit through its control group, read
# again as processes come and go: a server restarted in the unit is watched with no restart of
# the daemon. The test makes the unit's control group itself, as systemd would, in each tree the
# daemon reads (from /proc/self/mountinfo): cgroup v2 (NAME.service under a test slice) and, on
# a hybrid host, the legacy name=systemd tree (v1). In each:
#   - the daemon says the unit's processes at start; a leak of the server in the unit is
#     reclaimed, while a server outside the unit keeps its own leak;
#   - the server killed, one line says the unit has no process; a new server started in the same
#     control group is said, and its leak is reclaimed by the same daemon process.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "making control groups"

GRACE=300
INTERVAL=100
UNIT="mos-$$-$RANDOM.service"
SLICE="autoclose-test-$$-$RANDOM.slice"

# The trees the daemon reads: the cgroup2 mount and the name=systemd one.
mapfile -t trees < <(awk '{ for (i = 7; $i != "-"; i++); fs = $(i + 1); so = $(i + 3)
    if (fs == "cgroup2" || (fs == "cgroup" && so ~ /(^|,)name=systemd(,|$)/)) print fs " " $5 }' \
    /proc/self/mountinfo | sort -u -k1,1)
made=()
# shellcheck disable=SC2317 # called by the trap
cgroups_down() {
    local d
    for d in "${made[@]}"; do
        [ -d "$d" ] && wait_until 3000 rmdir "$d" 2>/dev/null
        rmdir "${d%/*}" 2>/dev/null || true
    done
}
trap 'cleanup; cgroups_down' EXIT

usable=()
for t in "${trees[@]}"; do
    dir="${t#* }/$SLICE/$UNIT"
    if mkdir -p "$dir" 2>/dev/null && [ -e "$dir/cgroup.procs" ]; then
        made+=("$dir")
        usable+=("${t%% *}:$dir")
    fi
done
[ ${#usable[@]} -gt 0 ] ||
    skip "no control group tree (cgroup2, or cgroup v1 name=systemd) is mounted and writable here"
printf '  %s\n' "${usable[@]}"

# in_unit NAME DIR ARGS...: the simulator started in the control group DIR.
in_unit() {
    local name=$1 dir=$2
    shift 2
    # shellcheck disable=SC2016 # expanded by the inner shell, which becomes the server
    start_bg "$name" bash -c 'echo $$ >"$1/cgroup.procs" && exec "${@:2}"' _ "$dir" \
        "$FIXTURES/mos_server" --style read "$@"
}

# leak NAME PORT CLIENT [N]: one more leak of server NAME (N in all), proved with ss.
leak() {
    client "$3" --port "$2" --count 1 || fail "client $3 failed"
    wait_until 3000 leaks_n "$2" "${4:-1}" "$3" || fail "$1 did not leak: $(report_states "$2" "$3")"
}
# shellcheck disable=SC2317 # called through wait_until
leaks_n() { state_is close-wait "$1" server "$2" && client_is fin-wait-2 "$1" 1 "$3"; }

start_bg outside "$FIXTURES/mos_server" --style read --port-file "$TMP/outside.port"
oport=$(await_port outside)
opid=$(main_pid outside)

n=0
for u in "${usable[@]}"; do
    tree=${u%%:*} dir=${u#*:} n=$((n + 1))
    echo "$tree: $dir"
    in_unit "a$n" "$dir" --port-file "$TMP/a$n.port"
    aport=$(await_port "a$n")
    apid=$(main_pid "a$n")
    grep -qx "$apid" "$dir/cgroup.procs" || fail "the server is not in $dir"
    LOG=$TMP/daemon$n.log
    start_daemon "daemon$n" --unit "${UNIT%.service}" --grace-ms $GRACE --interval-ms $INTERVAL \
        --log-file "$LOG"
    dpid=$DAEMON_PID
    wait_until 2000 has_lines 1 "--unit $UNIT: pid=$apid in .*/$UNIT: watched" "$LOG" ||
        fail "the daemon did not say the unit's process: $(cat "$LOG")"
    await_watching "$LOG"
    grep -F "watching unit=$UNIT " "$LOG" || fail "the start-up line does not name the unit"

    leak "a$n" "$aport" "a$n-1"
    leak outside "$oport" "o$n" "$n"
    wait_until $((GRACE + 5000)) clients_settled "$aport" "a$n-1" || true
    require_settled "$aport" "$tree: the leak of the unit's server was not reclaimed" "a$n-1"
    assert_eq 1 "$(count_shutdowns "$LOG" "$apid")" "  actions on the unit's server"

    echo "  the server killed, a new one started in the unit:"
    kill -KILL "$apid" 2>/dev/null
    wait_until 3000 has_lines 1 "--unit $UNIT: no process" "$LOG" ||
        fail "the daemon did not say the unit has no process"
    in_unit "b$n" "$dir" --port-file "$TMP/b$n.port"
    bport=$(await_port "b$n")
    bpid=$(main_pid "b$n")
    wait_until 3000 has_lines 1 "--unit $UNIT: pid=$bpid in " "$LOG" ||
        fail "the daemon did not say the new process of the unit"
    leak "b$n" "$bport" "b$n-1"
    wait_until $((GRACE + 5000)) clients_settled "$bport" "b$n-1" || true
    require_settled "$bport" "$tree: the restarted server's leak was not reclaimed" "b$n-1"
    assert_eq "$dpid" "$(main_pid "daemon$n")" "  the daemon's pid (never restarted)"
    assert_eq 1 "$(count_shutdowns "$LOG" "$bpid")" "  actions on the restarted server"
    grep -E -- "--unit $UNIT: " "$LOG" | sed 's/^/    /'

    # Both leaks above were found and reclaimed since the outsider's leaked: it was looked at.
    assert_eq 0 "$(count_shutdowns "$LOG" "$opid")" "  actions on the server outside the unit"
    assert_eq "$n" "$(ss_close_wait_of "$opid" "$oport")" "  the outside server's CLOSE_WAIT sockets"
    stop_daemon "daemon$n"
    kill -KILL "$bpid"
done
pass "--unit reclaimed the unit's server and, after its restart, the new one's leak with the\
 same daemon, in ${#usable[@]} tree(s) (${usable[*]%%:*}); the server outside kept its leak"
