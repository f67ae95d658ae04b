#!/usr/bin/env bash
# autoclosed and a server in a network namespace of its own (a container's, made here with
# unshare -n, loopback only): the daemon, in the host's namespace, must find the server's
# half-closed sockets there and reclaim them, whether pointed at it with --pid (its host pid) or
# with --ports alone (the port as the server's namespace sees it), and with --once; its action
# lines and its gauge name the namespace (netns=<inode of /proc/PID/ns/net>). A healthy
# connection in the namespace stays ESTABLISHED throughout. Every check of socket states is made
# inside the namespace (ss through nsenter).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "a network namespace made with unshare -n"
for tool in unshare nsenter ip; do
    command -v $tool >/dev/null || skip "needs unshare, nsenter and ip (util-linux, iproute2)"
done
unshare -n true 2>/dev/null || skip "this sandbox lets no network namespace be made"

N=3
GRACE=500
INTERVAL=100
ID=3f4e5d6c7b8a9f0e1d2c3b4a59687766554433221100ffeeddccbbaa99887766

# Where a control group tree (cgroup2, or v1's name=systemd) is writable, the server runs in a
# group named as Docker's systemd driver names a container's, and the lines must name it.
cg=
while read -r _ mnt; do
    d="$mnt/autoclose-test-$$-$RANDOM.slice/docker-$ID.scope"
    if mkdir -p "$d" 2>/dev/null && [ -e "$d/cgroup.procs" ]; then
        cg=$d
        break
    fi
done < <(awk '{ for (i = 7; $i != "-"; i++); fs = $(i + 1); so = $(i + 3)
    if (fs == "cgroup2" || (fs == "cgroup" && so ~ /(^|,)name=systemd(,|$)/)) print fs " " $5 }' \
    /proc/self/mountinfo)
# shellcheck disable=SC2317 # called by the trap
cgroup_down() {
    [ -n "$cg" ] || return 0
    wait_until 3000 rmdir "$cg" 2>/dev/null
    rmdir "${cg%/*}" 2>/dev/null || true
}
trap 'cleanup; cgroup_down' EXIT
container=
if [ -n "$cg" ]; then
    container=docker:${ID:0:12}
    echo "the server in $cg: its lines must say container=$container"
else
    echo "no writable control group tree here: the container's name is not checked"
fi

# shellcheck disable=SC2119 # no port to keep clear of
port=$(pick_port)
# shellcheck disable=SC2016 # $0, $@ and $CG are sh's
start_bg server CG="$cg" unshare -n sh -c '[ -z "$CG" ] || echo $$ >"$CG/cgroup.procs" || exit 1
    ip link set lo up && exec "$0" "$@"' \
    "$FIXTURES/mos_server" --style thread --port "$port" --port-file "$TMP/server.port"
wait_for_file "$TMP/server.port" 20000 || fail "the server in its namespace published no port"
pid=$(main_pid server)
netns=$(stat -L -c %i "/proc/$pid/ns/net")
[ "$netns" != "$(stat -L -c %i /proc/self/ns/net)" ] || fail "the server is in the host's namespace"
echo "server pid $pid, port $port, netns $netns"

# Every look at sockets from here on is the namespace's.
ss() { nsenter -t "$pid" -n ss "$@"; }
[ -z "$(command ss -Htan "( sport = :$port )")" ] || fail "port $port is in use in the host's namespace too"

start_bg idle nsenter -t "$pid" -n "$FIXTURES/ncs_client" --port "$port" --count 1 --hold-ms 60000
wait_until 5000 has_lines 1 '^ok conn=' "$TMP/idle.out" || fail "the idle client's heartbeat failed"

leak() { # leak NAME: N half-closed connections in the namespace
    timeout 60 nsenter -t "$pid" -n "$FIXTURES/ncs_client" --port "$port" --count $N \
        >"$TMP/$1.out" 2>"$TMP/$1.err" || fail "client $1 failed"
    wait_until 3000 leaking "$port" $N "$1" || fail "no leak: $(report_states "$port" "$1")"
}

# each_names_netns FILE: every action line carries netns=<the server's namespace> (and
# container=<its container>, where it runs in one).
each_names_netns() {
    local line
    while read -r line; do
        [[ $line == *" netns=$netns"* ]] || fail "an action line without netns=$netns: '$line'"
        [ -z "$container" ] || [[ $line == *" netns=$netns container=$container" ]] ||
            fail "an action line without container=$container: '$line'"
    done < <(shutdowns "$1" "$pid")
}

echo "--once --pid $pid (its host pid):"
leak c_pid
run_daemon once_pid --once --pid "$pid" --grace-ms $GRACE --interval-ms $INTERVAL
sed 's/^/    /' "$TMP/once_pid.err"
assert_eq 0 "$RUN_RC" "  exit status"
assert_eq $N "$(count_shutdowns "$TMP/once_pid.err" "$pid")" "  actions"
each_names_netns "$TMP/once_pid.err"
wait_until 2000 reclaimed "$port" $N c_pid || fail "not reclaimed: $(report_states "$port" c_pid)"

echo "--once --ports $port alone:"
leak c_ports
run_daemon once_ports --once --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL
sed 's/^/    /' "$TMP/once_ports.err"
assert_eq 0 "$RUN_RC" "  exit status"
assert_eq $N "$(count_shutdowns "$TMP/once_ports.err" "$pid")" "  actions"
each_names_netns "$TMP/once_ports.err"
wait_until 2000 reclaimed "$port" $N c_ports ||
    fail "not reclaimed: $(report_states "$port" c_ports)"

echo "running, --ports $port alone, with the gauge:"
stats=$TMP/autoclosed.prom
start_daemon run --ports "$port" --grace-ms 3000 --interval-ms $INTERVAL --stats-file "$stats"
await_watching "$TMP/run.err"
leak c_run
# shellcheck disable=SC2317 # called through wait_until
gauge() {
    prom_sum "$stats" autoclosed_close_wait port="$port" netns="$netns" pid="$pid" \
        ${container:+container="$container"}
}
# shellcheck disable=SC2016 # evaluated at each try
wait_until 8000 eval '[ "$(gauge)" = $N ]' ||
    fail "the gauge did not count $N in netns $netns: $(grep close_wait "$stats" 2>/dev/null)"
grep "^autoclosed_close_wait{" "$stats" | sed 's/^/    /'
wait_until 6000 has_shutdowns $N "$TMP/run.err" "$pid" || fail "not reclaimed by the running daemon"
each_names_netns "$TMP/run.err"
wait_until 2000 reclaimed "$port" $N c_run || fail "not reclaimed: $(report_states "$port" c_run)"
# shellcheck disable=SC2016 # evaluated at each try
wait_until 3000 eval '[ "$(gauge)" = none ] || [ "$(gauge)" = 0 ]' || fail "the gauge did not fall"
stop_daemon run
assert_eq 1 "$(count_state established "$port" server)" "  the idle connection ESTABLISHED"
pass "a server in its own network namespace: --once --pid, --once --ports and a running daemon\
 --ports each reclaimed its $N leaks, naming netns=$netns${container:+ container=$container}"
