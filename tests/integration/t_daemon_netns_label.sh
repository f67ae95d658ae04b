#!/usr/bin/env bash
# autoclosed's container= label names a container only where root made its control group. Root's
# "container": a leaking server in a network namespace of its own, in a cgroup2 group named as
# Docker's systemd driver names one (docker-ID.scope, root's). Nobody, with a subtree of his own
# (what systemd's Delegate= gives every user@UID.service; made here by chown), makes
# kubepods/pod<uid>/docker-<the same ID>.scope in it (ids are in every /proc/PID/cgroup) and runs
# his leaking server there, in a namespace of his own (unshare -rn). Both leaks are reclaimed;
# root's lines and gauge say container=docker:<ID>, nobody's carry no container= at all.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=netns_lib.sh
. "$(dirname "$0")/netns_lib.sh"
# shellcheck source=daemon_lib.sh
. "$(dirname "$0")/daemon_lib.sh"
need_daemon
need_root "control groups of root's and a subtree handed to nobody"
for tool in unshare nsenter ip setpriv; do
    command -v $tool >/dev/null || skip "needs unshare, nsenter, ip and setpriv (util-linux, iproute2)"
done
unshare -n true 2>/dev/null || skip "this sandbox lets no network namespace be made"
"${UNPRIVILEGED[@]}" unshare -rn true 2>/dev/null ||
    skip "users cannot make namespaces of their own here (user namespaces closed to them)"
cg=$(awk '{ for (i = 7; $i != "-"; i++); if ($(i + 1) == "cgroup2") { print $5; exit } }' \
    /proc/self/mountinfo)
[ -n "$cg" ] || skip "no cgroup2 tree is mounted here"
top=$cg/autoclose-test-$$-$RANDOM
mkdir "$top.slice" 2>/dev/null || skip "the cgroup2 tree at $cg is not writable here"

N=2
GRACE=2000
INTERVAL=100
ID=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
POD=1b4e28ba-2fa1-11d2-883f-0016d3cca427
label=docker:${ID:0:12}
root_grp=$top.slice/docker-$ID.scope
deleg=$top.deleg
user_grp=$deleg/kubepods/pod$POD/docker-$ID.scope

# shellcheck disable=SC2317 # called by the trap, through wait_until
groups_down() {
    [ ! -d "$root_grp" ] || rmdir "$root_grp" 2>/dev/null || return 1
    [ ! -d "$deleg" ] || find "$deleg" -depth -type d -exec rmdir {} + 2>/dev/null || return 1
    rmdir "$top.slice"
}
trap 'cleanup; wait_until 3000 groups_down || echo "left behind: $top.slice $deleg" >&2' EXIT
mkdir "$root_grp" "$deleg" || fail "cannot make the control groups under $cg"
chown nobody "$deleg" "$deleg/cgroup.procs" "$deleg/cgroup.threads" "$deleg/cgroup.subtree_control"

# shellcheck disable=SC2119 # no port to keep clear of
port=$(pick_port)
open_to_all "$TMP/nobody"
# shellcheck disable=SC2016 # $0, $@ and $$ are sh's
start_bg root_srv G="$root_grp" sh -c 'echo $$ >"$G/cgroup.procs" || exit 1
    exec unshare -n sh -c "ip link set lo up && exec \"\$0\" \"\$@\"" "$0" "$@"' \
    "$FIXTURES/mos_server" --style thread --port "$port" --port-file "$TMP/root_srv.port"
# Moved into his subtree by root (as systemd starts his manager there), then all his own doing.
# shellcheck disable=SC2016 # $0, $@ and $$ are sh's
start_bg user_srv D="$deleg" G="$user_grp" sh -c 'echo $$ >"$D/cgroup.procs" || exit 1
    exec "$0" "$@"' "${UNPRIVILEGED[@]}" sh -c 'mkdir -p "$G" && echo $$ >"$G/cgroup.procs" || exit 1
    exec unshare -rn sh -c "ip link set lo up && exec \"\$0\" \"\$@\"" "$0" "$@"' \
    "$FIXTURES/mos_server" --style thread --port "$port" --port-file "$TMP/nobody/user_srv.port"
wait_for_file "$TMP/root_srv.port" 20000 || fail "root's server published no port"
wait_for_file "$TMP/nobody/user_srv.port" 20000 ||
    fail "nobody's server published no port: $(cat "$TMP/user_srv.err")"
rpid=$(main_pid root_srv)
upid=$(main_pid user_srv)
echo "root's server $rpid: $(grep '^0::' "/proc/$rpid/cgroup")"
echo "nobody's server $upid (uid $(stat -c %u "/proc/$upid")): $(grep '^0::' "/proc/$upid/cgroup")"
grep -q "^0::.*/docker-$ID.scope$" "/proc/$rpid/cgroup" || fail "root's server is not in its group"
grep -q "^0::.*/pod$POD/docker-$ID.scope$" "/proc/$upid/cgroup" ||
    fail "nobody's server is not in the group he named"
[ "$(stat -c %U "$user_grp")" = nobody ] || fail "nobody's group is not his"

leak() { # leak PID NAME
    NS_PID=$1
    ns_client "$2" "$1" "$port" $N
    wait_until 3000 leaking "$port" $N "$2" || fail "no leak in $2: $(report_states "$port" "$2")"
}
stats=$TMP/run.prom
series() { grep "^autoclosed_close_wait{.*pid=\"$1\"" "$stats" 2>/dev/null || true; }

start_daemon run --ports "$port" --grace-ms $GRACE --interval-ms $INTERVAL --stats-file "$stats"
await_watching "$TMP/run.err"
leak "$rpid" root_c
leak "$upid" user_c
# shellcheck disable=SC2016 # evaluated at each try
wait_until 5000 eval '[ "$(prom_sum "$stats" autoclosed_close_wait pid="$rpid")" = $N ] &&
    [ "$(prom_sum "$stats" autoclosed_close_wait pid="$upid")" = $N ]' ||
    fail "the gauge did not count both leaks: $(grep close_wait "$stats" 2>/dev/null)"
series "$rpid" | sed 's/^/    /'
series "$upid" | sed 's/^/    /'
assert_eq $N "$(prom_sum "$stats" autoclosed_close_wait pid="$rpid" container="$label")" \
    "  root's gauge with container=\"$label\""
! series "$upid" | grep -q 'container=' || fail "nobody's gauge carries a container label"
wait_until 8000 has_shutdowns $N "$TMP/run.err" "$rpid" || fail "root's leak was not reclaimed"
wait_until 8000 has_shutdowns $N "$TMP/run.err" "$upid" || fail "nobody's leak was not reclaimed"
stop_daemon run
shutdowns "$TMP/run.err" | sed 's/^/    /'
assert_eq $N "$(shutdowns "$TMP/run.err" "$rpid" | grep -c " container=$label\$")" \
    "  root's lines with container=$label"
assert_eq 0 "$(shutdowns "$TMP/run.err" "$upid" | grep -c ' container=')" \
    "  nobody's lines with container="
pass "root's container's leaks named container=$label; nobody's, in his own group named after\
 it, reclaimed with no container label (lines and gauge)"
